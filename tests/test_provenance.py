"""The provenance header every published figure carries (docs/design.md#figures-with-provenance)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from wsrbench.core import provenance


def test_header_names_date_commit_machine_load_and_command():
    load = provenance.LoadMonitor(interval=0.01)
    with load:
        pass
    text = provenance.header("A table", load, command="python make_table.py --n 3")
    assert text.startswith("# A table\n")
    assert re.search(r"- date: \d{4}-\d\d-\d\d \d\d:\d\d UTC", text)
    assert f"- commit: {provenance.commit()}" in text
    assert f"{provenance.cpu_model()}, {os.cpu_count()} cores" in text
    assert re.search(r"load average \(1 min\) during the run: mean \S+, max \S+", text)
    assert "`python make_table.py --n 3`" in text
    assert len(load.samples) >= 2  # sampled on entry and on exit at least


def test_a_run_over_the_core_count_is_flagged():
    cores = os.cpu_count() or 1
    busy = provenance.LoadMonitor()
    busy.samples = [0.5, cores + 1.0]
    quiet = provenance.LoadMonitor()
    quiet.samples = [0.5, cores - 0.5]
    assert "LOADED MACHINE" in provenance.header("t", busy, command="c")
    assert "LOADED MACHINE" not in provenance.header("t", quiet, command="c")
    meta = provenance.meta(busy, command="c")
    assert meta["overloaded"] is True and meta["load_max"] == cores + 1.0
    assert {"date", "commit", "cpu", "cores", "command"} <= set(meta)


@pytest.mark.slow
def test_figures_script_quick_writes_every_file_with_its_header(tmp_path):
    """scripts/figures.sh --quick runs the commands that write docs/figures at tiny sizes; every
    markdown file it writes starts with the provenance header."""
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHON": sys.executable}
    r = subprocess.run(["bash", str(root / "scripts" / "figures.sh"), "--quick", "--out",
                        str(tmp_path)], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    written = sorted(p.name for p in tmp_path.glob("*.md"))
    assert {"training_bench.md", "training_overhead.md", "numba_speed.md", "numba_pieces.md",
            "hull_speed.md", "gpu_model.md"} <= set(written), written
    for name in written:
        head = (tmp_path / name).read_text().splitlines()[:7]
        assert head[0].startswith("# ") and head[1] == "", (name, head)
        fields = [line.split(":", 1)[0] for line in head[2:]]
        assert fields == ["- date", "- commit", "- machine",
                          "- load average (1 min) during the run", "- command"], (name, head)


def test_figures_script_rejects_unknown_arguments():
    root = Path(__file__).resolve().parent.parent
    r = subprocess.run(["bash", str(root / "scripts" / "figures.sh"), "--qick"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "--qick" in r.stderr and "--quick" in r.stderr


def test_ratio_spread_pairs_the_interleaved_calls():
    from wsrbench.bench.benchtools import ratio_spread

    # the load doubles half-way: f is always 0.5x g at the same moment, which the paired ratios
    # keep and the ratio of the two medians does not
    tg = np.array([1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0])
    tf = 0.5 * tg
    tf[-1] *= 1.2  # one noisy pair widens the upper quartile only
    med, q25, q75 = ratio_spread(tf, tg)
    assert med == 0.5 and q25 == 0.5 and q75 == 0.5
    med, q25, q75 = ratio_spread(tf[[0, 1, 5, 6]], tg[[0, 1, 5, 6]])
    assert q25 == 0.5 and 0.5 < q75 < 0.6 and q25 <= med <= q75
    with pytest.raises(ValueError, match="paired"):
        ratio_spread([1.0, 2.0], [1.0])


def test_interleaved_rounds_take_turns_after_one_warm_up_each():
    from wsrbench.bench.benchtools import interleaved_rounds, interleaved_times

    calls = []
    fs = [lambda k=k: calls.append(k) for k in range(3)]
    ts = interleaved_rounds(fs, 4)
    # one untimed warm-up of each, then turns: every round's calls ran back to back
    assert calls == [0, 1, 2] * 5
    assert [len(t) for t in ts] == [4, 4, 4] and all(v >= 0 for t in ts for v in t)
    calls.clear()
    tf, tg = interleaved_times(fs[0], fs[1], 2)
    assert calls == [0, 1] * 3 and len(tf) == len(tg) == 2
    with pytest.raises(ValueError, match="runs"):
        interleaved_rounds(fs, 0)


def test_commit_is_dirty_for_code_changes_not_for_figures(tmp_path):
    """A figures run writes docs/figures between its commands: that must not mark the later
    commands' code as uncommitted, while a change to any other tracked file does."""
    import importlib.util
    import shutil

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    pkg = tmp_path / "wsrbench" / "core"
    pkg.mkdir(parents=True)
    shutil.copy(provenance.__file__, pkg / "provenance.py")
    (tmp_path / "docs" / "figures").mkdir(parents=True)
    (tmp_path / "docs" / "figures" / "t.md").write_text("old\n")
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "c"]):
        subprocess.run(git + args, check=True, capture_output=True)
    spec = importlib.util.spec_from_file_location("prov_copy", pkg / "provenance.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    clean = mod.commit()
    assert re.fullmatch(r"[0-9a-f]{12}", clean), clean
    (tmp_path / "docs" / "figures" / "t.md").write_text("new\n")
    assert mod.commit() == clean
    (pkg / "provenance.py").write_text((pkg / "provenance.py").read_text() + "\n# edit\n")
    assert mod.commit() == clean + "-dirty"

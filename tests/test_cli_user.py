"""The command line as a user sees it: messages on stderr with a non-zero status, the files a
command says it wrote, and what `compare` documents and writes."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import wsrbench
from wsrbench.cli import main


def test_a_subcommand_that_stops_with_a_message_says_it_on_stderr(monkeypatch, capsys):
    """sys.exit("message") inside a subcommand (gpu_speed without a GPU does this) used to be
    swallowed: nothing printed, status 0."""
    import wsrbench.bench.gpu_speed as gpu_speed

    def stop(argv):
        sys.exit("no CUDA GPU visible to torch")

    monkeypatch.setattr(gpu_speed, "main", stop)
    assert main(["compare", "--gpu-speed"]) == 2
    err = capsys.readouterr().err
    assert "wsrbench compare: error: no CUDA GPU visible to torch" in err


def test_prox_reports_the_path_it_wrote(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.arange(6.0))
    out = tmp_path / "w"  # np.save appends .npy
    assert main(["prox", str(tmp_path / "x.npy"), str(out), "--lam", "0.5"]) == 0
    written = f"{out}.npy"
    assert f"wrote     {written}" in capsys.readouterr().out
    assert os.path.exists(written) and not os.path.exists(out)


def test_prox_checks_the_output_before_computing(tmp_path, monkeypatch, capsys):
    np.save(tmp_path / "x.npy", np.arange(6.0))
    import wsrbench.api as api

    def never(*a, **k):
        raise AssertionError("computed before the output location was checked")

    monkeypatch.setattr(api, "prox_info", never)
    bad = tmp_path / "no-such-dir" / "w.npy"
    assert main(["prox", str(tmp_path / "x.npy"), str(bad), "--lam", "0.5"]) == 2
    err = capsys.readouterr().err
    assert "no-such-dir" in err and "does not exist" in err
    (tmp_path / "d.npy").mkdir()
    assert main(["prox", str(tmp_path / "x.npy"), str(tmp_path / "d.npy"), "--lam", "0.5"]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_prox_family_with_an_output_saves_it(tmp_path, capsys):
    out = tmp_path / "w.npy"
    assert main(["prox", "--family", "gaussian", "-d", "50", "--backend", "numpy", str(out)]) == 0
    assert f"wrote     {out}" in capsys.readouterr().out
    x, lam = wsrbench.bench.cases.make("gaussian", 50, seed=0)
    np.testing.assert_array_equal(np.load(out), wsrbench.prox(x, lam, backend="numpy"))


@pytest.mark.slow
def test_numba_cuda_without_a_gpu_says_so():
    """In a process without the simulator (the tests run with it): the message names the GPU."""
    if shutil.which("nvidia-smi") is not None:
        pytest.skip("a GPU is present")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    code = ("import numpy as np, wsrbench\n"
            "try:\n    wsrbench.prox(np.ones(3), 0.1, backend='numba_cuda')\n"
            "except RuntimeError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=300)
    assert "backend 'numba_cuda' is not available here: no CUDA GPU" in out.stdout, out.stderr


def test_bfloat16_gets_the_float16_message():
    torch = pytest.importorskip("torch")
    msgs = []
    for dt in (torch.float16, torch.bfloat16):
        with pytest.raises(TypeError) as e:
            wsrbench.prox(torch.ones(3, dtype=dt), 0.1)
        msgs.append(str(e.value).replace(str(dt), "DTYPE"))
    assert msgs[0] == msgs[1] and "only float32 and float64" in msgs[0]


def test_compare_help_lists_every_file_it_writes(capsys):
    with pytest.raises(SystemExit):
        from wsrbench.cli import build_parser

        build_parser().parse_args(["compare", "--help"])
    text = capsys.readouterr().out
    for name in ("results.md", "results.csv", "results.json", "scaling.png", "depth.png",
                 "gpu_model.md"):
        assert name in text, name


def test_gpu_model_shows_progress_and_writes_a_header(tmp_path, monkeypatch, capsys):
    import wsrbench.bench.gpu_model as gm

    calls = []

    def table(fams, sizes, progress=None, **kw):
        for f in fams:
            for d in sizes:
                progress(f"gpu model {f} d={d}")
                calls.append((f, d))
        return []

    monkeypatch.setattr(gm, "model_table", table)
    monkeypatch.setattr("wsrbench.bench.benchtools.torch_cuda", lambda: False)
    assert main(["compare", "--gpu-model", "--families", "gaussian", "--sizes", "1e3,1e4",
                 "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert calls == [("gaussian", 1000), ("gaussian", 10000)]
    assert "gpu model gaussian" in err  # the progress line
    head = (tmp_path / "gpu_model.md").read_text().splitlines()[:8]
    assert head[0].startswith("# GPU model")
    for field in ("- date: ", "- commit: ", "- machine: ", "- load average",
                  "- command: `wsrbench compare"):
        assert any(line.startswith(field) for line in head), field

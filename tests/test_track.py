"""wsrbench track: the tracked set, the comparison rules, the committed baseline, and (slow, under
valgrind) deterministic counts and a planted regression caught by ``--check``."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from wsrbench.bench import track
from wsrbench.core import registry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASELINE = os.path.join(ROOT, "benchmarks", "baseline.json")
NAMES = [b.name for b in track.benchmarks()]


@pytest.mark.parametrize("algorithm", registry.get_backend("numba").algorithms)
def test_every_numba_algorithm_is_tracked_on_both_dtypes_and_its_worst_case(algorithm):
    mine = [n for n in NAMES if n.startswith(f"prox.numba.{algorithm}.")]
    for dtype in track.DTYPES:
        assert any(f".{dtype}." in n for n in mine), (algorithm, dtype)
    worst = registry.get_algorithm(algorithm).worst_case
    if worst:
        assert any(f".{worst}." in n for n in mine), (algorithm, worst)


@pytest.mark.parametrize("algorithm", registry.get_backend("numba_cuda").algorithms)
def test_every_numba_cuda_algorithm_has_dry_run_counts(algorithm):
    assert any(n.startswith(f"gpu.numba_cuda.{algorithm}.") for n in NAMES)


def test_names_are_unique():
    assert len(NAMES) == len(set(NAMES))


def _run(benchmarks, **tools):
    meta = {"instructions": True, "cpu": "c", "pinned_env": track.PINNED_ENV,
            "cache_geometry": list(track.CACHE_GEOMETRY),
            "tools": {k: tools.get(k, "1") for k in track.VERSIONED}, "skipped": {}}
    return {"meta": meta, "benchmarks": benchmarks}


def test_compare_flags_instructions_beyond_the_threshold_only():
    t = track.DEFAULT_THRESHOLD
    base = _run({"a": {"instructions": 10**6, "rounds": 3}, "b": {"instructions": 10**6}})
    over = round(10**6 * (1 + 2 * t))
    under = round(10**6 * (1 + t / 4))
    c = track.compare(base, _run({"a": {"instructions": over, "rounds": 3},
                                  "b": {"instructions": under}}), t)
    assert [r[0] for r in c.regressions] == ["a"] and not c.ok
    assert c.regressions[0][4] == pytest.approx(over / 10**6)
    c = track.compare(base, _run({"a": {"instructions": round(10**6 * (1 - 2 * t)), "rounds": 3},
                                  "b": {"instructions": 10**6}}), t)
    assert c.ok and [r[0] for r in c.improvements] == ["a"]


def test_last_level_misses_are_recorded_not_compared():
    base = _run({"a": {"instructions": 100, "ll_misses": 10}})
    assert track.compare(base, _run({"a": {"instructions": 100, "ll_misses": 20}})).ok


def test_compare_flags_any_change_of_an_algorithmic_count():
    base = _run({"a": {"instructions": 100, "rounds": 3}})
    c = track.compare(base, _run({"a": {"instructions": 100, "rounds": 4}}))
    assert not c.ok and c.regressions[0][:2] == ("a", "rounds")


def test_other_tool_versions_compare_only_machine_independent_counts():
    base = _run({"a": {"instructions": 100, "rounds": 3}})
    c = track.compare(base, _run({"a": {"instructions": 200, "rounds": 3}}, numba="2"))
    assert c.ok and not c.instructions_compared
    assert "numba" in track.format_comparison(c, track.DEFAULT_THRESHOLD)
    c = track.compare(base, _run({"a": {"instructions": 200, "rounds": 5}}, numba="2"))
    assert not c.ok


def test_a_benchmark_missing_from_the_run_fails_unless_skipped_for_a_reason():
    base = _run({"gpu.x": {"launches": 3}})
    assert track.compare(base, _run({})).missing == ["gpu.x"]
    run = _run({})
    run["meta"]["skipped"]["gpu.x"] = "ImportError: no numba-cuda"
    assert track.compare(base, run).ok


@pytest.mark.parametrize("threshold", [0.0, 1.0, -0.1])
def test_threshold_outside_0_1_is_refused(threshold):
    with pytest.raises(ValueError, match="threshold"):
        track.compare(_run({}), _run({}), threshold)


def test_parse_dump_reads_instructions_and_last_level_misses(tmp_path):
    p = tmp_path / "cg.out.2"
    p.write_text("desc: Trigger: Client Request: x\nevents: Ir I1mr D1mr D1mw ILmr DLmr DLmw\nsummary: 9 1 2 3 4 5 6\n"
                 "totals: 9 1 2 3 4 5 6\n")
    assert track._parse_dump(str(p)) == {"instructions": 9, "ll_misses": 4 + 5 + 6,
                                         "_trigger": "Client Request: x"}


def test_committed_baseline_covers_the_tracked_set():
    with open(BASELINE) as fh:
        base = json.load(fh)
    names = base["benchmarks"]
    assert len(names) >= 40
    assert sum("instructions" in c for c in names.values()) >= 20
    for key in track.VERSIONED:
        assert key in base["meta"]["tools"]
    assert base["meta"]["commit"] and base["meta"]["cpu"]
    for n in NAMES:  # a benchmark added to the set needs 'wsrbench track --update'
        assert n in names or any(k.startswith(n + ".") for k in names), n
    for c in names.values():
        assert all(isinstance(v, int) for v in c.values())


def test_cli_list_and_bad_threshold(capsys):
    from wsrbench.cli import main

    assert main(["track", "--list", "--only", "prox.numba.pava.*"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out and all("prox.numba.pava." in line for line in out)
    assert main(["track", "--threshold", "5"]) == 2
    assert "--threshold" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Under valgrind (slow)

needs_valgrind = pytest.mark.skipif(track.valgrind_path() is None,
                                    reason="valgrind is not installed (apt-get install valgrind)")

PLANT = textwrap.dedent('''
    """Two prox variants with extra work (WSRBENCH_PLANT_N and WSRBENCH_PLANT_N_SMALL iterations of
    a xorshift loop) and a calibration benchmark of 10**6 iterations of the same loop."""
    import os

    import numpy as np
    from numba import njit

    from wsrbench.bench.track import Benchmark, register_benchmark


    @njit(cache=True)
    def burn(n):
        s = np.uint64(88172645463325252)
        for _ in range(n):
            s ^= s << np.uint64(13)
            s ^= s >> np.uint64(7)
            s ^= s << np.uint64(17)
        return s


    def _variant(var):
        def make():
            import wsrbench
            from wsrbench.bench import cases

            n = int(os.environ.get(var, "0"))
            x, lam = cases.make("gaussian", 10_000, seed=0)
            wsrbench.prox(x, lam, algorithm="pava", backend="numba")
            burn(1)

            def call():
                wsrbench.prox(x, lam, algorithm="pava", backend="numba")
                burn(n)
                return {}
            return call
        return make


    def _calibration():
        burn(1)

        def call():
            burn(10**6)
            return {}
        return call


    register_benchmark(Benchmark("planted.pava_variant", _variant("WSRBENCH_PLANT_N")))
    register_benchmark(Benchmark("planted.pava_variant_small", _variant("WSRBENCH_PLANT_N_SMALL")))
    register_benchmark(Benchmark("planted.burn_1e6", _calibration))
''')

# Real benchmarks counted in both runs of the planted test: two processes must count them alike
# (a Numba kernel the planted variants already compiled, and NumPy's argsort; CI's own
# `wsrbench track --check` compares every tracked benchmark with the committed baseline).
REAL = ("prox.numba.pava.gaussian.float64.d1e4",
        "floor.argsort.gaussian.float64.d1e4")


def _track(tmp_path, *args, n=0, n_small=0):
    env = dict(os.environ, WSRBENCH_PLANT_N=str(n), WSRBENCH_PLANT_N_SMALL=str(n_small),
               PYTHONPATH=os.pathsep.join([str(tmp_path), ROOT, os.environ.get("PYTHONPATH", "")]))
    only = [a for name in ("planted.*", *REAL) for a in ("--only", name)]
    return subprocess.run([sys.executable, "-m", "wsrbench", "track", "--plugin", "wsrb_plant",
                           *only, *args], env=env, capture_output=True, text=True, timeout=1800)


@pytest.mark.slow
@needs_valgrind
def test_planted_regression_of_5_percent_is_caught_and_named_and_two_runs_agree(tmp_path):
    """Two processes under callgrind: the first writes a baseline, the second plants 5% more
    instructions in one prox variant and 0.5% in another. The 5% one is caught and named with its
    ratio, the 0.5% one is not, and the real benchmarks count the same instructions in both
    processes (to 0.1%; their last-level misses are recorded)."""
    (tmp_path / "wsrb_plant.py").write_text(PLANT)
    base = tmp_path / "base.json"
    r = _track(tmp_path, "--update", "--baseline", str(base))
    assert r.returncode == 0, r.stderr
    first = json.loads(base.read_text())["benchmarks"]
    assert set(REAL) <= set(first)
    prox = first["planted.pava_variant"]["instructions"]
    per_iteration = first["planted.burn_1e6"]["instructions"] / 10**6
    n, n_small = (round(f * prox / per_iteration) for f in (0.05, 0.005))
    second = tmp_path / "second.json"
    r = _track(tmp_path, "--check", "--baseline", str(base), "--json", str(second), n=n,
               n_small=n_small)
    assert r.returncode == 1, r.stdout + r.stderr
    regressed = [line for line in r.stdout.splitlines() if line.startswith("REGRESSED")]
    assert len(regressed) == 1 and "planted.pava_variant instructions" in regressed[0], regressed
    ratio = float(regressed[0].rsplit("(", 1)[1].rstrip("x)"))
    assert ratio == pytest.approx(1.05, abs=0.005)
    again = json.loads(second.read_text())["benchmarks"]
    for name in REAL:
        c = first[name]
        assert c["instructions"] > 0 and c["ll_misses"] > 0
        assert abs(again[name]["instructions"] - c["instructions"]) <= 1e-3 * c["instructions"]


def test_track_module_loads_alone_as_the_asv_history_benchmark_loads_it():
    """benchmarks/_track_count.py runs the current track.py against old commits, loaded by path
    outside the package: its top level may import only the standard library and NumPy."""
    import importlib.util

    path = os.path.join(ROOT, "benchmarks", "_track_count.py")
    spec = importlib.util.spec_from_file_location("_track_count_under_test", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.PINNED_ENV == track.PINNED_ENV and mod.cell_names()

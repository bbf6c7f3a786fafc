"""The asv suites cannot rot: every benchmark's setup and one call run here at a tiny size; the
speed table's measuring order and quiet-pair summary (scripts/numba_speed.py)."""
from __future__ import annotations

import importlib
import importlib.util
import inspect
import itertools
import json
import os
import re
from pathlib import Path

import pytest

from wsrbench import cases
from wsrbench.core import registry

bench_prox = importlib.import_module("benchmarks.bench_prox")
bench_floor = importlib.import_module("benchmarks.bench_floor")
bench_ops = importlib.import_module("benchmarks.bench_ops")
common = importlib.import_module("benchmarks._common")

PREFIXES = ("time_", "track_", "peakmem_", "mem_")
TINY_D = 100  # above the CUDA simulator's test cap (64): simulated backends skip, as in asv


def _classes(mod):
    return [c for _, c in inspect.getmembers(mod, inspect.isclass)
            if c.__module__ == mod.__name__ and hasattr(c, "params")]


def _run_all(cls, tiny):
    """setup + each benchmark once for every parameter combination, with d replaced by tiny."""
    ran = skipped = 0
    names = cls.param_names
    grids = [[tiny] if n == "d" else list(vals) for n, vals in zip(names, cls.params)]
    methods = [m for m in dir(cls) if m.startswith(PREFIXES)]
    assert methods, cls
    for combo in itertools.product(*grids):
        obj = cls()
        try:
            obj.setup(*combo)
        except NotImplementedError as exc:
            assert str(exc), "a skip must say why"
            skipped += 1
            continue
        for m in methods:
            out = getattr(obj, m)(*combo)
            if m.startswith("track_"):
                assert isinstance(out, int) and out >= 0
        ran += 1
    return ran, skipped


@pytest.mark.slow
@pytest.mark.parametrize("cls", _classes(bench_prox) + _classes(bench_floor) + _classes(bench_ops),
                         ids=lambda c: f"{c.__module__.split('.')[-1]}.{c.__name__}")
def test_benchmark_runs_at_tiny_size(cls):
    tiny = 1_000 if cls.__module__.endswith("bench_ops") else TINY_D
    ran, skipped = _run_all(cls, tiny)
    if cls.__name__ != "TorchSort":  # torch may be absent: then every combination skips
        assert ran > 0


def test_params_come_from_the_registry_and_cases():
    assert bench_prox.Prox.params[0] == [b.name for b in registry.backends()]
    assert bench_prox.Prox.params[1] == [a.name for a in registry.algorithms()]
    assert bench_prox.Prox.params[2] == cases.names()
    assert bench_prox.Prox.params[3][0] == 1_000 and bench_prox.Prox.params[3][-1] == 10_000_000
    assert set(cases.names("worst")) <= set(bench_prox.Prox.params[2])


def test_cap_table_names_known_things_and_skips_with_reason():
    algs = {a.name for a in registry.algorithms()}
    backends = {b.name for b in registry.backends()}
    for c in common.CAPS:
        assert c.algorithm == "*" or c.algorithm in algs
        assert c.family == "*" or c.family in cases.names()
        assert c.backend == "*" or c.backend in backends
        assert c.reason and c.device in ("*", "cpu", "gpu")
    with pytest.raises(NotImplementedError, match="capped at d=10000"):
        common.prepare("numpy", "end_collisions", "worst_end_collisions", 100_000)
    with pytest.raises(NotImplementedError, match="does not implement"):
        common.prepare("torch" if "torch" in backends else "numpy", "no_such_algorithm",
                       "gaussian", 1_000)


def test_cap_table_is_the_one_in_benchtools():
    from dataclasses import astuple

    from wsrbench.bench import benchtools

    # same entries; loaded by path, so the Cap class is another module's
    assert [astuple(c) for c in common.CAPS] == [astuple(c) for c in benchtools.CAPS]
    assert os.path.samefile(common.benchtools.__file__, benchtools.__file__)


def test_benchtools_loads_by_path_without_wsrbench():
    """asv runs these suites against older commits whose wsrbench lacks benchtools: the file must
    load by path with wsrbench not importable at all, and _common must load it from the checkout."""
    import subprocess
    import sys

    root = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))
    code = ("import sys, importlib.util; sys.modules['wsrbench'] = None; "
            "spec = importlib.util.spec_from_file_location('bt', 'wsrbench/bench/benchtools.py'); "
            "m = importlib.util.module_from_spec(spec); sys.modules['bt'] = m; "
            "spec.loader.exec_module(m); import numpy as np; "
            "print(m.cap_for('numpy', 'pava', 'gaussian', 'cpu').max_d, m.device_of(np.zeros(2)), "
            "m.best_time(lambda: None, 2) >= 0, 'torch' in sys.modules, 'numba' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=False,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["100000", "cpu", "True", "False", "False"]


def test_input_cache_round_trips(tmp_path, monkeypatch):
    import numpy as np

    monkeypatch.setattr(common, "_CACHE_DIR", str(tmp_path))
    x1, lam1 = common.make_input("worst_pava", 100_000)
    assert len(os.listdir(tmp_path)) == 1
    x2, lam2 = common.make_input("worst_pava", 100_000)
    x3, lam3 = cases.make("worst_pava", 100_000, seed=common.SEED)
    np.testing.assert_array_equal(x1, x3)
    np.testing.assert_array_equal(x2, x3)
    assert lam1 == lam2 == lam3


def test_asv_conf_points_at_the_suites():
    root = os.path.join(os.path.dirname(__file__), os.pardir)
    text = Path(root, "asv.conf.json").read_text()
    conf = json.loads(re.sub(r"^\s*//.*$", "", text, flags=re.M))  # asv allows // comments
    assert conf["benchmark_dir"] == "benchmarks" and conf["version"] == 1
    assert os.path.isfile(os.path.join(root, conf["benchmark_dir"], "__init__.py"))


def _numba_speed():
    root = os.path.join(os.path.dirname(__file__), os.pardir)
    spec = importlib.util.spec_from_file_location("numba_speed",
                                                  os.path.join(root, "scripts", "numba_speed.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_speed_table_spreads_each_small_cell_over_the_run():
    """scripts/numba_speed.py's table: every cell gets exactly its pairs; a cell at d <=
    SWEEP_MAX_D gets them in SWEEPS shares, one per sweep, with large cells between the sweeps
    (a burst of host activity must not cover a whole small cell); each large cell is measured
    once."""
    ns = _numba_speed()
    sizes = [10**4, 10**5, 10**6, 10**7]
    cells = [(dt, fam, d) for dt in ("float64", "float32") for fam in ("a", "b", "c") for d in sizes]
    order = ns._schedule(cells, 7, ns.SWEEPS)
    got = {}
    for i, n in order:
        got.setdefault(i, []).append(n)
    for i, (_, _, d) in enumerate(cells):
        assert sum(got[i]) == ns._runs(d, 7), cells[i]
        assert len(got[i]) == (ns.SWEEPS if d <= ns.SWEEP_MAX_D else 1), cells[i]
    small = [pos for pos, (i, _) in enumerate(order) if cells[i][2] <= ns.SWEEP_MAX_D]
    big = [pos for pos, (i, _) in enumerate(order) if cells[i][2] > ns.SWEEP_MAX_D]
    # large cells between the first and the last sweep, none all before or all after them
    assert small[0] < big[0] and big[-1] > small[len(small) // 2]
    first_of_sweep = small[:: len(small) // ns.SWEEPS]
    assert all(any(a < b < c for b in big) for a, c in zip(first_of_sweep, first_of_sweep[1:]))


def test_speed_table_quiet_pairs_are_the_fast_floor_ones():
    """_quiet_pairs keeps the pairs whose np.argsort ran within QUIET x the cell's 10th
    percentile: a stretch of slow pairs (both calls slower, the prox more) leaves the quiet
    median at the quiet ratio while it moves the median of all pairs."""
    import numpy as np

    ns = _numba_speed()
    tg = np.r_[np.full(60, 218e-6), np.full(40, 300e-6)]
    tf = np.r_[np.full(60, 0.45 * 218e-6), np.full(40, 0.58 * 300e-6)]
    m, n, n_all, med, p10 = ns._quiet_pairs(tf, tg)
    assert (n, n_all) == (60, 100) and abs(m - 0.45) < 1e-12
    assert abs(p10 - 218e-6) < 1e-12 and med == 218e-6
    tg[50:60] = 300e-6  # a majority slow: the median of all pairs moves, the quiet one does not
    tf[50:60] = 0.58 * 300e-6
    assert ns._quiet_pairs(tf, tg)[:2] == (m, 50)
    assert np.median(tf / tg) > 0.5

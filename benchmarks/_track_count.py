"""Instruction counts of the main Numba prox kernels on ANY commit since the numba backend.

asv runs the current ``benchmarks/`` against older commits, whose ``wsrbench`` predates
``wsrbench.bench.track`` (and the package layout it imports). This file therefore needs only
``wsrbench.prox(x, lam, algorithm=..., backend="numba")``, numpy and valgrind: it builds its own
seeded gaussian rows (the same values as ``cases.make("gaussian", d)`` do not matter here, only
that every commit gets the same ones) and counts each call exactly as ``wsrbench track`` does
(callgrind toggled on Numba's ``call_cfunc``, instrumentation and a named dump per call through
the client requests of ``wsrbench/bench/track.py``, loaded by path from this checkout, the
pinned Numba target of its ``PINNED_ENV``; docs/design.md#instruction-counts).

    python benchmarks/_track_count.py OUT.json [ALGORITHM ...]

writes ``{"prox.numba.ALG.gaussian.DTYPE.dD": {"instructions": N, "elements": D} | {"error": ...}}``.
"""
from __future__ import annotations

import glob
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile


def _track_module():
    """This checkout's wsrbench/bench/track.py as a standalone module (its top level needs only
    the standard library and NumPy), whatever wsrbench is on the path."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "wsrbench",
                        "bench", "track.py")
    spec = importlib.util.spec_from_file_location("_wsrbench_checkout_track", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # before exec: dataclasses look their module up by name
    spec.loader.exec_module(mod)
    return mod


_TRACK = _track_module()
PINNED_ENV = _TRACK.PINNED_ENV
ALGORITHMS = ("pava", "imminent_collisions", "search_collisions", "hull_bridges")
CELLS = [(d, dt) for d in (10_000, 100_000) for dt in ("float64", "float32")]
LAM_PER_SPREAD = 0.01  # lam = 0.01 x the row's standard deviation: many clusters, few rounds


def cell_names(algorithms=ALGORITHMS):
    return [f"prox.numba.{a}.gaussian.{dt}.d1e{len(str(d)) - 1}"
            for a in algorithms for d, dt in CELLS]


def _child(algorithms, out):
    import numpy as np

    import wsrbench

    cg = _TRACK.Callgrind()
    results = {}
    for a in algorithms:
        for d, dt in CELLS:
            name = f"prox.numba.{a}.gaussian.{dt}.d1e{len(str(d)) - 1}"
            x = np.random.default_rng(0).standard_normal(d).astype(dt)
            lam = LAM_PER_SPREAD
            try:
                wsrbench.prox(x, lam, algorithm=a, backend="numba")
            except Exception as exc:  # an algorithm this commit does not have
                results[name] = {"error": f"{type(exc).__name__}: {exc}"[:200]}
                continue
            cg.start()
            wsrbench.prox(x, lam, algorithm=a, backend="numba")
            cg.dump(name)
            cg.stop()
            results[name] = {"elements": d}
    with open(out, "w") as fh:
        json.dump(results, fh)


def count(algorithms=ALGORITHMS, python=sys.executable) -> dict:
    vg = shutil.which("valgrind")
    if vg is None:
        raise RuntimeError("valgrind is not installed")
    env = dict(os.environ, **PINNED_ENV)
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "r.json")
        me = os.path.abspath(__file__)
        args = [python, me, "--child", out, *algorithms]
        subprocess.run(args, env=env, check=True, capture_output=True)  # fills Numba's cache
        cg = os.path.join(tmp, "cg.out")
        subprocess.run([vg, "--tool=callgrind", "--instr-atstart=no", "--collect-atstart=no",
                        "--toggle-collect=*call_cfunc*", f"--callgrind-out-file={cg}", *args],
                       env=env, check=True, capture_output=True)
        with open(out) as fh:
            results = json.load(fh)
        for path in glob.glob(cg + ".*"):
            c = _TRACK._parse_dump(path)
            name = c["_trigger"].removeprefix("Client Request:").strip()
            if name in results:
                results[name]["instructions"] = c["instructions"]
        return results


if __name__ == "__main__":
    if sys.argv[1] == "--child":
        _child(sys.argv[3:] or ALGORITHMS, sys.argv[2])
    else:
        res = count(sys.argv[2:] or ALGORITHMS)
        with open(sys.argv[1], "w") as fh:
            json.dump(res, fh, indent=1)

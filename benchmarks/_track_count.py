"""Instruction counts of the main Numba prox kernels on ANY commit since the numba backend.

asv runs the current ``benchmarks/`` against older commits, whose ``wsrbench`` predates
``wsrbench.bench.track`` (and the package layout it imports). This file therefore needs only
``wsrbench.prox(x, lam, algorithm=..., backend="numba")``, numpy and valgrind: it builds its own
seeded gaussian rows (the same values as ``cases.make("gaussian", d)`` do not matter here, only
that every commit gets the same ones) and counts each call exactly as ``wsrbench track`` does
(callgrind toggled on Numba's ``call_cfunc``, a ``getppid`` dump before and after each call, the
pinned Numba target of ``wsrbench.bench.track.PINNED_ENV``; docs/design.md#instruction-counts).

    python benchmarks/_track_count.py OUT.json [ALGORITHM ...]

writes ``{"prox.numba.ALG.gaussian.DTYPE.dD": {"instructions": N, "elements": D} | {"error": ...}}``.
"""
from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile

PINNED_ENV = {"NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": "", "NUMBA_NUM_THREADS": "1",
              "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}
ALGORITHMS = ("pava", "imminent_collisions", "search_collisions", "hull_bridges")
CELLS = [(d, dt) for d in (10_000, 100_000) for dt in ("float64", "float32")]
LAM_PER_SPREAD = 0.01  # lam = 0.01 x the row's standard deviation: many clusters, few rounds


def cell_names(algorithms=ALGORITHMS):
    return [f"prox.numba.{a}.gaussian.{dt}.d1e{len(str(d)) - 1}"
            for a in algorithms for d, dt in CELLS]


def _child(algorithms, out):
    import numpy as np

    import wsrbench

    results = {}
    for a in algorithms:
        for d, dt in CELLS:
            name = f"prox.numba.{a}.gaussian.{dt}.d1e{len(str(d)) - 1}"
            x = np.random.default_rng(0).standard_normal(d).astype(dt)
            lam = LAM_PER_SPREAD
            try:
                wsrbench.prox(x, lam, algorithm=a, backend="numba")
                ok = True
            except Exception as exc:  # an algorithm this commit does not have
                results[name] = {"error": f"{type(exc).__name__}: {exc}"[:200]}
                ok = False
            os.getppid()
            if ok:
                wsrbench.prox(x, lam, algorithm=a, backend="numba")
            os.getppid()
            if ok:
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
        subprocess.run([vg, "--tool=callgrind", "--collect-atstart=no",
                        "--toggle-collect=*call_cfunc*", "--dump-before=getppid",
                        f"--callgrind-out-file={cg}", *args], env=env, check=True,
                       capture_output=True)
        with open(out) as fh:
            results = json.load(fh)
        dumps = sorted(glob.glob(cg + ".*"), key=lambda p: int(p.rsplit(".", 1)[1]))
        names = [n for a in algorithms for n in cell_names([a])]
        if len(dumps) != 2 * len(names):
            raise RuntimeError(f"expected {2 * len(names)} dumps, found {len(dumps)}")
        for i, name in enumerate(names):
            with open(dumps[2 * i + 1]) as fh:
                total = next(int(line.split()[1]) for line in fh if line.startswith("totals:"))
            if "error" not in results[name]:
                results[name]["instructions"] = total
        return results


if __name__ == "__main__":
    if sys.argv[1] == "--child":
        _child(sys.argv[3:] or ALGORITHMS, sys.argv[2])
    else:
        res = count(sys.argv[2:] or ALGORITHMS)
        with open(sys.argv[1], "w") as fh:
            json.dump(res, fh, indent=1)

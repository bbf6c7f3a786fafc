"""``wsrbench reproduce EXPERIMENT``: reproduce a result of the weight-sharing paper offline.

The experiment itself (data, models, training, measures, outputs) is ``wsrbench.nn.reproduce``; this
module is its command line.
"""
from __future__ import annotations

import importlib.util
import time

from ..nn import reproduce


def add_arguments(p) -> None:
    import argparse

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.description = reproduce.__doc__
    p.add_argument("experiment", choices=reproduce.EXPERIMENTS, help="what to reproduce")
    p.add_argument("--quick", action="store_true",
                   help="under a minute: 1 seed, 6 epochs, hidden 64, 2 torus shifts per image")
    p.add_argument("--out", default="wsrbench-reproduce", help="output directory")
    p.add_argument("--seeds", type=int, help="training seeds per model and data (default 3)")
    p.add_argument("--epochs", type=int, help="epochs (default 40)")
    p.add_argument("--hidden", type=int, help="hidden units of the FC nets (default 100)")
    p.add_argument("--lam", type=float, help="weight of R for fc+prox (default 0.002)")
    p.add_argument("--settings", help="comma-separated data settings (default "
                                      + ",".join(reproduce.SETTINGS) + ")")


def run(args) -> int:
    for mod in ("torch", "sklearn"):
        if importlib.util.find_spec(mod) is None:
            raise RuntimeError(f"wsrbench reproduce needs {mod}: pip install "
                               f"\"torch==2.13.0\" -e \".[train]\"")
    cfg = reproduce._config(args.quick, args)
    t0 = time.perf_counter()
    res = reproduce.run_experiment(cfg, args.out)
    print()
    print(reproduce.format_table(res["summary"]))
    print(f"\n{time.perf_counter() - t0:.0f} s; wrote " + ", ".join(res["written"]))
    return 0

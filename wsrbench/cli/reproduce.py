"""``wsrbench reproduce paper-torus``: the weight-sharing paper's torus experiment, offline.

The experiment itself (data, models, training, tuning, measures, outputs) is
``wsrbench.nn.reproduce``; this module is its command line.
"""
from __future__ import annotations

import importlib.util

from ..nn import reproduce


def add_arguments(p) -> None:
    import argparse

    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.description = reproduce.__doc__
    p.add_argument("experiment", choices=reproduce.EXPERIMENTS, help="what to reproduce")
    p.add_argument("--data", required=True, choices=reproduce.DATASETS,
                   help="digits (scikit-learn, 8x8 torus) or mnist1d (40 positions, generated)")
    p.add_argument("--quick", action="store_true",
                   help="a smoke run of a couple of minutes: one grid point, 1 seed, "
                        f"{reproduce.QUICK['epochs']} epochs; not a result")
    p.add_argument("--out", help="output directory (default wsrbench-reproduce/DATA)")
    p.add_argument("--seeds", type=int, help="training seeds per final configuration (default 3)")
    p.add_argument("--epochs", type=int, help="epochs (default: per data set, see the table)")
    p.add_argument("--arms", help="comma-separated arms to run (default all: "
                                  + ",".join(reproduce.ARMS) + ")")
    p.add_argument("--grid", action="append", default=[],
                   help="REG=S1,S2,...: the strength grid of a regulariser (repeatable; to split "
                        "one tuning over processes)")
    p.add_argument("--seed-offset", type=int, default=0,
                   help="first training seed (default 0; to split the seeds over processes)")
    p.add_argument("--jobs", type=int, default=1,
                   help="worker processes training in parallel, one torch thread each (default 1; "
                        "at most the free cores)")
    p.add_argument("--train-sizes", help="mnist1d: comma-separated training-set sizes, each a "
                                         "separate generated data set (default 4000,16000; "
                                         "--quick: 4000)")


def run(args) -> int:
    mods = ["torch", "sklearn"] if args.data == "digits" else ["torch", "mnist1d"]
    for mod in mods:
        if importlib.util.find_spec(mod) is None:
            raise RuntimeError(f"wsrbench reproduce --data {args.data} needs {mod}: pip install "
                               f"\"torch==2.13.0\" -e \".[torch,repro]\"")
    sizes = None
    if args.train_sizes:
        if args.data != "mnist1d":
            raise ValueError("--train-sizes applies to --data mnist1d only (digits has 1797 images)")
        try:
            sizes = [int(v) for v in args.train_sizes.split(",")]
        except ValueError:
            raise ValueError(f"--train-sizes: comma-separated integers, got "
                             f"{args.train_sizes!r}") from None
        if min(sizes) < 100:
            raise ValueError(f"--train-sizes: at least 100 examples each, got {sizes}")
    arm_names = args.arms.split(",") if args.arms else None
    grids = {}
    for g in args.grid:
        reg, _, values = g.partition("=")
        try:
            grids[reg] = [float(v) for v in values.split(",")]
        except ValueError:
            raise ValueError(f"--grid: REG=S1,S2,... with numbers, got {g!r}") from None
    cfg = reproduce.make_config(args.data, args.quick, args.seeds, args.epochs, sizes, arm_names,
                                grids, args.seed_offset, args.jobs)
    out = args.out or f"wsrbench-reproduce/{args.data}"
    if args.quick:
        print("QUICK SMOKE RUN: one grid point, one seed, few epochs; the figures are not a result")
    res = reproduce.run_experiment(cfg, out, command=reproduce.main_command())
    print()
    print(reproduce.format_table(res["summary"]))
    print(f"\n{res['seconds']:.0f} s; wrote " + ", ".join(res["written"]))
    return 0

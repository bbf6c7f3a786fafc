"""What the torus reproduction's scale costs in accuracy: Net2FC without a regulariser (seed 0)
at the settings ``wsrbench reproduce paper-torus`` uses and at one change each (more epochs, the
paper's channels, no dropout, no torus), with training and validation accuracy per epoch.

The evidence for the choice of epochs and channels in
docs/design.md#reproducing-the-torus-experiment. Writes OUT/paper_torus_scale.md (provenance
header, table) and OUT/paper_torus_scale.png (validation curves).

    python scripts/torus_scale.py --out docs/figures
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from wsrbench.core import provenance
from wsrbench.nn import reproduce

# (data, label, changes to the run's configuration, roll)
RUNS = [
    ("mnist1d", "as run (20 epochs)", {}, True),
    ("mnist1d", "60 epochs", {"epochs": 60}, True),
    ("mnist1d", "the paper's channels", {"c1": 32, "c2": 64}, True),
    ("mnist1d", "no dropout", {"dropout": 0.0}, True),
    ("mnist1d", "no torus (examples not rolled)", {}, False),
    ("digits", "20 epochs", {"epochs": 20}, True),
    ("digits", "60 epochs", {"epochs": 60}, True),
    ("digits", "as run (120 epochs)", {}, True),
    ("digits", "240 epochs", {"epochs": 240}, True),
]


def one(data, changes, roll, quick):
    cfg = {**reproduce.make_config(data), **changes}
    if quick:
        cfg["epochs"] = 1
    splits = reproduce.load_data(data, roll=roll)
    t0 = time.perf_counter()
    model, curve = reproduce.train("fc", splits, "none", 0.0, cfg, 0)
    return {"cfg": cfg, "curve": curve, "roll": roll, "seconds": time.perf_counter() - t0,
            "train": reproduce.accuracy(model, splits["train"])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="docs/figures")
    ap.add_argument("--quick", action="store_true", help="one epoch each (a smoke test)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    rows = []
    with provenance.LoadMonitor(interval=10.0) as load:
        for data, label, changes, roll in RUNS:
            r = one(data, changes, roll, args.quick)
            rows.append((data, label, r))
            print(data, label, f"val {r['curve'][-1]:.3f} train {r['train']:.3f} "
                  f"({r['seconds']:.0f} s)", flush=True)
    os.makedirs(args.out, exist_ok=True)
    lines = [provenance.header("Net2FC on the torus: epochs, channels, dropout, the torus itself",
                               load),
             "- one run each (seed 0, no regulariser), 1 torch thread; validation accuracy at the "
             "last epoch and at a quarter, half and three quarters of the epochs; training "
             "accuracy in eval mode at the end",
             "", "| data | run | c1, c2 | epochs | batch | dropout | torus | validation % "
             "(1/4, 1/2, 3/4, end) | training % | s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for data, label, r in rows:
        c, cu = r["cfg"], r["curve"]
        q = [cu[max(0, round(f * len(cu)) - 1)] for f in (0.25, 0.5, 0.75, 1.0)]
        lines.append(f"| {data} | {label} | {c['c1']}, {c['c2']} | {c['epochs']} | {c['batch']} "
                     f"| {c['dropout']} | {'yes' if r['roll'] else 'no'} "
                     f"| {', '.join(f'{100 * v:.1f}' for v in q)} | {100 * r['train']:.1f} "
                     f"| {r['seconds']:.0f} |")
    with open(os.path.join(args.out, "paper_torus_scale.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for data, label, r in rows:
        ax = axes[0 if data == "mnist1d" else 1]
        ax.plot(np.arange(1, len(r["curve"]) + 1), 100 * np.array(r["curve"]), label=label)
    for ax, data in zip(axes, ("mnist1d (4,000 training)", "digits (8x8)")):
        ax.set_title(f"Net2FC, no regulariser: {data}", fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation accuracy %")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "paper_torus_scale.png"), dpi=100)


if __name__ == "__main__":
    main()

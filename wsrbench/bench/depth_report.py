"""The parallel depth in ``wsrbench compare``: a table and a depth-vs-d figure
(docs/design.md#parallel-depth).

Depth is a property of the algorithm and the input, not of the backend (the backends that count it
agree with the NumPy reference), so each (algorithm, family, d) shows one value: the first backend's
that counted it. The fitted exponent p of depth ~ (log2 d)^p (least squares on log depth against
log log2 d) reads 1 for O(log d), 2 for O(log^2 d), 3 for O(log^3 d); an algorithm whose depth
grows like a power of d shows a large p and, in the q column, depth ~ d^q.
"""
from __future__ import annotations

import math
import sys

import numpy as np


def depth_points(records) -> dict:
    """(algorithm, family) -> sorted [(d, depth)] from the records that counted a depth."""
    out: dict = {}
    for r in records:
        if getattr(r, "depth", -1) is None or getattr(r, "depth", -1) < 0 or r.status == "error":
            continue
        pts = out.setdefault((r.algorithm, r.family), {})
        pts.setdefault(r.d, r.depth)
    return {k: sorted(v.items()) for k, v in out.items()}


def fit_log_exponent(points) -> tuple[float, float]:
    """(p, q): slopes of log depth against log log2 d and against log d (NaN with < 2 points)."""
    pts = [(d, v) for d, v in points if d >= 4 and v > 0]
    if len(pts) < 2:
        return math.nan, math.nan
    d = np.array([p[0] for p in pts], dtype=float)
    v = np.log([p[1] for p in pts])
    return float(np.polyfit(np.log(np.log2(d)), v, 1)[0]), float(np.polyfit(np.log(d), v, 1)[0])


def markdown(records, sizes) -> str:
    """Depth per (algorithm, family) and d, with the fitted exponents; '' when none was counted."""
    pts = depth_points(records)
    if not pts:
        return ""
    head = ["algorithm", "family"] + [f"d={d:g}" for d in sizes] + ["p: (log d)^p", "q: d^q"]
    lines = ["Parallel depth (dependent steps with unlimited processors, docs/design.md#parallel-depth):", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (a, f), ps in pts.items():
        by_d = dict(ps)
        p, q = fit_log_exponent(ps)
        cells = [str(by_d[d]) if d in by_d else "-" for d in sizes]
        lines.append("| " + " | ".join([a, f] + cells + [f"{p:.2f}" if np.isfinite(p) else "-",
                                                        f"{q:.2f}" if np.isfinite(q) else "-"])
                     + " |")
    return "\n".join(lines) + "\n"


def plot(records, path) -> bool:
    """Log-log depth vs d, one panel per family, one line per algorithm labelled with its p."""
    pts = depth_points(records)
    if not pts:
        return False
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("compare: matplotlib is not installed, no depth plot (pip install "
              "\"wsrbench[bench]\")", file=sys.stderr)
        return False
    families = list(dict.fromkeys(f for _, f in pts))
    algs = list(dict.fromkeys(a for a, _ in pts))
    color = {a: plt.cm.tab10(i % 10) for i, a in enumerate(algs)}
    ncol = min(3, len(families))
    nrow = math.ceil(len(families) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(5 * ncol, 3.8 * nrow), squeeze=False)
    for ax, fam in zip(axes.flat, families):
        for a in algs:
            ps = pts.get((a, fam))
            if not ps:
                continue
            p, _ = fit_log_exponent(ps)
            label = f"{a} (p={p:.2f})" if np.isfinite(p) else a
            ax.plot([d for d, _ in ps], [v for _, v in ps], marker="o", ms=4, color=color[a],
                    label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{fam}: depth ~ (log2 d)^p")
        ax.set_xlabel("d")
        ax.set_ylabel("parallel depth")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(families):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True

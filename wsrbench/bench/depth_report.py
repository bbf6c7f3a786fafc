"""The parallel depth in ``wsrbench compare``: a table and a depth-vs-d figure
(docs/design.md#parallel-depth).

Depth is a property of the algorithm and the input, not of the backend (the backends that count it
agree with the NumPy reference), so each (algorithm, family, d) shows one value: the first backend's
that counted it. The fitted exponent p of depth ~ (log2 d)^p (least squares on log depth against
log log2 d) reads 1 for O(log d), 2 for O(log^2 d), 3 for O(log^3 d). An algorithm whose depth
grows like a power of d (q >= SEQUENTIAL_Q in depth ~ d^q: a sequential one, pava, or one on its
cascade) has no meaningful p: its measured law is depth ~ d^q, shown instead.
"""
from __future__ import annotations

import math
import sys

import numpy as np

# depth ~ (log2 d)^p with p <= 3 fits q = p / ln d < 0.4 over d >= 10^2; a power law of d is
# steeper: from q = 0.5 on, the line is read as depth ~ d^q (docs/design.md#parallel-depth)
SEQUENTIAL_Q = 0.5


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


def law(points) -> tuple[str, float]:
    """The measured law of a depth line: ("(log2 d)^p", p) for a polylogarithmic one,
    ("d^q", q) where q >= :data:`SEQUENTIAL_Q` (a power of d: p would mean nothing),
    ("", nan) with fewer than two points."""
    p, q = fit_log_exponent(points)
    if not np.isfinite(q):
        return "", math.nan
    return ("d^q", q) if q >= SEQUENTIAL_Q else ("(log2 d)^p", p)


def markdown(records, sizes) -> str:
    """Depth per (algorithm, family) and d, with the fitted law: p of (log2 d)^p, or for a
    sequential line (depth ~ d^q, q >= SEQUENTIAL_Q) '-' there and q; '' when none was counted."""
    pts = depth_points(records)
    if not pts:
        return ""
    head = ["algorithm", "family"] + [f"d={d:g}" for d in sizes] + ["p: (log d)^p", "q: d^q"]
    lines = ["Parallel depth (dependent steps with unlimited processors, docs/design.md#parallel-depth; "
             f"p is left out where q >= {SEQUENTIAL_Q}: depth grows like a power of d):", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (a, f), ps in pts.items():
        by_d = dict(ps)
        p, q = fit_log_exponent(ps)
        sequential = law(ps)[0] == "d^q"
        cells = [str(by_d[d]) if d in by_d else "-" for d in sizes]
        lines.append("| " + " | ".join(
            [a, f] + cells + [f"{p:.2f}" if np.isfinite(p) and not sequential else "-",
                              f"{q:.2f}" if np.isfinite(q) else "-"]) + " |")
    return "\n".join(lines) + "\n"


def legend_label(algorithm: str, laws: dict) -> str:
    """One legend entry over the families: the range of p where the law is (log2 d)^p, and each
    family where it is d^q (a sequential line, or an algorithm on its cascade)."""
    poly = sorted(e for (k, e) in laws.values() if k.startswith("("))
    power = [(f, e) for f, (k, e) in laws.items() if k == "d^q"]
    parts = []
    if poly:
        rng = f"{poly[0]:.2f}" if poly[-1] - poly[0] < 0.005 else f"{poly[0]:.2f}-{poly[-1]:.2f}"
        parts.append(f"depth ~ (log2 d)^p, p = {rng}")
    if power and not poly:
        qs = sorted(e for _, e in power)
        rng = f"{qs[0]:.2f}" if qs[-1] - qs[0] < 0.005 else f"{qs[0]:.2f}-{qs[-1]:.2f}"
        parts.append(f"depth ~ d^q, q = {rng} (sequential)")
    elif power:
        parts.append("depth ~ d^q on " + ", ".join(f"{f} (q = {e:.2f})" for f, e in power))
    return f"{algorithm}: " + "; ".join(parts) if parts else algorithm


def capped_lines(records, capped) -> set:
    """(algorithm, family) whose depth line stops at a size cap: some backend of it was not run
    beyond a cap (compare's plan), and the line ends below the family's largest d."""
    pts = depth_points(records)
    top = {}
    for r in records:
        top[r.family] = max(top.get(r.family, 0), r.d)
    out = set()
    for _b, a, f, over, _cap in capped:
        ps = pts.get((a, f))
        if over and ps and ps[-1][0] < max([top.get(f, 0)] + list(over)):
            out.add((a, f))
    return out


def figure(records, *, capped=(), title=""):
    """The depth figure (a matplotlib Figure; None without points or matplotlib).

    One panel per family, one line per algorithm. The x axis is log2 d on a log scale (ticks
    labelled with d), the y axis log depth: a polylogarithmic law depth ~ (log2 d)^p is then a
    straight line of slope p, the fitted law each legend entry names; a sequential line is labelled
    with its measured depth ~ d^q instead. An x marks where a line stops at a size cap. The legend
    sits below the panels (it covers no data); the title carries dtype, machine and date.
    """
    pts = depth_points(records)
    if not pts:
        return None
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator
    except ImportError:
        print("compare: matplotlib is not installed, no depth plot (pip install "
              "\"wsrbench[bench]\")", file=sys.stderr)
        return None
    families = list(dict.fromkeys(f for _, f in pts))
    algs = list(dict.fromkeys(a for a, _ in pts))
    color = {a: plt.cm.tab10(i % 10) for i, a in enumerate(algs)}
    stopped = capped_lines(records, capped)
    ncol = min(3, len(families))
    nrow = math.ceil(len(families) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(5 * ncol, 3.6 * nrow), squeeze=False)
    laws: dict = {a: {} for a in algs}
    for (a, f), ps in pts.items():
        kind, e = law([(d, v) for d, v in ps if d >= 2 and v > 0])
        if kind:
            laws[a][f] = (kind, e)
    handles: dict = {}
    for ax, fam in zip(axes.flat, families):
        ds = sorted({d for (a, f), ps in pts.items() if f == fam for d, _ in ps if d >= 2})
        for a in algs:
            ps = [(d, v) for d, v in pts.get((a, fam), []) if d >= 2 and v > 0]
            if not ps:
                continue
            (line,) = ax.plot([math.log2(d) for d, _ in ps], [v for _, v in ps], marker="o",
                              ms=4, color=color[a], label=legend_label(a, laws[a]))
            handles.setdefault(a, line)
            if (a, fam) in stopped:
                d, v = ps[-1]
                ax.plot([math.log2(d)], [v], marker="x", ms=10, mew=2, ls="none", color=color[a],
                        gid="cap")
        ax.set_xscale("log")
        ax.set_yscale("log")
        if ds:  # ticks at the measured sizes, labelled with d (the axis is log2 d)
            ax.xaxis.set_major_locator(FixedLocator([math.log2(d) for d in ds]))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xticklabels([f"{d:.0e}".replace("e+0", "e") if d >= 1000 else str(d)
                                for d in ds], fontsize=7)
        ax.set_title(f"{fam}", fontsize=9)
        ax.set_xlabel("d (axis: log2 d, log scale)", fontsize=8)
        ax.set_ylabel("parallel depth", fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[len(families):]:
        ax.axis("off")
    handles = list(handles.values())
    if stopped:
        (h,) = axes.flat[0].plot([], [], marker="x", ls="none", color="k",
                                 label="line stops at a size cap")
        handles.append(h)
    height = fig.get_size_inches()[1]
    leg_h = math.ceil(len(handles) / 2) * 0.2 / height
    fig.legend(handles, [h.get_label() for h in handles], loc="lower center", ncol=2, fontsize=7,
               bbox_to_anchor=(0.5, 0.005), title="the fitted law of each algorithm's lines "
               "(straight where depth ~ (log2 d)^p)", title_fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.02 + leg_h + 0.25 / height, 1, 1 - 0.35 / height if title else 1))
    return fig


def plot(records, path, *, capped=(), title="") -> bool:
    """Write :func:`figure` to ``path`` (PNG); False when there is nothing to draw."""
    fig = figure(records, capped=capped, title=title)
    if fig is None:
        return False
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=110, metadata={"Title": title} if title else None)
    plt.close(fig)
    return True

"""What ``wsrbench compare`` writes: the markdown table, CSV, JSON and the scaling plot.

Input: the records of :func:`wsrbench.bench.compare.measure`, their :func:`wsrbench.bench.compare.summarize`
rows and the :class:`wsrbench.bench.compare.Plan` (for the caps that removed sizes). Files written to
the output directory: results.md (the table), results.csv and results.json (raw figures, one
record per measurement), scaling.png (log-log time vs d, one panel per family, the sort floor
drawn dashed and named, an x where a line stops at a cap, dtype, machine and date in the title;
needs matplotlib: pip install "wsrbench[bench]"), and the parallel depth: a table in results.md
and depth.png (``wsrbench.bench.depth_report``). results.md groups its table by family and gives the
floor's own times.
"""
from __future__ import annotations

import csv
import json
import math
import os
import sys
import textwrap
from dataclasses import asdict

import numpy as np

from . import depth_report
from .benchtools import fmt_d, fmt_time
from .compare import Record


def markdown_table(summary, sizes) -> str:
    head = (["backend", "algorithm", "family"] + [f"d={fmt_d(d)}" for d in sizes]
            + ["exponent", "x floor (largest d)", "certified"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summary:
        cells = []
        for d in sizes:
            v = s["times"].get(d)
            cells.append("capped" if v is None else (v.upper() if isinstance(v, str) else fmt_time(v)))
        p = s["exponent"]
        ratio = s["ratio_to_floor"]
        ratio_s = f"{ratio:.3g} (d={fmt_d(s['ratio_d'])})" if np.isfinite(ratio) else "-"
        family = s["family"] + (" (worst)" if s["regime"] == "worst" else "")
        lines.append("| " + " | ".join([s["backend"], s["algorithm"], family] + cells
                                        + [f"{p:.2f}" if np.isfinite(p) else "-", ratio_s,
                                           "yes" if s["certified"] else "NO"]) + " |")
    return "\n".join(lines)


def floor_rows(records) -> list[tuple]:
    seen = {}
    for r in records:
        if np.isfinite(r.floor_seconds):
            seen[(r.family, r.d, r.floor)] = r.floor_seconds
    return sorted((f, d, name, t) for (f, d, name), t in seen.items())


def caps_applied(plan) -> list[tuple]:
    """Each cap that removed something, once, with the number of combinations it capped."""
    counts: dict = {}
    for _, _, _, _, c in plan.capped:
        counts[c] = counts.get(c, 0) + 1
    return list(counts.items())


def write_outputs(out_dir, records, summary, sizes, plan, meta, *, plot=True) -> list[str]:
    os.makedirs(out_dir, exist_ok=True)
    written = []
    md = results_header(meta) + ["", grouped_tables(summary, sizes), "",
                                 floor_table(records, sizes), ""]
    depth_md = depth_report.markdown(records, sizes)  # docs/design.md#parallel-depth
    if depth_md:
        md += [depth_md]
    if plan.capped:
        md += ["Caps (backend/algorithm/family: sizes above the cap are not run; in the tables "
               "\"capped\", in the plot an x where the line stops):", ""]
        md += [f"- {c.backend}/{c.algorithm}/{c.family}{' on CPU' if c.device == 'cpu' else ''}: "
               f"d <= {c.max_d} ({plural(n, 'combination')}): {c.reason}"
               for c, n in caps_applied(plan)]
        md.append("")
    fails = [r for r in records if r.status != "ok"]
    if fails:
        md += ["Failures:", ""] + [f"- {r.backend} / {r.algorithm} / {r.family} / d={r.d}: "
                                   f"{r.status}: {r.message}" for r in fails] + [""]
    path = os.path.join(out_dir, "results.md")
    with open(path, "w") as fh:
        fh.write("\n".join(md))
    written.append(path)

    path = os.path.join(out_dir, "results.csv")
    with open(path, "w", newline="") as fh:
        names = list(asdict(records[0]).keys()) if records else list(Record.__dataclass_fields__)
        wr = csv.DictWriter(fh, fieldnames=names)
        wr.writeheader()
        for r in records:
            wr.writerow(asdict(r))
    written.append(path)

    path = os.path.join(out_dir, "results.json")
    with open(path, "w") as fh:
        json.dump({"meta": meta, "records": [asdict(r) for r in records],
                   "summary": [{**s, "times": {str(k): v for k, v in s["times"].items()}}
                               for s in summary],
                   "caps": [{"backend": b, "algorithm": a, "family": f, "not_run": over,
                             "max_d": c.max_d, "reason": c.reason}
                            for b, a, f, over, c in plan.capped]},
                  fh, indent=1, default=_json_default)
    written.append(path)

    if plot:
        path = os.path.join(out_dir, "scaling.png")
        if plot_scaling(records, path, capped=plan.capped, title=report_title(meta)):
            written.append(path)
        path = os.path.join(out_dir, "depth.png")
        if depth_report.plot(records, path, capped=plan.capped, title=report_title(meta)):
            written.append(path)
    return written


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    return str(o)


# ---------------------------------------------------------------------------------------------
# Reading aids: title, floor naming, per-family tables, floor times, cap markers.

FLOOR_CAPTION = (
    "The dashed black line is the floor: the time to sort the same input (np.argsort on the CPU, "
    "torch.sort on a GPU). Every algorithm here sorts first, so the floor is what an exact prox "
    "built on that sort cannot beat. A backend with its own faster sort (numba's radix sort) can "
    "run below it: that means the whole prox costs less than NumPy's comparison sort alone, not "
    "that it skipped work.")


def plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def report_title(meta) -> str:
    """dtype, machine and date: what a figure needs to be read on its own."""
    date = meta.get("date") or ""
    return (f"wsrbench compare, {meta.get('dtype', '?')}: {meta.get('machine', '?')}"
            + (f", {date}" if date else ""))


def results_header(meta) -> list[str]:
    """The top of results.md: title, the exact command, how times were taken, the floor caption."""
    command = " ".join(str(meta.get("command", "wsrbench compare")).split())
    return [f"# {report_title(meta)}", "", f"Command: `{command}`", "",
            f"Min of up to {plural(meta.get('repeats', 0), 'call')} after a warm-up, dtype "
            f"{meta.get('dtype', '?')}, seed {meta.get('seed', 0)}.", "", FLOOR_CAPTION]


def floor_label(name: str) -> str:
    """The floor as what it is (np.argsort / torch.sort), for legends and tables."""
    return f"{name} (sort floor)" if name else "sort floor"


def grouped_tables(summary, sizes) -> str:
    """One table per family, its (backend, algorithm) rows side by side, fastest first at the
    largest size each reached."""
    out = []
    families = list(dict.fromkeys(s["family"] for s in summary))
    head = (["backend", "algorithm"] + [f"d={fmt_d(d)}" for d in sizes]
            + ["exponent", "x floor (largest d)", "certified"])
    for fam in families:
        rows = [s for s in summary if s["family"] == fam]
        regime = rows[0].get("regime", "")
        out += [f"### {fam}" + (" (worst)" if regime == "worst" else ""), "",
                "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

        def key(s):
            r = s["ratio_to_floor"]
            return (-(s.get("ratio_d") or 0), r if np.isfinite(r) else math.inf)
        for s in sorted(rows, key=key):
            cells = []
            for d in sizes:
                v = s["times"].get(d)
                cells.append("capped" if v is None else
                             (v.upper() if isinstance(v, str) else fmt_time(v)))
            p, ratio = s["exponent"], s["ratio_to_floor"]
            ratio_s = f"{ratio:.3g} (d={fmt_d(s['ratio_d'])})" if np.isfinite(ratio) else "-"
            out.append("| " + " | ".join([s["backend"], s["algorithm"]] + cells
                                          + [f"{p:.2f}" if np.isfinite(p) else "-", ratio_s,
                                             "yes" if s["certified"] else "NO"]) + " |")
        out.append("")
    return "\n".join(out).rstrip()


def floor_table(records, sizes) -> str:
    """The floor's own times (family x d), so the ratios can be turned back into seconds."""
    rows = floor_rows(records)
    if not rows:
        return ""
    names = list(dict.fromkeys(name for _, _, name, _ in rows))
    lines = ["Floor times (min of the same repeats):", "",
             "| family | floor | " + " | ".join(f"d={fmt_d(d)}" for d in sizes) + " |",
             "|" + "---|" * (len(sizes) + 2)]
    for fam in dict.fromkeys(f for f, _, _, _ in rows):
        for name in names:
            t = {d: tt for f, d, n, tt in rows if f == fam and n == name}
            if t:
                lines.append(f"| {fam} | {floor_label(name)} | "
                             + " | ".join(fmt_time(t[d]) if d in t else "-" for d in sizes) + " |")
    return "\n".join(lines)


def mark_caps(ax, records, capped, family, color, style) -> int:
    """An x where a (backend, algorithm) line stops because of a cap; returns how many."""
    n = 0
    for b, a, f, over, _ in capped:
        if f != family:
            continue
        rs = sorted((r for r in records if r.family == f and r.backend == b and r.algorithm == a
                     and r.status == "ok"), key=lambda r: r.d)
        if rs and over:
            ax.plot([rs[-1].d], [rs[-1].seconds], marker="x", ms=9, mew=2, ls="none",
                    color=color.get(a, "k"))
            n += 1
    return n


def plot_scaling(records, path, *, capped=(), title="") -> bool:
    """Log-log time vs d, one panel per family, one line per (backend, algorithm), floor dashed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("compare: matplotlib is not installed, no plot (pip install \"wsrbench[bench]\")",
              file=sys.stderr)
        return False
    families = list(dict.fromkeys(r.family for r in records))
    if not families:
        return False
    ncol = min(3, len(families))
    nrow = math.ceil(len(families) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(5 * ncol, 3.8 * nrow), squeeze=False)
    pairs = list(dict.fromkeys((r.backend, r.algorithm) for r in records))
    # colour = algorithm, marker and line style = backend: comparable at a glance both ways
    algs = list(dict.fromkeys(a for _, a in pairs))
    bes = list(dict.fromkeys(b for b, _ in pairs))
    color = {a: plt.cm.tab10(i % 10) for i, a in enumerate(algs)}
    style = {b: ("os^vD<>px*"[i % 10], ("-", "-.", ":", (0, (5, 1)))[i % 4]) for i, b in enumerate(bes)}
    for ax, fam in zip(axes.flat, families):
        for b, a in pairs:
            rs = sorted((r for r in records if r.family == fam and r.backend == b
                         and r.algorithm == a and r.status == "ok"), key=lambda r: r.d)
            if rs:
                ax.plot([r.d for r in rs], [r.seconds for r in rs], marker=style[b][0],
                        ls=style[b][1], color=color[a], label=f"{b}/{a}", ms=4)
        for name in sorted({r.floor for r in records if r.family == fam and r.floor}):
            fl = sorted({(r.d, r.floor_seconds) for r in records
                         if r.family == fam and r.floor == name and np.isfinite(r.floor_seconds)})
            ax.plot([d for d, _ in fl], [t for _, t in fl], color="k", ls="--", lw=2.0,
                    label=floor_label(name))
        if mark_caps(ax, records, capped, fam, color, style):
            ax.plot([], [], marker="x", ls="none", color="k", label="line stops at a size cap")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(fam)
        ax.set_xlabel("d")
        ax.set_ylabel("seconds")
        ax.grid(True, which="both", alpha=0.3)
    for ax in list(axes.flat)[len(families):]:
        ax.axis("off")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    for ax in list(axes.flat)[1:len(families)]:
        handles_i, labels_i = ax.get_legend_handles_labels()
        for hh, ll in zip(handles_i, labels_i):
            if ll not in labels:
                handles.append(hh)
                labels.append(ll)
    # Bottom up: the floor caption, the legend, the panels (heights in inches of this figure).
    height = fig.get_size_inches()[1]
    caption = textwrap.fill(FLOOR_CAPTION, 40 * ncol)
    cap_h = (caption.count("\n") + 1) * 0.13 / height
    leg_h = math.ceil(len(labels) / 4) * 0.22 / height
    fig.text(0.5, 0.01, caption, ha="center", va="bottom", fontsize=7)
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=8,
               bbox_to_anchor=(0.5, 0.015 + cap_h))
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.03 + cap_h + leg_h, 1, 1 - 0.35 / height if title else 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True

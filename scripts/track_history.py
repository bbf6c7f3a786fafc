"""Instructions per element of the main Numba prox kernels over commits (docs/design.md#instruction-counts).

    python scripts/track_history.py COMMIT [COMMIT ...] [--out docs/figures/track_history]

For each commit: a detached worktree under the temp directory, then ``benchmarks/_track_count.py``
(of this checkout: it needs only ``wsrbench.prox``, so it runs on the old flat layout too) with
that worktree first on PYTHONPATH, under callgrind. Counts do not depend on the machine's load.
Writes OUT.json, OUT.md (provenance header, a table, the last/first ratio per kernel) and OUT.png.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def count_commit(sha: str) -> dict:
    full = subprocess.run(["git", "-C", ROOT, "rev-parse", sha], capture_output=True, text=True,
                          check=True).stdout.strip()
    wt = os.path.join(tempfile.gettempdir(), f"wsrbench-history-{full[:12]}")
    if not os.path.isdir(wt):
        subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", wt, full], check=True,
                       capture_output=True)
    out = os.path.join(wt, "track_count.json")
    env = dict(os.environ, PYTHONPATH=wt)
    subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "_track_count.py"), out],
                   env=env, check=True)
    with open(out) as fh:
        return json.load(fh)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("commits", nargs="+",
                   help="commits, oldest first; COMMIT=FILE reuses the counts of an earlier run "
                        "(a JSON written by benchmarks/_track_count.py)")
    p.add_argument("--out", default=os.path.join("docs", "figures", "track_history"))
    a = p.parse_args(argv)
    from wsrbench.core import provenance

    hist = {}
    with provenance.LoadMonitor() as load:
        for i, c in enumerate(a.commits):
            if "=" in c:
                c, path = c.split("=", 1)
                a.commits[i] = c
                with open(path) as fh:
                    hist[c] = json.load(fh)
            else:
                hist[c] = count_commit(c)
    names = sorted({n for r in hist.values() for n in r})
    first, last = a.commits[0], a.commits[-1]
    lines = [provenance.header("Instructions per element of the Numba prox over commits", load),
             "Counted under callgrind (docs/design.md#instruction-counts): independent of the "
             "load above. '-' where the commit lacks the algorithm.", "",
             "| kernel | " + " | ".join(a.commits) + f" | {last} / {first} |",
             "| --- |" + " --- |" * (len(a.commits) + 1)]
    for n in names:
        vals = [hist[c].get(n, {}) for c in a.commits]
        ipe = [v["instructions"] / v["elements"] if "instructions" in v else None for v in vals]
        ratio = f"{ipe[-1] / ipe[0]:.3f}" if ipe[0] and ipe[-1] else "-"
        lines.append(f"| {n} | " + " | ".join(f"{v:.1f}" if v else "-" for v in ipe)
                     + f" | {ratio} |")
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    with open(a.out + ".md", "w") as fh:
        fh.write("\n".join(lines) + "\n")
    with open(a.out + ".json", "w") as fh:
        json.dump({"provenance": provenance.meta(load), "commits": a.commits, "counts": hist}, fh,
                  indent=1)
    print("\n".join(lines))
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return 0
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for n in names:
        ys = [hist[c].get(n, {}) for c in a.commits]
        pts = [(i, v["instructions"] / v["elements"]) for i, v in enumerate(ys)
               if "instructions" in v]
        if pts:
            ax.plot(*zip(*pts), marker="o", label=n.replace("prox.numba.", ""))
    ax.set_xticks(range(len(a.commits)), a.commits)
    ax.set_ylabel("instructions per element")
    ax.set_yscale("log")
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(a.out + ".png", dpi=110)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Speed figures of the Numba backend as ratios against np.argsort, measured in one process.

    python scripts/numba_speed.py                       # everything (tens of minutes at 1e7)
    python scripts/numba_speed.py --sizes 1e4,1e5,1e6 --families gaussian,worst_pava
    python scripts/numba_speed.py --only table --dtypes float32
    python scripts/numba_speed.py --only table --out docs/figures/numba_speed.md   # the dated table
    python scripts/numba_speed.py --only pieces --sizes 1e4,1e6,1e7 --dtypes float32 \
        --families gaussian,quantized,worst_pava,worst_imminent_collisions \
        --out docs/figures/numba_pieces.md                                       # the dated pieces

Sections (``--only`` picks some):
  table    prox(x, lam, backend="numba") / np.argsort(x) per family and size (median of --runs
           pairs of timings, more at small d where a call is cheap, taken in sweeps spread over
           the run, fewer at 1e7, after a warm-up call, the two interleaved so that load changes
           hit both);
           --out also writes it as Markdown with date, commit, CPU and load average, cells above
           TARGET marked, with their medians over the pairs of a quiet host
  pieces   where one call's time goes: the radix sort, PAVA and the scatter timed apart (the
           jitted kernels called directly), each as a ratio to np.argsort, plus np.sort (values
           only) and the whole call, all interleaved; --out writes them as Markdown with the same
           header (docs/figures/numba_pieces.md)
  batched  rows in parallel vs a Python loop over rows, and vs np.argsort(X, axis=1)
  warm     wsrbench.core.warm_start.ProxState on nearly_sorted (hint = the order of x_previous):
           warm / np.argsort, moves (inversions) per element, and useless-hint warm / cold
  call     the fixed cost of a call: wsrbench.prox of a 16-element vector and of a constant row of
           1e4 (the "prox_vector" path), prox_info of the same (the general path), np.argsort
  compile  first-call compile time in a fresh process with an empty cache, then with the cache
  memory   peak extra memory of one call (tracemalloc, NumPy buffers) in words per element
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc

import numpy as np

import wsrbench
from wsrbench import cases
from wsrbench.bench.benchtools import (
    fmt_spread,
    interleaved_rounds,
    interleaved_times,
    ratio_spread,
)
from wsrbench.core import provenance

TARGET = 0.5  # the prox at most half an np.argsort of the same input


def _median_ratio(f, g, runs):
    """median(time f) / median(time g), interleaved, after one warm-up call of each."""
    tf, tg = interleaved_times(f, g, runs)
    return float(np.median(tf) / np.median(tg)), float(np.median(tf)), float(np.median(tg))


# The table's cells at d <= SWEEP_MAX_D take their pairs in SWEEPS sweeps spread over the whole
# run (the large cells, measured once each, between them), so that a burst of the host's activity
# hits a share of a cell's pairs, not the whole cell.
SWEEPS = 5
SWEEP_MAX_D = 10**5


def _runs(d, runs):
    """Pairs of timed calls for a cell of size d: ``runs``, half as many (at least 3) at d >=
    1e7, and 100x / 15x as many at d <= 1e4 / 1e5, where a pair takes under a millisecond / a
    few: 35 pairs of a 1e4 cell lasted about 10 ms, and its median moved by 0.10-0.15 between runs
    a few minutes apart (docs/design.md#the-cpu-prox-against-half-a-sort)."""
    if d >= 10**7:
        return max(3, runs // 2)
    if d <= 10**4:
        return 100 * runs
    if d <= 10**5:
        return 15 * runs
    return runs


def _runs_text(runs):
    """How many pairs or turns the cells ran, for the printed and written headers."""
    return (f"{_runs(10**6, runs)} ({_runs(10**4, runs)} at d <= 1e4, {_runs(10**5, runs)} at "
            f"d <= 1e5, {_runs(10**7, runs)} at d >= 1e7)")


def _settle(family, d, dtype, seconds=1.0):
    """Untimed calls of the first cell's pair for about ``seconds``: the table's first cell
    measured 0.66x where the same cell later in the process, or in a shorter run, measured
    0.44-0.50x (start-up effects of the process and the machine, not of the cell)."""
    x, lam = cases.make(family, d, dtype=dtype)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        wsrbench.prox(x, lam, backend="numba")
        np.argsort(x)


def _schedule(cells, runs, sweeps):
    """The table's measuring order: a list of (cell index, pairs), SWEEPS passes over the cells at
    d <= SWEEP_MAX_D, each taking a share of their pairs, with the larger cells (all their pairs
    at once) spread evenly between the passes."""
    big = [i for i, (_, _, d) in enumerate(cells) if d > SWEEP_MAX_D]
    turn = {i: k * sweeps // max(1, len(big)) for k, i in enumerate(big)}
    order = []
    for sweep in range(sweeps):
        for i, (_, _, d) in enumerate(cells):
            n = _runs(d, runs)
            if d <= SWEEP_MAX_D:
                share = n // sweeps + (sweep < n % sweeps)
                if share:
                    order.append((i, share))
            elif turn[i] == sweep:
                order.append((i, n))
    return order


QUIET = 1.1  # a quiet pair: its np.argsort within 10% of the cell's 10th percentile


def _quiet_pairs(tf, tg):
    """(median ratio, pairs, all pairs, np.argsort median s, its 10th percentile s) over the pairs
    whose np.argsort took at most QUIET x the cell's 10th percentile: the cell on a quiet host.
    A neighbour on the host (the same physical core or its caches) slows both calls of a pair but
    not alike: on float64 worst_pava at 1e4 np.argsort took 300 instead of 218 us and the ratio
    read 0.57 instead of 0.45 for whole stretches of pairs."""
    tf = np.asarray(tf)
    tg = np.asarray(tg)
    p10 = float(np.percentile(tg, 10))
    keep = tg <= QUIET * p10
    return (float(np.median(tf[keep] / tg[keep])), int(keep.sum()), int(tg.size),
            float(np.median(tg)), p10)


def table(sizes, families, dtypes, runs, sweeps=SWEEPS):
    """Prints the ratio table; returns ({dtype name: {family: [(median, q25, q75) per size]}}
    of the paired ratios prox / np.argsort, {(dtype name, family, d): ``_quiet_pairs``}), each
    cell's pairs taken as ``_schedule`` orders."""
    print("\n## prox(x, lam, backend='numba') / np.argsort(x)   (median of "
          f"{_runs_text(runs)} pairs, the cells at d <= {SWEEP_MAX_D:.0e} in {sweeps} sweeps)")
    cells = [(dt, fam, d) for dt in dtypes for fam in families for d in sizes]
    order = _schedule(cells, runs, sweeps)
    inputs = {}
    times = {i: ([], []) for i in range(len(cells))}
    _settle(families[0], sizes[0], dtypes[0])
    for n_done, (i, n) in enumerate(order):
        dt, fam, d = cells[i]
        if i not in inputs:
            inputs[i] = cases.make(fam, d, dtype=dt)
        x, lam = inputs[i]
        tf, tg = interleaved_times(lambda: wsrbench.prox(x, lam, backend="numba"),
                                   lambda: np.argsort(x), n)
        times[i][0].extend(tf)
        times[i][1].extend(tg)
        if d > SWEEP_MAX_D:
            del inputs[i]  # measured once: free its memory
        if n_done % 50 == 49:
            print(f"  {n_done + 1} of {len(order)} turns", flush=True)
    out = {}
    quiet = {}
    for i, (dt, fam, d) in enumerate(cells):
        out.setdefault(np.dtype(dt).name, {}).setdefault(fam, []).append(ratio_spread(*times[i]))
        quiet[np.dtype(dt).name, fam, d] = _quiet_pairs(*times[i])
    for name, rows in out.items():
        print(f"\n{name}")
        print(f"{'family':28s}" + "".join(f"{f'd={d:.0e}':>10s}" for d in sizes))
        for fam, rs in rows.items():
            print(f"{fam:28s}" + "".join(f"{r[0]:10.2f}" for r in rs))
    return out, quiet


def write_table(path, res, quiet, sizes, runs, command, load):
    """The table as Markdown: the provenance header (date, commit, machine, load through the run,
    command), one table per dtype, cells above TARGET in bold, the count of such cells and each
    one's median over its quiet pairs (``_quiet_pairs``)."""
    lines = [provenance.header("Numba prox / np.argsort of the same input", load, command),
             f"Median of the ratios of {_runs_text(runs)} interleaved pairs of calls after a "
             f"warm-up call of each (the cells at d <= {SWEEP_MAX_D:.0e} in {SWEEPS} sweeps spread "
             "over the run, the larger cells between them), with their interquartile range in "
             f"brackets. Target: at most {TARGET}x; medians above it in **bold**. On a loaded "
             "machine the ratios move by about 10-30% between runs (both sides share the load, "
             "but memory bandwidth and caches do not scale alike).", ""]
    over = total = 0
    for name, rows in res.items():
        lines += [f"## {name}", "", "| family | " + " | ".join(f"d={d:.0e}" for d in sizes) + " |",
                  "|---|" + "---|" * len(sizes)]
        for fam, rs in rows.items():
            cells = [(f"**{m:.2f}**" if m > TARGET else f"{m:.2f}") + f" [{lo:.2f}, {hi:.2f}]"
                     for m, lo, hi in rs]
            over += sum(m > TARGET for m, _, _ in rs)
            total += len(rs)
            lines.append(f"| {fam} | " + " | ".join(cells) + " |")
        lines.append("")
    lines.append(f"{over} of {total} cells above {TARGET}x.")
    notes = [(k, v) for k, v in quiet.items() if res[k[0]][k[1]][sizes.index(k[2])][0] > TARGET]
    if notes:
        lines += ["", f"The cells above {TARGET}x over their quiet pairs (np.argsort within "
                  f"{QUIET}x its 10th percentile in the cell; a neighbour on the host slows both "
                  "calls of a pair, not alike):", ""]
        for (name, fam, d), (m, n, n_all, med, p10) in notes:
            lines.append(f"- {name} {fam} d={d:.0e}: {m:.2f}x over {n} of {n_all} pairs "
                         f"(np.argsort median {med * 1e6:.0f} us, 10th percentile "
                         f"{p10 * 1e6:.0f} us)")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


PIECES = ("np.sort", "radix", "pava", "scatter", "prox")


def pieces(sizes, families, dtypes, runs):
    """Sort, PAVA and scatter of one row timed apart, with np.sort and the whole call, as ratios to
    np.argsort of the same input: the six take turns (``interleaved_rounds``), each ratio is the
    median of one turn's ratios with its IQR. Prints them; returns rows (dtype name, d, family,
    argsort median s, {piece: (median, q25, q75)}, prox minus its three kernels in s, blocks)."""
    from wsrbench.backends.numba import _core, pava, sort

    print("\n## pieces of one call / np.argsort(x)   (median of "
          f"{_runs_text(runs)} interleaved turns)")
    print(f"{'dtype':8s}{'d':>8s}  {'family':26s}{'argsort ms':>11s}{'np.sort':>9s}{'radix':>7s}"
          f"{'pava':>7s}{'scatter':>8s}{'prox':>7s}{'rest us':>9s}{'blocks':>10s}")
    rows = []
    for dt in dtypes:
        for d in sizes:
            for fam in families:
                x, lam = cases.make(fam, d, dtype=dt)
                a, b = np.empty(2 * d, np.uint64), np.empty(2 * d, np.uint64)
                hist = np.empty(sort.HIST_SIZE, np.int64)
                sums, starts = b[:d].view(np.float64), b[d:]
                w, lab = np.empty_like(x), np.empty(0, np.int64)
                # the sort prox takes: a heavy key's run left implicit (sort_split_records)
                srt = sort._sort_f32 if np.dtype(dt) == np.float32 else sort._sort_f64
                lt, m, v = srt(x, a, b, hist, False)
                src = _core.split_source(a, lt, m, v) if m else a
                k = d // 2
                center = (v if m and lt <= k < lt + m
                          else _core.rec_value(a, k - m if m and k >= lt + m else k))

                def run_pava():  # reads the records only: no copy between runs
                    return pava.pava_stack(src, d, lam, center, sums, starts)

                nblk = run_pava()[0]
                after = a.copy()
                after_src = _core.split_source(after, lt, m, v) if m else after
                # the order of the turn matters: the radix sort rewrites a with the same records
                # but uses b (sums, starts) as scratch, which PAVA refills before the scatter reads
                ts = interleaved_rounds([
                    lambda: np.argsort(x), lambda: np.sort(x), lambda: srt(x, a, b, hist, False),
                    run_pava,
                    lambda: _core.finish_scatter(x, after_src, sums, starts, nblk, d, lam, 0.0,
                                                 0.0, center, w, lab),
                    lambda: wsrbench.prox(x, lam, backend="numba")], _runs(d, runs))
                t_arg = ts[0]
                ratios = {name: ratio_spread(t, t_arg) for name, t in zip(PIECES, ts[1:])}
                med = [float(np.median(t)) for t in ts]
                rest = med[5] - med[2] - med[3] - med[4]
                rows.append((np.dtype(dt).name, d, fam, med[0], ratios, rest, int(nblk)))
                print(f"{np.dtype(dt).name:8s}{d:8.0e}  {fam:26s}{1e3 * med[0]:11.3f}"
                      f"{ratios['np.sort'][0]:9.2f}"
                      + "".join(f"{ratios[k][0]:7.2f}" for k in ("radix", "pava"))
                      + f"{ratios['scatter'][0]:8.2f}{ratios['prox'][0]:7.2f}{1e6 * rest:9.0f}"
                      f"{nblk:10d}", flush=True)
    return rows


def write_pieces(path, rows, runs, command, load):
    """The pieces as Markdown under the provenance header."""
    lines = [provenance.header("Pieces of one Numba prox call / np.argsort of the same input",
                               load, command),
             "np.argsort, np.sort (values only), the radix sort, PAVA and the scatter (the jitted "
             "kernels called directly, as prox calls them: a heavy key's run left out of the "
             "records) and the whole `wsrbench.prox` call took turns, "
             f"{_runs_text(runs)} times after a warm-up call of each. Every "
             "ratio is the median of one turn's ratios to np.argsort with their interquartile "
             "range in brackets; np.argsort is the median time of one call; prox - kernels is the "
             "median prox time less the medians of the three kernels (checks, centring and "
             "Python); blocks is PAVA's block count.", "",
             "| dtype | d | family | np.argsort | " + " | ".join(PIECES)
             + " | prox - kernels | blocks |", "|---|---:|---|---:|" + "---:|" * (len(PIECES) + 2)]
    for name, d, fam, t_arg, ratios, rest, nblk in rows:
        cells = [fmt_spread(ratios[k]) for k in PIECES]
        lines.append(f"| {name} | {d:.0e} | {fam} | {1e3 * t_arg:.3f} ms | " + " | ".join(cells)
                     + f" | {1e6 * rest:.0f} us | {nblk} |")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def batched(runs):
    print("\n## batched rows (float64, family gaussian rows)")
    rng = np.random.default_rng(0)
    for n, d in [(4096, 512), (64, 100_000)]:
        X = rng.standard_normal((n, d))
        lam = 0.01
        par = lambda: wsrbench.prox(X, lam, backend="numba")  # noqa: E731
        loop = lambda: [wsrbench.prox(X[i], lam, backend="numba") for i in range(n)]  # noqa: E731
        assert all(np.array_equal(a, b) for a, b in zip(par(), loop()))
        r, tp, tl = _median_ratio(loop, par, runs)
        r2, _, _ = _median_ratio(par, lambda: np.argsort(X, axis=1), runs)
        import numba

        nt = numba.get_num_threads()

        def one_thread():
            numba.set_num_threads(1)
            try:
                par()
            finally:
                numba.set_num_threads(nt)

        r3, _, _ = _median_ratio(one_thread, par, runs)
        print(f"{n} x {d}: python loop / batched = {r:.2f}x faster; batched on 1 thread / on "
              f"{nt} = {r3:.2f}x; batched / np.argsort(X, axis=1) = {r2:.2f}")


def warm(sizes, dtypes, runs):
    """ProxState as training uses it: no hint is set by hand, each call's hint is the order the
    state kept from the call before."""
    from wsrbench.core.warm_start import ProxState

    print("\n## warm start: ProxState alternating x_previous, x (nearly_sorted pair); each timed call"
          "\n## on x is hinted by the order of x_previous. Useless hint: alternating two unrelated"
          "\n## gaussian vectors, against cold calls alternating the same two.")
    print(f"{'dtype':8s}{'d':>8s}{'moves/elt':>11s}{'warm/argsort':>14s}{'cold/argsort':>14s}"
          f"{'useless hint warm/cold':>24s}")

    def row(dt, d, x_prev, x, lam):
        state = ProxState()
        n = _runs(d, runs)
        tw, ta, tc = [], [], []
        for r in range(n + 1):
            state.prox(x_prev, lam)
            t = time.perf_counter()
            state.prox(x, lam)
            if r:  # the first round is the warm-up
                tw.append(time.perf_counter() - t)
            moves = int(state.last_moves[0])
            t = time.perf_counter()
            np.argsort(x)
            ta.append(time.perf_counter() - t)
            t = time.perf_counter()
            wsrbench.prox(x, lam, backend="numba")
            tc.append(time.perf_counter() - t)
        return moves, np.median(tw) / np.median(ta), np.median(tc) / np.median(ta)

    for dt in dtypes:
        for d in sizes:
            x_prev, x, lam = cases.nearly_sorted_pair(d, 0, dt)
            moves, rw, rc = row(dt, d, x_prev, x, lam)
            xa, lg = cases.make("gaussian", d, dtype=dt)
            xb, _ = cases.make("gaussian", d, seed=1, dtype=dt)
            state = ProxState()
            tu, tf = [], []
            for r in range(_runs(d, runs) + 1):
                for xx in (xa, xb):
                    t = time.perf_counter()
                    state.prox(xx, lg)
                    t1 = time.perf_counter()
                    wsrbench.prox(xx, lg, backend="numba")
                    t2 = time.perf_counter()
                    if r:
                        tu.append(t1 - t)
                        tf.append(t2 - t1)
            assert np.all(state.last_moves == -1)  # the hint was dropped every time
            mv = "fallback" if moves < 0 else f"{moves / d:.2f}"
            print(f"{np.dtype(dt).name:8s}{d:8.0e}{mv:>11s}{rw:14.2f}{rc:14.2f}"
                  f"{np.median(tu) / np.median(tf):24.2f}", flush=True)
    print("(the same with x = prox(x_previous) + noise: smaller training steps)")
    for dt in dtypes:
        d = max(sizes)
        x_prev, _, lam = cases.nearly_sorted_pair(d, 0, dt)
        base = wsrbench.prox(x_prev, lam)
        for noise in (0.0, 1e-9, 1e-7):
            x = (base + noise * np.random.default_rng(2).standard_normal(d)).astype(dt)
            moves, rw, rc = row(dt, d, x_prev, x, lam)
            mv = "fallback" if moves < 0 else f"{moves / d:.2f}"
            print(f"{np.dtype(dt).name:8s}{d:8.0e}{mv:>11s}{rw:14.2f}{rc:14.2f}"
                  f"   (noise {noise:g})", flush=True)


_COMPILE_CODE = """
import time, numpy as np
t0 = time.perf_counter()
import wsrbench
t1 = time.perf_counter()
x = np.random.default_rng(0).standard_normal(1000)
for dt in (np.float64, np.float32):
    t = time.perf_counter(); wsrbench.prox(x.astype(dt), 0.1, backend="numba")
    print(f"  first call pava {np.dtype(dt).name}: {time.perf_counter() - t:.2f} s")
t = time.perf_counter(); wsrbench.prox(x[None, :].repeat(2, 0), 0.1, backend="numba")
print(f"  first batched call pava float64: {time.perf_counter() - t:.2f} s")
for alg in ("imminent_collisions", "search_collisions", "end_collisions"):
    t = time.perf_counter(); wsrbench.prox(x, 0.1, algorithm=alg, backend="numba")
    print(f"  first call {alg} float64: {time.perf_counter() - t:.2f} s")
from wsrbench.core.warm_start import ProxState
t = time.perf_counter(); ProxState().prox(x, 0.1)
print(f"  first warm-start call float64: {time.perf_counter() - t:.2f} s")
"""


def call_cost(dtypes, calls=20_000):
    """Fixed cost per call (docs/design.md#fixed-per-call-cost): mean microseconds of a loop of
    calls, the three loops interleaved in rounds (median of 5 rounds)."""
    print(f"\n## fixed cost of a call (us; median of 5 rounds of {calls} calls each)")
    print(f"{'dtype':8s}{'input':24s}{'prox':>8s}{'prox_info':>11s}{'np.argsort':>12s}")
    for dt in dtypes:
        for label, x in (("16 normal entries", np.random.default_rng(0).normal(size=16)),
                         ("1e4 equal entries", np.full(10_000, 0.5))):
            x = x.astype(dt)

            def loop(f):
                def run():
                    for _ in range(calls):
                        f()
                return run
            ts = interleaved_rounds([loop(lambda: wsrbench.prox(x, 0.1)),
                                     loop(lambda: wsrbench.prox_info(x, 0.1)),
                                     loop(lambda: np.argsort(x))], 5)
            us = [1e6 * float(np.median(t)) / calls for t in ts]
            print(f"{np.dtype(dt).name:8s}{label:24s}{us[0]:8.1f}{us[1]:11.1f}{us[2]:12.1f}")


def compile_times():
    print("\n## compile time (fresh processes)")
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        for label in ("empty cache (compiles)", "warm cache (loads)"):
            print(label)
            subprocess.run([sys.executable, "-c", _COMPILE_CODE], env=env, check=True)


def memory(d=1_000_000):
    import wsrbench.backends.numba as nb

    print(f"\n## peak extra memory of one call, d = {d:.0e} (tracemalloc; output excluded)")
    for dt in (np.float64, np.float32):
        x, lam = cases.make("gaussian", d, dtype=dt)
        wsrbench.prox(x, lam, backend="numba")
        nb.release_workspace()
        tracemalloc.start()
        for label in ("first call (builds the workspace)", "next calls (reuse it)"):
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            w = wsrbench.prox(x, lam, backend="numba")
            extra = tracemalloc.get_traced_memory()[1] - base - w.nbytes
            print(f"  {np.dtype(dt).name} {label}: {extra / (8 * d):.3f} words per element")
            del w
        tracemalloc.stop()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", default="1e4,1e5,1e6,1e7", help="comma-separated d values")
    ap.add_argument("--families", default=",".join(cases.names()))
    ap.add_argument("--dtypes", default="float64,float32")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--only", default="table,batched,warm,call,compile,memory")
    ap.add_argument("--out", default="", help="also write the table (--only table) or the pieces "
                    "(--only pieces) as Markdown to this file")
    a = ap.parse_args(argv)
    sizes = [int(float(s)) for s in a.sizes.split(",")]
    families = a.families.split(",")
    dtypes = [np.dtype(t).type for t in a.dtypes.split(",")]
    only = set(a.only.split(","))
    import numba

    print(f"numpy {np.__version__}, numba {numba.__version__}, {os.cpu_count()} CPUs, "
          f"threading layer after first parallel call below")
    if a.out and {"table", "pieces"} <= only:
        ap.error("--out writes one table: give --only table or --only pieces with it")
    command = "python scripts/numba_speed.py " + " ".join(sys.argv[1:] if argv is None else argv)
    if "table" in only:
        with provenance.LoadMonitor() as load:
            res, quiet = table(sizes, families, dtypes, a.runs)
        if a.out:
            write_table(a.out, res, quiet, sizes, a.runs, command, load)
    if "pieces" in only:
        with provenance.LoadMonitor() as load:
            rows = pieces(sizes, families, dtypes, a.runs)
        if a.out:
            write_pieces(a.out, rows, a.runs, command, load)
    if "batched" in only:
        batched(a.runs)
        print(f"numba threading layer: {numba.threading_layer()}, threads: "
              f"{numba.get_num_threads()}")
    if "warm" in only:
        warm([d for d in sizes if d <= 10**6] or sizes, dtypes, a.runs)
    if "call" in only:
        call_cost(dtypes)
    if "compile" in only:
        compile_times()
    if "memory" in only:
        memory()


if __name__ == "__main__":
    main()

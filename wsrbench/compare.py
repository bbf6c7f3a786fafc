"""Time prox algorithms x backends x input families x sizes against the sort floor.

Every answer is certified (wsrbench.certify, the optimality conditions) before its time counts.
Each time is the minimum over --repeats calls after one untimed warm-up call (JIT compilation
never counts); the floor is np.argsort of the same input (torch.sort on the same GPU for GPU
backends). For each backend, algorithm and family the table shows the time per size, the scaling
exponent fitted by least squares to log t = a + p log d (over d >= 1e4 when two such sizes were
measured, so that fixed per-call overheads do not flatten it), and the ratio to the floor at the
largest size. Slow (backend, algorithm, family) combinations are capped at an explicit size, listed
at the start of the run (--no-caps lifts the caps).

Writes to --out: results.md (the table), results.csv and results.json (raw figures, one record per
measurement) and scaling.png (log-log time vs d, one panel per family, floor drawn dashed; needs
matplotlib: pip install "wsrbench[bench]"). Exit status 1 if any answer failed its certificate.
"""
from __future__ import annotations

import csv
import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from . import cases, registry

DEFAULT_SIZES = [1_000, 10_000, 100_000, 1_000_000]
QUICK_SIZES = [1_000, 10_000, 100_000]
DEFAULT_FAMILIES = ["gaussian", "quantized", "nearly_sorted", "worst_pava",
                    "worst_imminent_collisions", "worst_end_collisions"]
QUICK_FAMILIES = ["gaussian", "worst_imminent_collisions", "worst_end_collisions"]
REPEAT_BUDGET_S = 1.0  # stop repeating a measurement once its calls took this long in total


@dataclass(frozen=True)
class Cap:
    """Run (backend, algorithm, family) only up to ``max_d``; "*" matches anything.

    device "cpu": only when the backend's arrays live in host memory.
    """
    backend: str
    algorithm: str
    family: str
    max_d: int
    reason: str
    device: str = "*"


_MANY_CLUSTERS = ("gaussian", "uniform", "heavy_tailed", "trained_layer", "worst_end_collisions")

# Sizes above these take too long for a run that should finish in a couple of minutes on a 2-core
# laptop. Each cap names its reason; the run prints the caps that apply.
CAPS = [
    Cap("numpy", "*", "*", 100_000,
        "the reference is for reading: PAVA is a Python loop (about 1-3 s per call at d=1e6)"),
    Cap("torch", "*", "*", 100_000,
        "torch on CPU runs the GPU-shaped algorithms as many small kernels (1-10 s at d=1e6)",
        device="cpu"),
    *[Cap("*", "end_collisions", f, 10_000,
          "about d clusters, one O(d) scan each: Theta(d^2) work") for f in _MANY_CLUSTERS],
    Cap("*", "end_collisions", "nearly_sorted", 100_000,
        "about d/18 clusters, one O(d) scan each: Theta(d^2) work"),
    Cap("*", "imminent_collisions", "worst_imminent_collisions", 10_000,
        "its worst case: d - m rounds of O(d) work each"),
    Cap("*", "imminent_collisions", "worst_pava", 10_000, "d/2 rounds of O(d) work each"),
    Cap("*", "imminent_collisions", "nearly_sorted", 100_000, "about d/17 rounds of O(d) work each"),
    Cap("*", "imminent_collisions", "gaussian_collapse", 1_000_000, "about d^0.95 rounds"),
]


def _match(pattern: str, value: str) -> bool:
    return pattern == "*" or pattern == value


def cap_for(backend: str, algorithm: str, family: str, device: str, caps=None) -> Cap | None:
    """The tightest cap of ``caps`` (default CAPS) that applies, or None."""
    hits = [c for c in (CAPS if caps is None else caps)
            if _match(c.backend, backend) and _match(c.algorithm, algorithm)
            and _match(c.family, family) and _match(c.device, device)]
    return min(hits, key=lambda c: c.max_d) if hits else None


# ---------------------------------------------------------------------------------------------
# Measuring

def device_of(arr) -> str:
    """'gpu' for CUDA arrays and CUDA torch tensors, else 'cpu'."""
    if registry.array_kind(arr) == "cuda" or getattr(arr, "is_cuda", False):
        return "gpu"
    return "cpu"


def sync(arr) -> None:
    """Wait for queued GPU work (no-op on the CPU) so that a timing covers it."""
    if getattr(arr, "is_cuda", False):
        import torch
        torch.cuda.synchronize(arr.device)
    elif registry.array_kind(arr) == "cuda":
        from numba import cuda
        cuda.synchronize()


def time_calls(fn, repeats: int, budget: float = REPEAT_BUDGET_S) -> list[float]:
    """Seconds of up to ``repeats`` calls of fn(); stops early once they took ``budget`` in total."""
    out = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
        if sum(out) >= budget:
            break
    return out


def floor_seconds(x: np.ndarray, device: str, repeats: int) -> tuple[float, str]:
    """(min time, name) of the floor: np.argsort on the CPU, torch.sort on the GPU.

    A GPU backend without a CUDA build of torch (or under the CUDA simulator) falls back to
    np.argsort, and the floor's name says so.
    """
    if device == "gpu" and _torch_cuda():
        import torch
        t = torch.tensor(x, device="cuda")
        torch.sort(t, stable=True)
        torch.cuda.synchronize()

        def run():
            torch.sort(t, stable=True)
            torch.cuda.synchronize()
        return min(time_calls(run, repeats)), "torch.sort (cuda)"
    np.argsort(x)
    name = "np.argsort" if device == "cpu" else "np.argsort (no CUDA torch)"
    return min(time_calls(lambda: np.argsort(x), repeats)), name


def _torch_cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def fit_exponent(ds, ts, min_d: int = 10_000) -> tuple[float, int]:
    """Least-squares slope p of log t = a + p log d, and the number of points it used.

    Uses the sizes >= min_d when at least two were measured (small sizes are dominated by fixed
    per-call costs), else all of them; nan with fewer than two distinct sizes.
    """
    ds = np.asarray(ds, dtype=np.float64)
    ts = np.asarray(ts, dtype=np.float64)
    keep = (ts > 0) & np.isfinite(ts)
    ds, ts = ds[keep], ts[keep]
    big = ds >= min_d
    if np.unique(ds[big]).size >= 2:
        ds, ts = ds[big], ts[big]
    if np.unique(ds).size < 2:
        return math.nan, int(ds.size)
    p = np.polyfit(np.log(ds), np.log(ts), 1)[0]
    return float(p), int(ds.size)


@dataclass
class Record:
    backend: str
    algorithm: str
    family: str
    kind: str
    d: int
    dtype: str
    status: str  # "ok", "failed" (certificate), "error" (raised)
    seconds: float = math.nan  # min over repeats
    median_seconds: float = math.nan
    repeats: int = 0
    floor: str = ""
    floor_seconds: float = math.nan
    ratio_to_floor: float = math.nan
    rounds: int = -1
    clusters: int = -1
    certified: bool = False
    violation: float = math.nan
    message: str = ""


def check_answer(x: np.ndarray, w: np.ndarray, lam: float) -> tuple[bool, float, str]:
    """(ok, violation, message): is w the prox of x? Decided by wsrbench.certify alone."""
    from .certificate import certify

    cert = certify(x, w, lam)
    return bool(cert.ok), float(cert.violation), "" if cert.ok else cert.message


def measure(backend: str, algorithm: str, family: str, d: int, *, dtype=np.float64, repeats=3,
            seed=0, floor_cache=None) -> Record:
    """Build the input, warm up, certify the answer, time it and its floor; one Record."""
    from .api import prox_info

    fam = {f.name: f for f in cases.families()}[family]
    x, lam = cases.make(family, d, seed=seed, dtype=dtype)
    rec = Record(backend, algorithm, family, fam.kind, d, np.dtype(dtype).name, "ok")
    try:
        mod = registry.get_backend(backend).load()
        xb = mod.from_numpy(x)
        w, info = prox_info(xb, lam, algorithm=algorithm, backend=backend)  # warm-up (JIT)
        sync(w)
        ok, violation, message = check_answer(x, mod.to_numpy(w), lam)
        rec.rounds, rec.clusters = int(info.rounds), int(info.clusters)
        rec.certified, rec.violation, rec.message = ok, violation, message
        if not ok:
            rec.status = "failed"

        def run():
            sync(prox_info(xb, lam, algorithm=algorithm, backend=backend)[0])
        ts = time_calls(run, repeats)
        rec.seconds, rec.median_seconds, rec.repeats = min(ts), float(np.median(ts)), len(ts)
        device = device_of(xb)
    except Exception as exc:  # report and go on: one broken backend must not hide the others
        rec.status, rec.message = "error", f"{type(exc).__name__}: {exc}"
        return rec
    key = (family, d, rec.dtype, device, seed)
    if floor_cache is not None and key in floor_cache:
        rec.floor_seconds, rec.floor = floor_cache[key]
    else:
        rec.floor_seconds, rec.floor = floor_seconds(x, device, repeats)
        if floor_cache is not None:
            floor_cache[key] = (rec.floor_seconds, rec.floor)
    rec.ratio_to_floor = rec.seconds / rec.floor_seconds if rec.floor_seconds > 0 else math.nan
    return rec


# ---------------------------------------------------------------------------------------------
# Planning

@dataclass
class Plan:
    cells: list = field(default_factory=list)  # (backend, algorithm, family, d)
    capped: list = field(default_factory=list)  # (backend, algorithm, family, [d...], Cap)
    skipped_backends: list = field(default_factory=list)  # (name, reason)


def _device_of_backend(backend: str) -> tuple[str, bool]:
    """(device, simulated): where the backend's arrays live, and whether it runs in a simulator
    (its module sets SIMULATOR, as the numba-cuda backend does under NUMBA_ENABLE_CUDASIM=1)."""
    mod = registry.get_backend(backend).load()
    return device_of(mod.from_numpy(np.zeros(2))), bool(getattr(mod, "SIMULATOR", False))


def make_plan(backends, algorithms, families, sizes, *, use_caps=True) -> Plan:
    plan = Plan()
    infos = {b.name: b for b in registry.backends()}
    for b in backends:
        info = infos[b]
        if not info.available:
            plan.skipped_backends.append((b, info.reason))
            continue
        be = registry.get_backend(b)
        device, simulated = _device_of_backend(b)
        for a in algorithms:
            if a not in be.algorithms:
                continue
            for f in families:
                cap = cap_for(b, a, f, device) if use_caps else None
                if simulated:  # only the sizes its tests use
                    sim = Cap(b, "*", "*", be.max_test_d or 0, "runs in a slow simulator here")
                    cap = sim if cap is None or sim.max_d < cap.max_d else cap
                over = [d for d in sizes if cap is not None and d > cap.max_d]
                if over:
                    plan.capped.append((b, a, f, over, cap))
                plan.cells.extend((b, a, f, d) for d in sizes if d not in over)
    return plan


# ---------------------------------------------------------------------------------------------
# Reporting

def _fmt_time(t: float) -> str:
    if not np.isfinite(t):
        return "-"
    if t >= 1.0:
        return f"{t:.2f} s"
    if t >= 1e-3:
        return f"{t * 1e3:.3g} ms"
    return f"{t * 1e6:.3g} us"


def _fmt_d(d: int) -> str:
    e = math.log10(d) if d > 0 else 0
    return f"1e{int(e)}" if d > 0 and float(e).is_integer() else str(d)


def summarize(records) -> list[dict]:
    """One row per (backend, algorithm, family): times per d, exponent, ratio at the largest d."""
    rows: dict = {}
    for r in records:
        rows.setdefault((r.backend, r.algorithm, r.family), []).append(r)
    out = []
    for (b, a, f), rs in rows.items():
        ok = [r for r in rs if r.status == "ok"]
        p, n = fit_exponent([r.d for r in ok], [r.seconds for r in ok])
        last = max(ok, key=lambda r: r.d) if ok else None
        out.append({
            "backend": b, "algorithm": a, "family": f, "kind": rs[0].kind,
            "times": {r.d: (r.seconds if r.status == "ok" else r.status) for r in rs},
            "exponent": p, "fit_points": n,
            "ratio_to_floor": last.ratio_to_floor if last else math.nan,
            "ratio_d": last.d if last else None,
            "floor": last.floor if last else "",
            "certified": all(r.certified for r in rs),
        })
    return out


def markdown_table(summary, sizes) -> str:
    head = (["backend", "algorithm", "family"] + [f"d={_fmt_d(d)}" for d in sizes]
            + ["exponent", "x floor (largest d)", "certified"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for s in summary:
        cells = []
        for d in sizes:
            v = s["times"].get(d)
            cells.append("capped" if v is None else (v.upper() if isinstance(v, str) else _fmt_time(v)))
        p = s["exponent"]
        ratio = s["ratio_to_floor"]
        ratio_s = f"{ratio:.3g} (d={_fmt_d(s['ratio_d'])})" if np.isfinite(ratio) else "-"
        family = s["family"] + (" (worst)" if s["kind"] == "worst" else "")
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


def _caps_applied(plan) -> list[tuple]:
    """Each cap that removed something, once, with the number of combinations it capped."""
    counts: dict = {}
    for _, _, _, _, c in plan.capped:
        counts[c] = counts.get(c, 0) + 1
    return list(counts.items())


def write_outputs(out_dir, records, summary, sizes, plan, meta, *, plot=True) -> list[str]:
    os.makedirs(out_dir, exist_ok=True)
    written = []
    table = markdown_table(summary, sizes)
    md = ["# wsrbench compare", "", f"`{meta['command']}`", "",
          f"{meta['machine']}; dtype {meta['dtype']}; min of up to {meta['repeats']} calls after "
          f"a warm-up; floor: np.argsort of the same input (torch.sort for GPU backends).", "",
          table, ""]
    if plan.capped:
        md += ["Caps (backend/algorithm/family: sizes above the cap are not run):", ""]
        md += [f"- {c.backend}/{c.algorithm}/{c.family}{' on CPU' if c.device == 'cpu' else ''}: "
               f"d <= {c.max_d} ({n} combinations): {c.reason}" for c, n in _caps_applied(plan)]
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
        if plot_scaling(records, path):
            written.append(path)
    return written


def _json_default(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    return str(o)


def plot_scaling(records, path) -> bool:
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
                    label=f"floor: {name}")
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
        h, l = ax.get_legend_handles_labels()
        for hh, ll in zip(h, l):
            if ll not in labels:
                handles.append(hh)
                labels.append(ll)
    fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=8,
               bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout(rect=(0, 0.06 + 0.02 * math.ceil(len(labels) / 4), 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# ---------------------------------------------------------------------------------------------
# Progress

class _Progress:
    """tqdm when installed (pip install "wsrbench[bench]"), else one rewritten stderr line."""

    def __init__(self, total: int, enabled: bool = True):
        self.total, self.n, self.enabled = total, 0, enabled
        self.bar = None
        if enabled:
            try:
                from tqdm import tqdm
                self.bar = tqdm(total=total, file=sys.stderr, unit="run", leave=False,
                                dynamic_ncols=True)
            except ImportError:
                pass

    def update(self, label: str) -> None:
        self.n += 1
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_description(label, refresh=False)
            self.bar.update(1)
        else:
            sys.stderr.write(f"\r[{self.n}/{self.total}] {label:<70.70}")
            sys.stderr.flush()

    def close(self) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.close()
        else:
            sys.stderr.write("\r" + " " * 80 + "\r")
            sys.stderr.flush()


# ---------------------------------------------------------------------------------------------
# Command line

def _csv_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_sizes(text: str) -> list[int]:
    """'1e3,1e4,20000' -> [1000, 10000, 20000] (each a positive integer)."""
    out = []
    for tok in _csv_list(text):
        try:
            v = float(tok)
        except ValueError:
            raise ValueError(f"--sizes: {tok!r} is not a number") from None
        if v < 1 or v != int(v):
            raise ValueError(f"--sizes: {tok!r} is not a positive integer")
        out.append(int(v))
    if not out:
        raise ValueError("--sizes is empty")
    return sorted(set(out))


def resolve_families(text: str | None, default) -> list[str]:
    if text is None:
        return list(default)
    names = []
    for tok in _csv_list(text):
        if tok in ("all", "typical", "worst"):
            names += cases.names(None if tok == "all" else tok)
        elif tok in cases.names():
            names.append(tok)
        else:
            raise ValueError(f"--families: unknown family {tok!r}; choose from {cases.names()} "
                             f"or all/typical/worst")
    return list(dict.fromkeys(names))


def resolve_backends(text: str | None) -> list[str]:
    infos = registry.backends()
    if text is None:
        return [b.name for b in infos]  # unavailable ones are reported as skipped
    names = _csv_list(text)
    for n in names:
        registry.get_backend(n)  # ValueError naming the known ones
    return names


def resolve_algorithms(text: str | None) -> list[str]:
    if text is None:
        return [a.name for a in registry.algorithms()]
    names = _csv_list(text)
    for n in names:
        registry.get_algorithm(n)
    return names


def add_arguments(p) -> None:
    import argparse

    p.formatter_class = argparse.RawDescriptionHelpFormatter  # keep the docstring's layout
    p.add_argument("--backends", help="comma-separated backends (default: every available one)")
    p.add_argument("--algorithms", help="comma-separated algorithms (default: all registered)")
    p.add_argument("--families", help=f"comma-separated families, or all / typical / worst "
                                      f"(default: {','.join(DEFAULT_FAMILIES)})")
    p.add_argument("--sizes", help="comma-separated d values, e.g. 1e3,1e4,1e5 (default: "
                                   + ",".join(_fmt_d(d) for d in DEFAULT_SIZES) + ")")
    p.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed calls per measurement, min reported (default 3, 1 with --quick; "
                        f"fewer once they took {REPEAT_BUDGET_S:g} s)")
    p.add_argument("--quick", action="store_true",
                   help=f"under a minute: sizes {','.join(_fmt_d(d) for d in QUICK_SIZES)}, families "
                        f"{','.join(QUICK_FAMILIES)}, 1 repeat (explicit options still win)")
    p.add_argument("--seed", type=int, default=0, help="seed of the input families (default 0)")
    p.add_argument("--out", default="wsrbench-out", help="output directory (default wsrbench-out)")
    p.add_argument("--no-plot", action="store_true", help="skip scaling.png")
    p.add_argument("--no-caps", action="store_true", help="lift the size caps of slow combinations")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    quick = getattr(args, "quick", False)
    sizes = parse_sizes(args.sizes) if args.sizes else (QUICK_SIZES if quick else DEFAULT_SIZES)
    families = resolve_families(args.families, QUICK_FAMILIES if quick else DEFAULT_FAMILIES)
    backends = resolve_backends(args.backends)
    algorithms = resolve_algorithms(args.algorithms)
    repeats = args.repeats if args.repeats is not None else (1 if quick else 3)
    if repeats < 1:
        raise ValueError(f"--repeats must be >= 1, got {repeats}")
    dtype = np.dtype(args.dtype)

    plan = make_plan(backends, algorithms, families, sizes, use_caps=not args.no_caps)
    if args.backends is not None and plan.skipped_backends:
        b, why = plan.skipped_backends[0]
        raise RuntimeError(f"backend {b!r} is unavailable here: {why}")
    for b, why in plan.skipped_backends:
        print(f"skipping backend {b}: {why}")
    if plan.capped:
        print("caps (backend/algorithm/family; sizes above them are not run; --no-caps lifts them):")
        for c, n in _caps_applied(plan):
            where = " on CPU" if c.device == "cpu" else ""
            print(f"  {c.backend}/{c.algorithm}/{c.family}{where}: d <= {c.max_d} "
                  f"({n} combination{'s' if n > 1 else ''}): {c.reason}")
    if not plan.cells:
        raise ValueError("nothing to run: no available backend implements the chosen algorithms")

    t_start = time.perf_counter()
    records, floor_cache = [], {}
    progress = _Progress(len(plan.cells), enabled=not args.no_progress)
    try:
        for b, a, f, d in plan.cells:
            progress.update(f"{b} {a} {f} d={d}")
            records.append(measure(b, a, f, d, dtype=dtype, repeats=repeats, seed=args.seed,
                                   floor_cache=floor_cache))
    finally:
        progress.close()
    elapsed = time.perf_counter() - t_start

    summary = summarize(records)
    meta = {
        "command": "wsrbench compare " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["compare"]
        else "wsrbench compare",
        "machine": f"{platform.node() or 'host'}: {platform.processor() or platform.machine()}, "
                   f"{os.cpu_count()} CPUs, Python {platform.python_version()}, numpy {np.__version__}",
        "dtype": dtype.name, "repeats": repeats, "seed": args.seed, "sizes": sizes,
        "families": families, "elapsed_seconds": elapsed,
    }
    written = write_outputs(args.out, records, summary, sizes, plan, meta, plot=not args.no_plot)
    print(markdown_table(summary, sizes))
    print()
    print("floor (np.argsort on the CPU, torch.sort on a GPU), min time:")
    for fam, d, name, t in floor_rows(records):
        print(f"  {fam:<26} d={_fmt_d(d):<6} {name:<18} {_fmt_time(t)}")
    print()
    print("scaling exponent p (t ~ d^p, least squares on log-log) and time / floor at the largest d:")
    for s in summary:
        p, ratio = s["exponent"], s["ratio_to_floor"]
        p_s = f"p = {p:.2f}" if np.isfinite(p) else "p = - (fewer than two sizes)"
        r_s = f", {ratio:.3g}x floor at d={_fmt_d(s['ratio_d'])}" if np.isfinite(ratio) else ""
        print(f"  {s['backend']}/{s['algorithm']} on {s['family']}: {p_s}{r_s}")
    bad = [r for r in records if r.status != "ok"]
    for r in bad:
        print(f"{r.status.upper()}: {r.backend}/{r.algorithm}/{r.family}/d={r.d}: {r.message}")
    print(f"\n{len(records)} measurements in {elapsed:.1f} s; wrote {', '.join(written)}")
    return 1 if bad else 0

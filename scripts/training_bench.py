"""What the weight-sharing prox costs in training (README "Training with weight sharing").

    python scripts/training_bench.py [--iters 30] [--out docs/figures] [--big 5e7,8e7]

1. One SGD iteration (batch 512, SGD with momentum 0.9, lr 0.05, one torch thread) of the paper's
   MNIST MLP 784-150-10 (prox on fc1's weight) and of 784-1000-1000-10 (prox on the weights of
   its first two layers), on trained weights: WARMUP iterations with the prox first (a synthetic
   teacher-labelled task), then every mode starts from that state. Modes: no prox,
   ``WeightSharingProx``, and the same prox calls made by hand (``ProxState``), interleaved
   iteration by iteration so that load on a shared machine hits them alike; medians. Reported:
   the iteration ratio with / without the prox (targets: TARGETS), the prox's ms, the clusters
   the prox leaves, and how often ProxState's hint survived a step (hinted calls / calls).
2. One prox step at d = 5e7 and 8e7 (float32, a trained-layer-like Gaussian), each in a fresh
   process, once: time as a ratio to np.argsort of the same array (also once, in its own process),
   and the peak memory the call adds (ru_maxrss after minus before) in 8-byte words per weight.
   --big "" skips it.
3. The wrapper's own overhead at 4,000 and 117,600 weights (one Linear layer's weight and bias):
   ``WeightSharingProx.prox_step()`` against the same ``ProxState`` calls made by hand, the two
   alternating (which goes first swaps every step), weights nudged between steps; medians of
   --overhead-iters steps. Target: wrapper / bare <= 1.2.
Writes training_bench.md / .json and training_bench.png to --out (with --skip-iterations:
training_overhead.md / .json, leaving the iteration figures alone).
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time

import numpy as np

from wsrbench.bench.benchtools import ratio_spread
from wsrbench.core import provenance

NETS = {"784-150-10": (784, 150, 10), "784-1000-1000-10": (784, 1000, 1000, 10)}
PROX_LAYERS = {"784-150-10": 1, "784-1000-1000-10": 2}  # the first k Linear layers' weights
TARGETS = {"784-150-10": 1.25, "784-1000-1000-10": 1.10}  # iteration with / without the prox
MODES = ("none", "wrapper", "bare")
BATCH, LR, MOMENTUM, LAM, WARMUP, SAMPLES = 512, 0.05, 0.9, 0.05, 100, 8192
OVERHEAD_LR = 0.01  # part 3: plain SGD steps of one layer


def _net(sizes):
    import torch

    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    return torch.nn.Sequential(*layers[:-1])


def iteration_costs(iters: int, threads: int, warmup: int = WARMUP, nets=tuple(NETS)):
    import copy

    import torch

    from wsrbench.core.warm_start import ProxState
    from wsrbench.nn import WeightSharingProx

    torch.set_num_threads(threads)
    out = {}
    for net in nets:
        sizes = NETS[net]
        g = torch.Generator().manual_seed(0)
        data = torch.randn(SAMPLES, sizes[0], generator=g)
        labels = (data @ torch.randn(sizes[0], sizes[-1], generator=g)).argmax(1)  # learnable
        batches = [torch.randint(0, SAMPLES, (BATCH,), generator=g)
                   for _ in range(warmup + iters + 3)]
        torch.manual_seed(0)
        model = _net(sizes)
        opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
        prox_params = [model[2 * i].weight for i in range(PROX_LAYERS[net])]
        trainer = WeightSharingProx(opt, prox_params, lam=LAM)
        for it in range(warmup):  # trained weights: the prox has formed its clusters
            b = batches[it]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(data[b]), labels[b]).backward()
            opt.step()
            trainer.prox_step()
        setups = {}
        for mode in MODES:
            m = copy.deepcopy(model)
            o = torch.optim.SGD(m.parameters(), lr=LR, momentum=MOMENTUM)
            o.load_state_dict(opt.state_dict())  # the momentum buffers of the trained state
            params = [m[2 * i].weight for i in range(PROX_LAYERS[net])]
            wrap = WeightSharingProx(o, params, lam=LAM) if mode == "wrapper" else None
            setups[mode] = (m, o, wrap, [(p, ProxState()) for p in params])
        times = {m: [] for m in MODES}
        prox_times = {"wrapper": [], "bare": []}
        for it in range(iters + 3):  # 3 untimed: JIT compilation, first warm-start hints
            b = batches[warmup + it]
            x, y = data[b], labels[b]
            for mode in MODES:
                model_m, o, wrap, states = setups[mode]
                t0 = time.perf_counter()
                o.zero_grad()
                torch.nn.functional.cross_entropy(model_m(x), y).backward()
                o.step()
                t1 = time.perf_counter()
                if mode == "wrapper":
                    wrap.prox_step()
                elif mode == "bare":
                    with torch.no_grad():
                        for p, st in states:
                            p.copy_(st.prox(p.detach().reshape(1, -1), LR * LAM).reshape(p.shape))
                t2 = time.perf_counter()
                if it >= 3:
                    times[mode].append(t2 - t0)
                    if mode in prox_times:
                        prox_times[mode].append(t2 - t1)
        med = {m: float(np.median(v)) for m, v in times.items()}
        pmed = {m: float(np.median(v)) for m, v in prox_times.items()}
        states = setups["bare"][3]
        d = sum(p.numel() for p, _ in states)
        first = setups["bare"][0][0].weight.detach().numpy()
        out[net] = {"prox_weights": d, "ms": {m: 1e3 * v for m, v in med.items()},
                    "prox_ms": {m: 1e3 * v for m, v in pmed.items()},
                    "ratio": med["wrapper"] / med["none"], "target": TARGETS[net],
                    # the iterations of one index ran back to back: their ratios' spread
                    "ratio_paired": ratio_spread(times["wrapper"], times["none"]),
                    "prox_share": med["wrapper"] / med["none"] - 1.0,
                    "wrapper_over_bare_prox": pmed["wrapper"] / pmed["bare"],
                    "clusters_first_layer": int(np.unique(first).size),
                    "hinted_calls": sum(st.hinted_rows for _, st in states),
                    "calls": sum(st.calls for _, st in states),
                    "argsort_ms": 1e3 * _argsort_time(first.ravel().copy())}
    return out


def prox_overhead(iters: int, threads: int):
    import torch

    from wsrbench.core.warm_start import ProxState
    from wsrbench.nn import WeightSharingProx

    torch.set_num_threads(threads)
    out = {}
    for out_f, in_f in ((40, 100), (150, 784)):
        torch.manual_seed(0)
        a = torch.nn.Linear(in_f, out_f)
        b = torch.nn.Linear(in_f, out_f)
        b.load_state_dict(a.state_dict())
        for p in a.parameters():
            p.grad = torch.zeros_like(p)
        wrap = WeightSharingProx(torch.optim.SGD(a.parameters(), lr=OVERHEAD_LR), [a.weight, a.bias],
                                 lam=LAM)
        states = [(b.weight, ProxState()), (b.bias, ProxState())]

        def bare(states=states):
            with torch.no_grad():
                for p, st in states:
                    p.copy_(st.prox(p.detach().reshape(1, -1), OVERHEAD_LR * LAM).reshape(p.shape))

        g = torch.Generator().manual_seed(1)
        times = {"wrapper": [], "bare": []}
        for it in range(iters + 3):  # 3 untimed: JIT compilation, first hints
            noise = 1e-3 * torch.randn(out_f, in_f, generator=g)
            with torch.no_grad():
                a.weight.add_(noise)
                b.weight.add_(noise)
            for mode in (("wrapper", "bare") if it % 2 else ("bare", "wrapper")):
                t = time.perf_counter()
                wrap.prox_step() if mode == "wrapper" else bare()
                if it >= 3:
                    times[mode].append(time.perf_counter() - t)
        if not torch.equal(a.weight, b.weight):
            raise AssertionError("the wrapper's step differs from the bare prox calls")
        med = {m: float(np.median(v)) for m, v in times.items()}
        out[out_f * in_f] = {"wrapper_us": 1e6 * med["wrapper"], "bare_us": 1e6 * med["bare"],
                             "ratio": med["wrapper"] / med["bare"],
                             "ratio_paired": ratio_spread(times["wrapper"], times["bare"])}
    return out


def first_layer_sample(d):
    return np.random.default_rng(0).standard_normal(d).astype(np.float32) * 0.03


def _argsort_time(x, reps=10):
    np.argsort(x)
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        np.argsort(x)
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


_CHILD = r"""
import resource, sys, time, numpy as np
what, d = sys.argv[1], int(float(sys.argv[2]))
x = np.random.default_rng(0).standard_normal(d).astype(np.float32) * np.float32(0.03)
if what != "argsort":
    import wsrbench
    from wsrbench.core.warm_start import ProxState
    wsrbench.prox(x[:1000], 1e-3)  # compile (cached) outside the measurement
    ProxState().prox(x[:1000], 1e-3)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
if what == "argsort":
    np.argsort(x)
elif what == "prox":
    wsrbench.prox(x, 5e-4)
else:  # the training path: ProxState, first call (cold) then the same input again (exact hint)
    st = ProxState()
    st.prox(x, 5e-4)
    t1 = time.perf_counter()
    st.prox(x, 5e-4)
    print("hinted", time.perf_counter() - t1)
el = time.perf_counter() - t
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print("time", el)
print("words", (after - before) * 1024 / 8 / d)
"""


def big_prox(ds):
    out = {}
    for d in ds:
        rec = {}
        for what in ("argsort", "prox", "state"):
            res = subprocess.run([sys.executable, "-c", _CHILD, what, str(d)], check=True,
                                 capture_output=True, text=True,
                                 env={**os.environ, "PYTHONPATH": os.getcwd()})
            vals = dict(line.split() for line in res.stdout.strip().splitlines())
            rec[what] = {k: float(v) for k, v in vals.items()}
        out[int(d)] = {
            "argsort_s": rec["argsort"]["time"], "prox_s": rec["prox"]["time"],
            "prox_over_argsort": rec["prox"]["time"] / rec["argsort"]["time"],
            "prox_words_per_weight": rec["prox"]["words"],
            "state_cold_plus_hinted_s": rec["state"]["time"], "state_hinted_s": rec["state"]["hinted"],
            "state_hinted_over_argsort": rec["state"]["hinted"] / rec["argsort"]["time"],
            "state_words_per_weight": rec["state"]["words"],
            "argsort_words_per_weight": rec["argsort"]["words"]}
    return out


def _spread(r, digits=2):
    m, lo, hi = r["ratio_paired"]
    return f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def write(out_dir, res):
    os.makedirs(out_dir, exist_ok=True)
    lines = ["# The prox in a training iteration", "", *res["provenance"],
             f"- torch threads {res['threads']}, medians of {res['iters']} iterations (part 1) "
             f"and {res['overhead_iters']} prox steps (part 3)"]
    if res["iterations"]:
        lines += ["", f"Part 1: batch {BATCH}, SGD lr {LR} momentum {MOMENTUM}, lam {LAM} (prox "
                  f"strength lr * lam per step), {res.get('warmup', WARMUP)} training iterations "
                  "with the prox before timing (trained weights).", "",
                  "| net | prox on | iteration ms (no prox) | with WeightSharingProx | "
                  "ratio (target) | paired ratios: median [IQR] | wrapper / bare prox | prox ms | "
                  "clusters (first layer) | hint kept (calls) | np.argsort ms (first layer) |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for net, r in res["iterations"].items():
        lines.append(f"| {net} | {r['prox_weights']} weights | {r['ms']['none']:.2f} | "
                     f"{r['ms']['wrapper']:.2f} | {r['ratio']:.2f} ({r['target']:.2f}) | "
                     f"{_spread(r)} | "
                     f"{r['wrapper_over_bare_prox']:.2f} | {r['prox_ms']['wrapper']:.2f} | "
                     f"{r['clusters_first_layer']} | {r['hinted_calls']} of {r['calls']} | "
                     f"{r['argsort_ms']:.2f} |")
    if res.get("overhead"):
        lines += ["", "| weights | WeightSharingProx.prox_step us | bare ProxState calls us | "
                  "wrapper / bare (target <= 1.2) | paired ratios: median [IQR] |",
                  "| --- | --- | --- | --- | --- |"]
        for d, r in res["overhead"].items():
            lines.append(f"| {d} | {r['wrapper_us']:.0f} | {r['bare_us']:.0f} | "
                         f"{r['ratio']:.3f} | {_spread(r, 3)} |")
    if res.get("big"):
        lines += ["", "| d | np.argsort s | prox s | prox / argsort | extra words per weight | "
                  "ProxState hinted s | hinted / argsort | ProxState words per weight |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for d, r in res["big"].items():
            lines.append(f"| {d:.0e} | {r['argsort_s']:.2f} | {r['prox_s']:.2f} | "
                         f"{r['prox_over_argsort']:.2f} | {r['prox_words_per_weight']:.2f} | "
                         f"{r['state_hinted_s']:.2f} | {r['state_hinted_over_argsort']:.2f} | "
                         f"{r['state_words_per_weight']:.2f} |")
    text = "\n".join(lines) + "\n"
    stem = "training_bench" if res["iterations"] else "training_overhead"
    with open(os.path.join(out_dir, stem + ".md"), "w") as f:
        f.write(text)
    with open(os.path.join(out_dir, stem + ".json"), "w") as f:
        json.dump(res, f, indent=1)
    if not res["iterations"]:
        return text
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return text
    fig, ax = plt.subplots(figsize=(6, 2.6))
    nets = list(res["iterations"])
    for i, net in enumerate(nets):
        r = res["iterations"][net]
        base = r["ms"]["none"]
        ax.barh(i + 0.2, base, 0.35, color="tab:gray", label="SGD iteration" if i == 0 else None)
        ax.barh(i - 0.2, base, 0.35, color="tab:gray")
        ax.barh(i - 0.2, r["ms"]["wrapper"] - base, 0.35, left=base, color="tab:blue",
                label="+ WeightSharingProx" if i == 0 else None)
        ax.text(r["ms"]["wrapper"], i - 0.2, f" {100 * r['prox_share']:+.0f}%", va="center",
                fontsize=8)
    ax.set_yticks(range(len(nets)), nets)
    ax.set_xlabel("ms per iteration (batch 512, CPU, median)")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "training_bench.png"), dpi=110)
    plt.close(fig)
    return text


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iters", type=int, default=30)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--big", default="5e7,8e7", help="d values of the one-off prox step ('' skips)")
    p.add_argument("--warmup", type=int, default=WARMUP, help="training iterations before timing")
    p.add_argument("--out", default="docs/figures")
    p.add_argument("--overhead-iters", type=int, default=400,
                   help="prox steps per mode of the overhead measurement (0 skips it)")
    p.add_argument("--skip-iterations", action="store_true", help="skip part 1")
    p.add_argument("--nets", default=",".join(NETS),
                   help=f"the nets of part 1, comma-separated (default {','.join(NETS)})")
    a = p.parse_args(argv)
    nets = [n for n in a.nets.split(",") if n]
    unknown = sorted(set(nets) - set(NETS))
    if unknown:
        p.error(f"--nets: unknown {unknown}; choose among {sorted(NETS)}")
    command = "python scripts/training_bench.py " + shlex.join(argv or sys.argv[1:])
    with provenance.LoadMonitor() as load:
        res = {"command": command, "iters": a.iters, "threads": a.threads, "warmup": a.warmup,
               "overhead_iters": a.overhead_iters,
               "iterations": {} if a.skip_iterations
               else iteration_costs(a.iters, a.threads, a.warmup, nets)}
        if a.overhead_iters:
            res["overhead"] = prox_overhead(a.overhead_iters, a.threads)
        if a.big:
            res["big"] = big_prox([float(v) for v in a.big.split(",")])
    res["provenance"] = provenance.lines(load, command)
    res["meta"] = provenance.meta(load, command)
    print(write(a.out, res))


if __name__ == "__main__":
    main()

"""Reproduce a result of the weight-sharing paper on data that ships offline.

``wsrbench reproduce shuffled-digits``: scikit-learn's digits (8x8, 1797 images, no download), with
a fixed random permutation of the pixels. Three models, each trained on every data setting with
several seeds:

  fc        a one-hidden-layer fully connected net (inputs -> hidden -> 10);
  fc+prox   the same net trained with the weight-sharing prox on its first layer
            (``wsrbench.nn.WeightSharingProx``: weight and bias, each one pool, lr-scaled lam);
  cnn       a small CNN (3x3 convolutions with 8 and 16 channels, each followed by 2x2 max
            pooling, linear read-out; circular padding on the torus).

Data settings: ``original`` (8x8), ``shuffled`` (the same pixels permuted), and the paper's torus
setting: each digit placed at a random cyclic shift on a 16x16 torus (``torus``, several shifts per
training image), then the torus pixels permuted (``torus-shuffled``). A permutation destroys the
locality a CNN relies on, but not what a fully connected net sees; the paper's claim is that
weight sharing lets an FC net find convolution-like structure again from the data alone, most
clearly on the torus, where translation invariance makes sharing the right prior.

Writes to --out: results.md (test accuracy mean +- std per model x data, distinct first-layer
weights, median time per training step with and without the prox, conv-likeness), results.csv and
results.json (one record per run), filters.png (first-layer filters of fc, fc+prox and cnn mapped
back to unshuffled image coordinates). Conv-likeness of a first layer W (units x pixels), in
unshuffled coordinates: the correlation of W[u, p] with W[u, q] over every unit u and pair of
4-neighbouring pixels p, q (cyclic on the torus), minus the same correlation over pixel pairs at
distance >= 3: about 0 for unstructured filters, large for smooth, local ones (docs/design.md#training).

Needs torch and scikit-learn: ``pip install "torch==2.13.0" -e ".[train]"``.
"""
from __future__ import annotations

import csv
import json
import os
import platform
import time

import numpy as np

EXPERIMENTS = ("shuffled-digits",)
SETTINGS = ("original", "shuffled", "torus", "torus-shuffled")
MODELS = ("fc", "fc+prox", "cnn")
TORUS = 16  # side of the torus the 8x8 digits are placed on
WARMUP_STEPS = 5  # steps left out of the time per step


def _config(quick: bool, args) -> dict:
    c = {"seeds": 1 if quick else 3, "epochs": 6 if quick else 40, "hidden": 64 if quick else 100,
         "batch": 64, "lr": 0.05, "momentum": 0.9, "torus_copies": 2 if quick else 5,
         "lam": 0.002, "settings": list(SETTINGS), "test_fraction": 0.33}
    for key in ("seeds", "epochs", "hidden", "lam"):
        v = getattr(args, key, None)
        if v is not None:
            c[key] = v
    if getattr(args, "settings", None):
        bad = [s for s in args.settings.split(",") if s not in SETTINGS]
        if bad:
            raise ValueError(f"--settings: unknown {bad}; choose from {','.join(SETTINGS)}")
        c["settings"] = args.settings.split(",")
    if c["seeds"] < 1 or c["epochs"] < 1 or c["hidden"] < 1:
        raise ValueError("--seeds, --epochs and --hidden must be >= 1")
    if not c["lam"] >= 0:
        raise ValueError(f"--lam must be >= 0, got {c['lam']}")
    return c


# ------------------------------------------------------------------------------------ data

def load_data(setting: str, cfg: dict, seed: int = 0):
    """(Xtr, ytr, Xte, yte, side, perm): float32 rows of side*side pixels (perm applied) and the
    permutation (pixel j of a row is pixel perm[j] of the image; identity when unshuffled).

    The split, the torus shifts and the permutation depend on the data seed only (0 for all runs),
    so every model and training seed sees the same data."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    rng = np.random.default_rng([seed, 8])
    idx = rng.permutation(len(y))
    n_test = round(cfg["test_fraction"] * len(y))
    te, tr = idx[:n_test], idx[n_test:]
    side = 8
    if setting.startswith("torus"):
        side = TORUS
        Xtr, ytr = _torus(images[tr], y[tr], cfg["torus_copies"], rng)
        Xte, yte = _torus(images[te], y[te], 1, rng)
    else:
        Xtr, ytr, Xte, yte = images[tr], y[tr], images[te], y[te]
    Xtr = Xtr.reshape(len(Xtr), -1)
    Xte = Xte.reshape(len(Xte), -1)
    perm = np.arange(side * side)
    if setting.endswith("shuffled"):
        perm = np.random.default_rng([seed, side]).permutation(side * side)
        Xtr, Xte = Xtr[:, perm], Xte[:, perm]
    return Xtr, ytr, Xte, yte, side, perm


def _torus(images, y, copies, rng):
    """Each 8x8 image on a TORUS x TORUS canvas, rolled by a random cyclic shift (copies each)."""
    n = len(images)
    out = np.zeros((n * copies, TORUS, TORUS), dtype=np.float32)
    for c in range(copies):
        shifts = rng.integers(0, TORUS, size=(n, 2))
        for i in range(n):
            canvas = np.zeros((TORUS, TORUS), dtype=np.float32)
            canvas[:8, :8] = images[i]
            out[c * n + i] = np.roll(canvas, tuple(shifts[i]), axis=(0, 1))
    return out, np.tile(y, copies)


# ---------------------------------------------------------------------------------- models

def build_model(kind: str, side: int, cfg: dict, circular: bool):
    import torch
    from torch import nn

    if kind in ("fc", "fc+prox"):
        return nn.Sequential(nn.Linear(side * side, cfg["hidden"]), nn.ReLU(),
                             nn.Linear(cfg["hidden"], 10))

    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            mode = "circular" if circular else "zeros"
            self.conv1 = nn.Conv2d(1, 8, 3, padding=1, padding_mode=mode)
            self.conv2 = nn.Conv2d(8, 16, 3, padding=1, padding_mode=mode)
            self.out = nn.Linear(16 * (side // 4) ** 2, 10)

        def forward(self, x):
            h = torch.max_pool2d(torch.relu(self.conv1(x.reshape(-1, 1, side, side))), 2)
            h = torch.max_pool2d(torch.relu(self.conv2(h)), 2)
            return self.out(h.flatten(1))

    return CNN()


def train_one(kind, data, cfg, seed, circular=False):
    """Train one model; returns a dict of figures and the first layer (units x pixels)."""
    import torch
    from torch import nn

    from .modules import WeightSharingProx

    Xtr, ytr, Xte, yte, side, perm = data
    torch.manual_seed(seed)
    model = build_model(kind, side, cfg, circular)
    opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"], momentum=cfg["momentum"])
    if kind == "fc+prox":
        first = model[0]
        opt = WeightSharingProx(opt, [("fc1.weight", first.weight), ("fc1.bias", first.bias)],
                                lam=cfg["lam"])
    Xt, yt = torch.from_numpy(Xtr), torch.from_numpy(ytr)
    gen = torch.Generator().manual_seed(seed)
    n = len(yt)
    step_times, prox_times = [], []
    for _ in range(cfg["epochs"]):
        order = torch.randperm(n, generator=gen)
        for b in range(0, n, cfg["batch"]):
            i = order[b:b + cfg["batch"]]
            t0 = time.perf_counter()
            opt.zero_grad()
            nn.functional.cross_entropy(model(Xt[i]), yt[i]).backward()
            t1 = None
            if kind == "fc+prox":
                opt.optimizer.step()
                t1 = time.perf_counter()
                opt.prox_step()
            else:
                opt.step()
            t2 = time.perf_counter()
            step_times.append(t2 - t0)
            prox_times.append(0.0 if t1 is None else t2 - t1)
    # medians over the steps after the first few (JIT compilation or loading its cache, first
    # warm-start hints): on a shared machine the mean is the preemptions' more than ours
    step_ms = 1e3 * float(np.median(step_times[WARMUP_STEPS:] or step_times))
    prox_ms = 1e3 * float(np.median(prox_times[WARMUP_STEPS:] or prox_times))
    steps = len(step_times)
    model.eval()
    with torch.no_grad():
        acc = float((model(torch.from_numpy(Xte)).argmax(1).numpy() == yte).mean())
    if kind == "cnn":
        W = model.conv1.weight.detach().numpy().reshape(8, 9)
        distinct = int(np.unique(W).size)
        filters = W
    else:
        W = model[0].weight.detach().numpy()
        distinct = int(np.unique(W).size)
        filters = unshuffle(W, perm)
    return {"accuracy": acc, "distinct": distinct, "weights": int(W.size),
            "ms_per_step": step_ms, "prox_ms_per_step": prox_ms,
            "steps": steps}, filters


def unshuffle(W, perm):
    """Columns of W back in image order: column perm[j] of the result is column j of W."""
    out = np.empty_like(W)
    out[:, perm] = W
    return out


def conv_likeness(W, side: int, cyclic: bool) -> tuple[float, float]:
    """(neighbour correlation, far correlation) of the filters W (units x side*side, image order).

    Correlation over every (unit, pixel pair) of the two weights; neighbours are 4-neighbours
    (cyclic on the torus), far pairs are those at (cyclic) Chebyshev distance >= 3."""
    units = W.reshape(W.shape[0], side, side)
    ys, xs = np.mgrid[0:side, 0:side]
    coords = np.stack([ys.ravel(), xs.ravel()], 1)
    diff = np.abs(coords[:, None, :] - coords[None, :, :])
    if cyclic:
        diff = np.minimum(diff, side - diff)
    manhattan, cheb = diff.sum(-1), diff.max(-1)
    iu = np.triu_indices(side * side, 1)
    near = (manhattan[iu] == 1)
    far = (cheb[iu] >= 3)
    flat = units.reshape(W.shape[0], -1)

    def corr(mask):
        a = flat[:, iu[0][mask]].ravel()
        b = flat[:, iu[1][mask]].ravel()
        a, b = np.concatenate([a, b]), np.concatenate([b, a])  # symmetric in the pair
        if np.ptp(a) == 0:
            return float("nan")  # constant filters (a collapsed layer): no correlation
        return float(np.corrcoef(a, b)[0, 1])

    return corr(near), corr(far)


# -------------------------------------------------------------------------------- the run

def run_experiment(cfg: dict, out_dir: str, *, progress=print) -> dict:
    import torch

    torch.set_num_threads(1)  # small nets: threads cost more than they give (and CPUs are shared)
    records, filters = [], {}
    for setting in cfg["settings"]:
        data = load_data(setting, cfg)
        side = data[4]
        for kind in MODELS:
            for seed in range(cfg["seeds"]):
                rec, F = train_one(kind, data, cfg, seed, setting.startswith("torus"))
                rec.update(setting=setting, model=kind, seed=seed)
                if kind != "cnn":
                    near, far = conv_likeness(F, side, setting.startswith("torus"))
                    rec.update(neighbour_corr=near, far_corr=far, conv_likeness=near - far)
                records.append(rec)
                if seed == 0:
                    filters[(setting, kind)] = (F, side)
                progress(f"{setting:15s} {kind:8s} seed {seed}: acc {rec['accuracy']:.3f}, "
                         f"{rec['distinct']} distinct, {rec['ms_per_step']:.2f} ms/step")
    summary = summarize(records)
    os.makedirs(out_dir, exist_ok=True)
    written = write_outputs(out_dir, records, summary, cfg, filters)
    return {"records": records, "summary": summary, "written": written}


def summarize(records):
    rows = []
    keys = sorted({(r["setting"], r["model"]) for r in records},
                  key=lambda k: (SETTINGS.index(k[0]), MODELS.index(k[1])))
    for setting, model in keys:
        rs = [r for r in records if r["setting"] == setting and r["model"] == model]
        acc = np.array([r["accuracy"] for r in rs])
        row = {"setting": setting, "model": model, "runs": len(rs),
               "acc_mean": float(acc.mean()), "acc_std": float(acc.std(ddof=1)) if len(rs) > 1
               else 0.0, "distinct": float(np.mean([r["distinct"] for r in rs])),
               "weights": rs[0]["weights"],
               "ms_per_step": float(np.mean([r["ms_per_step"] for r in rs])),
               "prox_ms_per_step": float(np.mean([r["prox_ms_per_step"] for r in rs]))}
        if "conv_likeness" in rs[0]:
            row["conv_likeness"] = float(np.mean([r["conv_likeness"] for r in rs]))
            row["neighbour_corr"] = float(np.mean([r["neighbour_corr"] for r in rs]))
        rows.append(row)
    return rows


def format_table(summary) -> str:
    lines = ["| data | model | test accuracy (mean +- std) | distinct / first-layer weights | "
             "ms per step (prox part) | conv-likeness (neighbour corr) |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in summary:
        if "conv_likeness" not in r:
            cl = "local by construction"
        elif np.isnan(r["conv_likeness"]):
            cl = "none: every weight equal"
        else:
            cl = f"{r['conv_likeness']:+.3f} ({r['neighbour_corr']:+.3f})"
        prox = f" ({r['prox_ms_per_step']:.2f})" if r["prox_ms_per_step"] else ""
        lines.append(f"| {r['setting']} | {r['model']} | {100 * r['acc_mean']:.1f} +- "
                     f"{100 * r['acc_std']:.1f} % (n={r['runs']}) | {r['distinct']:.0f} / "
                     f"{r['weights']} | {r['ms_per_step']:.2f}{prox} | {cl} |")
    return "\n".join(lines)


def write_outputs(out_dir, records, summary, cfg, filters) -> list[str]:
    written = []
    path = os.path.join(out_dir, "results.md")
    meta = (f"wsrbench reproduce shuffled-digits: {cfg['seeds']} seed(s), {cfg['epochs']} epochs, "
            f"hidden {cfg['hidden']}, SGD lr {cfg['lr']} momentum {cfg['momentum']}, batch "
            f"{cfg['batch']}, lam {cfg['lam']} (prox strength lr * lam per step), "
            f"{cfg['torus_copies']} torus shifts per training image; "
            f"{platform.machine()} {platform.system()}, {os.cpu_count()} CPUs")
    with open(path, "w") as f:
        f.write(meta + "\n\n" + format_table(summary) + "\n")
    written.append(path)
    path = os.path.join(out_dir, "results.csv")
    fields = sorted({k for r in records for k in r})
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(records)
    written.append(path)
    path = os.path.join(out_dir, "results.json")
    with open(path, "w") as f:
        json.dump({"config": cfg, "records": records, "summary": summary}, f, indent=1)
    written.append(path)
    try:
        written.append(plot_filters(filters, os.path.join(out_dir, "filters.png")))
    except ImportError:
        pass  # matplotlib missing: the table says everything but the picture
    return written


def plot_filters(filters, path, n_units: int = 6) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = [s for s in SETTINGS if any(k[0] == s for k in filters)]
    fig, axes = plt.subplots(len(settings) * len(MODELS), n_units,
                             figsize=(1.3 * n_units, 1.35 * len(settings) * len(MODELS)))
    axes = np.atleast_2d(axes)
    for si, setting in enumerate(settings):
        for mi, model in enumerate(MODELS):
            row = si * len(MODELS) + mi
            F, side = filters.get((setting, model), (None, 0))
            for u in range(n_units):
                ax = axes[row, u]
                ax.set_xticks([])
                ax.set_yticks([])
                if F is None or u >= F.shape[0]:
                    continue
                if model == "cnn":  # a 3x3 kernel, shown on the image grid at its centre
                    img = np.full((side, side), np.nan)
                    c = side // 2
                    img[c - 1:c + 2, c - 1:c + 2] = F[u].reshape(3, 3)
                else:  # the units of largest norm: the informative ones
                    order = np.argsort(-np.linalg.norm(F, axis=1))
                    img = F[order[u]].reshape(side, side)
                m = np.nanmax(np.abs(img)) or 1.0
                ax.imshow(img, cmap="RdBu_r", vmin=-m, vmax=m)
                if u == 0:
                    ax.set_ylabel(f"{setting}\n{model}", fontsize=7)
    fig.suptitle("first-layer filters in image coordinates (unshuffled)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

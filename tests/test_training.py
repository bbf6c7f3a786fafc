"""Proximal training (wsrbench.nn.training / wsrbench.nn.WeightSharingProx) and two regressions:
``algorithm="auto"`` on a CPU tensor, and ``ProxState`` keeping the input's kind.

Every step is checked bit for bit against ``wsrbench.prox`` applied by hand to the same tensors
with the strengths the docs promise (lr_t * lam, ...): the wrapper must be that and nothing else.
"""
from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import wsrbench  # noqa: E402
from wsrbench.core import registry  # noqa: E402
from wsrbench.core.warm_start import ProxState  # noqa: E402

if registry.get_backend("torch").unavailable_reason() is not None:
    pytest.skip(registry.get_backend("torch").unavailable_reason(), allow_module_level=True)

import wsrbench.nn as wnn  # noqa: E402

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


# ------------------------------------------------------------------------- the two defects

def test_auto_on_cpu_tensor_runs_pava():
    x = torch.randn(3, 200, dtype=torch.float32)
    w, info = wsrbench.prox_info(x, 0.5)
    assert (info.backend, info.algorithm) == ("torch", "pava")
    assert isinstance(w, torch.Tensor) and w.dtype == x.dtype
    np.testing.assert_array_equal(w.numpy(), wsrbench.prox(x.numpy(), 0.5, algorithm="pava"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_auto_on_cuda_tensor_stays_parallel():
    _, info = wsrbench.prox_info(torch.randn(100, device="cuda"), 0.5)
    assert info.algorithm == "search_collisions"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(50,), (4, 30)])
def test_proxstate_returns_the_tensor_kind(dtype, shape):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(shape, generator=gen, dtype=dtype)
    state = ProxState()
    for _ in range(3):
        w, info = state.prox_info(x, 0.3, l1=0.01, rho=0.2, labels=True)
        assert isinstance(w, torch.Tensor) and w.dtype == dtype and w.shape == x.shape
        assert isinstance(info.labels, torch.Tensor) and info.labels.shape == x.shape
        ref, ref_info = wsrbench.prox_info(x.numpy(), 0.3, l1=0.01, rho=0.2, labels=True)
        np.testing.assert_array_equal(w.numpy(), ref)
        np.testing.assert_array_equal(info.labels.numpy(), ref_info.labels)
        x = w + 1e-3 * torch.randn(shape, generator=gen, dtype=dtype)
    assert state.hinted_rows > 0  # the warm start is used on tensors too


@pytest.mark.skipif(registry.get_backend("numba_cuda").unavailable_reason() is not None,
                    reason="numba_cuda backend unavailable")
def test_proxstate_keeps_device_arrays_on_the_device():
    from numba import cuda

    x = np.linspace(-1, 1, 16)
    w = ProxState().prox(cuda.to_device(x), 0.5)
    assert registry.array_kind(w) == "cuda"
    np.testing.assert_allclose(w.copy_to_host(), wsrbench.prox(x, 0.5), rtol=0,
                               atol=32 * np.finfo(float).eps)


# ------------------------------------------------------------------- exactness of each step

def _mlp(seed=0, dtype=torch.float32, device="cpu"):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(12, 9), nn.ReLU(), nn.Linear(9, 4)).to(dtype).to(device)


def _batch(seed, device="cpu", dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(32, 12, generator=g).to(dtype).to(device),
            torch.randint(0, 4, (32,), generator=g).to(device))


def _sgd_step(model, opt, seed):
    x, y = _batch(seed, next(model.parameters()).device, next(model.parameters()).dtype)
    opt.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()


def _ref_prox(t, lam, l1, rho, scope):
    """The documented step, by hand: wsrbench.prox on the tensor viewed as the scope says."""
    a = t.detach().cpu().numpy()
    rows = a.reshape(a.shape[0], -1) if scope == "row" else a.reshape(1, -1)
    return wsrbench.prox(rows, lam, l1=l1, rho=rho).reshape(a.shape)


@pytest.mark.parametrize("scope", ["tensor", "row"])
@pytest.mark.parametrize("l1,rho", [(0.0, 0.0), (0.05, 0.3)])
def test_each_step_is_the_prox_at_lr_times_lam(scope, l1, rho):
    model, ref = _mlp(), _mlp()
    lam, lr = 0.4, 0.1
    opt = wnn.WeightSharingProx(torch.optim.SGD(model.parameters(), lr=lr),
                                [model[0].weight, model[0].bias], lam=lam, l1=l1, rho=rho,
                                scope=scope)
    ref_opt = torch.optim.SGD(ref.parameters(), lr=lr)
    for step in range(4):
        _sgd_step(model, opt, step)
        _sgd_step(ref, ref_opt, step)
        with torch.no_grad():
            for p in (ref[0].weight, ref[0].bias):
                p.copy_(torch.from_numpy(_ref_prox(p, lr * lam, lr * l1, rho, scope)))
        for p, q in zip(model.parameters(), ref.parameters()):
            assert torch.equal(p, q)
    assert model[2].weight.unique().numel() == model[2].weight.numel()  # untouched layer


def test_pools_on_threads_step_as_the_serial_ones():
    """threads=2 (a step's one-row CPU pools proxed at once on two threads) gives the serial
    answer bit for bit, with a multi-row pool beside them; a worker's error reaches the caller
    with every parameter of the step's other pools finished; bad ``threads`` are named."""
    models = [_mlp(), _mlp()]
    opts = []
    for model, threads in zip(models, (1, 2)):
        groups = [{"params": [model[0].weight, model[2].weight, model[2].bias]},
                  {"params": [model[0].bias], "scope": "row"}]
        opts.append(wnn.WeightSharingProx(torch.optim.SGD(model.parameters(), lr=0.1), groups,
                                          lam=0.3, threads=threads))
    for step in range(4):
        for model, opt in zip(models, opts):
            _sgd_step(model, opt, step)
        for p, q in zip(*(m.parameters() for m in models)):
            assert torch.equal(p, q)
    assert opts[0].metrics() == opts[1].metrics()
    with torch.no_grad():
        models[1][2].weight[0, 0] = float("nan")  # a pool after the first: a worker's
    with pytest.raises(ValueError, match=r"finite|NaN"):
        opts[1].prox_step()
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="threads"):
            wnn.WeightSharingProx(torch.optim.SGD(models[0].parameters(), lr=0.1), models[0],
                                  lam=0.1, threads=bad)


@pytest.mark.parametrize("scale", [1.0, 1e306])
def test_prox_in_place_is_the_prox(scale):
    """ProxState._prox_in_place (a step's parameter proxed in its own memory) gives what the
    same ProxState calls give into a new array, bit for bit, on the warm paths (by cluster, one
    block) and on the scaled path of the extreme range, for one row and for rows."""
    rng = np.random.default_rng(5)
    for shape, lam in (((1, 3000), 0.05), ((4, 500), 0.05), ((1, 3000), 50.0)):
        state, twin = ProxState(), ProxState()
        x = scale * 0.01 * rng.standard_normal(shape)
        for _ in range(4):
            t = torch.from_numpy(x.copy())
            ptr = t.data_ptr()
            info = state._prox_in_place(t, lam * scale, 0.0, 0.0)
            ref, rinfo = twin.prox_info(x, lam * scale)
            assert t.data_ptr() == ptr
            np.testing.assert_array_equal(t.numpy(), ref)
            assert np.array_equal(np.atleast_1d(info.clusters), np.atleast_1d(rinfo.clusters))
            assert np.array_equal(state.last_moves, twin.last_moves)
            x = t.numpy() + 1e-4 * scale * rng.standard_normal(shape)


def test_joint_scope_shares_one_pool():
    model, ref = _mlp(), _mlp()
    lam, lr = 2.0, 0.1
    opt = wnn.WeightSharingProx(torch.optim.SGD(model.parameters(), lr=lr),
                                [{"params": [model[0].weight, model[0].bias], "scope": "joint"}],
                                lam=lam, labels=True)
    ref_opt = torch.optim.SGD(ref.parameters(), lr=lr)
    _sgd_step(model, opt, 0)
    _sgd_step(ref, ref_opt, 0)
    pool = torch.cat([ref[0].weight.detach().reshape(-1), ref[0].bias.detach()]).numpy()
    w, info = wsrbench.prox_info(pool, lr * lam, labels=True)
    got = torch.cat([model[0].weight.detach().reshape(-1), model[0].bias.detach()]).numpy()
    np.testing.assert_array_equal(got, w)
    lab = torch.cat([opt.labels_of(model[0].weight).reshape(-1), opt.labels_of(model[0].bias)])
    np.testing.assert_array_equal(lab.numpy(), info.labels)


def test_scheduler_lr_scales_each_step_and_l1_unscaled_and_rho_schedule():
    model, ref = _mlp(), _mlp()
    lam, l1 = 0.3, 0.002
    opt = wnn.WeightSharingProx(torch.optim.SGD(model.parameters(), lr=0.2),
                                [model[0].weight], lam=lam, l1=l1, l1_scaled=False,
                                rho=lambda step: 0.5 / (1 + step))
    sched = torch.optim.lr_scheduler.StepLR(opt.optimizer, step_size=1, gamma=0.5)
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.2)
    ref_sched = torch.optim.lr_scheduler.StepLR(ref_opt, step_size=1, gamma=0.5)
    for step in range(4):
        lr = ref_opt.param_groups[0]["lr"]
        assert lr == 0.2 * 0.5 ** step
        _sgd_step(model, opt, step)
        _sgd_step(ref, ref_opt, step)
        with torch.no_grad():
            ref[0].weight.copy_(torch.from_numpy(
                _ref_prox(ref[0].weight, lr * lam, l1, 0.5 / (1 + step), "tensor")))
        assert torch.equal(model[0].weight, ref[0].weight)
        sched.step()
        ref_sched.step()


def test_trick_merges_at_full_strength_and_moves_lr_of_the_way():
    model = _mlp()
    lam, lr, rho = 0.5, 0.1, 0.2
    opt = wnn.WeightSharingProx(torch.optim.SGD(model.parameters(), lr=lr), [model[0].weight],
                                lam=lam, rho=rho, trick=True, labels=True, skip_no_grad=False)
    opt.optimizer.step = lambda closure=None: None  # isolate the prox step
    w0 = model[0].weight.detach().clone().numpy()
    opt.step()
    full, info = wsrbench.prox_info(w0.reshape(-1), lam, labels=True)
    # merges: those of the unscaled lam; movement: lr (1 - rho) of the way from each centroid
    np.testing.assert_array_equal(opt.labels_of(model[0].weight).reshape(-1).numpy(), info.labels)
    lab = info.labels
    cen = np.bincount(lab, weights=w0.reshape(-1).astype(np.float64)) / np.bincount(lab)
    expect = cen[lab] + lr * (1 - rho) * (full.astype(np.float64) - cen[lab])
    got = model[0].weight.detach().numpy().reshape(-1)
    np.testing.assert_allclose(got, expect, rtol=0, atol=8 * np.finfo(np.float32).eps
                               * np.abs(w0).max())


def test_same_shape_tensors_share_one_call_and_warm_start():
    torch.manual_seed(0)
    layers = [nn.Linear(10, 10, bias=False) for _ in range(3)]
    params = [layer.weight for layer in layers]
    opt = wnn.WeightSharingProx(torch.optim.SGD(params, lr=0.1), params, lam=0.5,
                                skip_no_grad=False)
    assert len(opt._batches) == 1  # three (10, 10) tensors: rows of one prox call
    before = [p.detach().clone() for p in params]
    opt.prox_step()
    for p, b in zip(params, before):
        np.testing.assert_array_equal(p.detach().numpy(), _ref_prox(b, 0.05, 0.0, 0.0, "tensor"))
    opt.prox_step()
    assert opt._batches[0].state.hinted_rows == 3  # the second call sorted along the hint


def test_metrics_and_labels():
    model = _mlp()
    opt = wnn.WeightSharingProx(torch.optim.SGD(model.parameters(), lr=0.1),
                                [("fc1.weight", model[0].weight)], lam=3.0, l1=0.5, labels=True)
    _sgd_step(model, opt, 0)
    m = opt.metrics()["fc1.weight"]
    w = model[0].weight.detach()
    lab = opt.labels_of(model[0].weight)
    assert m["distinct"] == w.unique().numel() and m["zeros"] == int((w == 0).sum())
    assert m["clusters"] == lab.unique().numel() >= m["distinct"]  # zeroed clusters: one value
    assert m["largest_cluster"] == int(torch.bincount(lab.reshape(-1)).max())
    assert m["zeros"] > 0 and m["clusters"] < w.numel()


# ------------------------------------------------------------------------- freeze sharing

def test_freeze_then_fine_tune_keeps_ties_and_zeros_exactly():
    model = _mlp()
    opt = wnn.WeightSharingProx(torch.optim.SGD(model.parameters(), lr=0.1),
                                [model[0].weight, model[0].bias], lam=0.5, l1=0.05, labels=True)
    for step in range(3):
        _sgd_step(model, opt, step)
    labels = opt.labels_of(model[0].weight).clone()
    zeros = model[0].weight.detach() == 0
    assert zeros.any() and labels.unique().numel() < labels.numel()
    frozen = wnn.freeze_sharing(model, opt)
    assert frozen[0].numel() == labels[~zeros].unique().numel()
    adam = torch.optim.Adam(model.parameters(), lr=0.05)
    for step in range(5):
        _sgd_step(model, adam, 10 + step)
    w = model[0].weight.detach()
    assert torch.all(w[zeros] == 0)
    for g in labels[~zeros].unique():
        vals = w[(labels == g) & ~zeros]
        assert torch.all(vals == vals[0])  # exactly tied
    assert w[~zeros].unique().numel() > 1  # and it did train


# ---------------------------------------------------------------------------- penalty R(w)

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_penalty_value_and_subgradient(dtype):
    g = torch.Generator().manual_seed(3)
    w = torch.randn(5, 40, generator=g, dtype=dtype, requires_grad=True)
    r = wnn.weight_sharing_penalty(w)
    eps = float(torch.finfo(dtype).eps)
    ref = float(wsrbench.penalty(w.detach().reshape(-1).numpy().astype(np.float64)))
    assert abs(float(r.detach()) - ref) <= 4 * eps * abs(ref)
    r.backward()
    d = w.numel()
    rank = torch.argsort(torch.argsort(w.detach().reshape(-1)))
    expect = ((2 * rank - d + 1).to(torch.float64) / (d - 1)).to(dtype)
    torch.testing.assert_close(w.grad.reshape(-1), expect, rtol=0, atol=4 * eps)
    rows = wnn.weight_sharing_penalty(w.detach(), dim=1)
    np.testing.assert_allclose(rows.numpy(), wsrbench.penalty(w.detach().numpy()),
                               rtol=4 * eps, atol=0)


# ------------------------------------------------------------------------------ bad input

def test_bad_input_names_the_parameter():
    model = _mlp()
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    w = model[0].weight
    with pytest.raises(ValueError, match=r"fc1.*same tensor as.*first"):
        wnn.WeightSharingProx(sgd, [("first", w), ("fc1", w)], lam=1.0)
    with pytest.raises(ValueError, match="lam must be a finite number >= 0"):
        wnn.WeightSharingProx(sgd, [w], lam=-1.0)
    with pytest.raises(ValueError, match="scope must be one of"):
        wnn.WeightSharingProx(sgd, [w], lam=1.0, scope="rows")
    with pytest.raises(TypeError, match=r"ints.*dtype torch\.int64"):
        wnn.WeightSharingProx(sgd, [("ints", torch.zeros(3, dtype=torch.int64))], lam=1.0)
    with pytest.raises(ValueError, match=r"other.*not optimised"):
        wnn.WeightSharingProx(sgd, [("other", torch.zeros(3))], lam=1.0)
    with pytest.raises(ValueError, match=r"rho must be in \[0, 1\]"):
        wnn.WeightSharingProx(sgd, [w], lam=1.0, rho=1.5)
    opt = wnn.WeightSharingProx(sgd, [("fc1.weight", w)], lam=1.0, rho=lambda s: 0.5 + s,
                                skip_no_grad=False)
    opt.prox_step()  # step 0: rho 0.5
    with pytest.raises(ValueError, match=r"fc1.weight at step 1.*\[0, 1\], got 1.5"):
        opt.prox_step()


@pytest.mark.parametrize("device", DEVICES)
def test_training_runs_on_each_device(device):
    """CPU here; on a GPU machine the same loop with CUDA tensors (no host round trip)."""
    model = _mlp(device=device)
    opt = wnn.WeightSharingProx(torch.optim.SGD(model.parameters(), lr=0.1), [model[0].weight],
                                lam=0.5, labels=True)
    w0 = model[0].weight.detach().clone()
    x, y = _batch(0, device)
    opt.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    w_sgd = (w0 - 0.1 * model[0].weight.grad).cpu().numpy()
    opt.step()
    assert model[0].weight.device.type == device
    assert opt.labels_of(model[0].weight).device.type == device
    eps = float(np.finfo(np.float32).eps)
    np.testing.assert_allclose(model[0].weight.detach().cpu().numpy(),
                               _ref_prox(torch.from_numpy(w_sgd), 0.05, 0.0, 0.0, "tensor"),
                               rtol=0, atol=64 * eps * (np.abs(w_sgd).max() + 0.05))


def test_wrapper_copies_with_deepcopy():
    model = _mlp()
    opt = wnn.WeightSharingProx(torch.optim.SGD(model.parameters(), lr=0.1), [model[0].weight],
                                lam=0.5)
    assert copy.copy(opt).optimizer is opt.optimizer


def test_training_benchmark_suite_runs_at_tiny_size():
    """benchmarks/bench_training.py cannot rot: setup and one iteration of every mode."""
    import importlib

    bench = importlib.import_module("benchmarks.bench_training")
    cls = bench.TrainingStep
    assert cls.param_names == ["net", "prox", "device"]
    assert set(cls.params[0]) == {"784-150-10", "784-1000-1000-10"}
    for prox in cls.params[1]:
        obj = cls()
        obj.setup("tiny", prox, "cpu")
        before = obj.model[0].weight.detach().clone()
        obj.time_iteration("tiny", prox, "cpu")
        w = obj.model[0].weight.detach()
        assert not torch.equal(w, before)
        if prox != "none":  # the prox ran: lr * lam = 5e-4 merges some of the 160 weights
            assert w.unique().numel() < w.numel()


def test_overhead_benchmark_runs_at_tiny_size():
    """benchmarks/bench_training.py's ProxOverhead cannot rot: both modes run the same prox."""
    import importlib

    cls = importlib.import_module("benchmarks.bench_training").ProxOverhead
    assert cls.params == [["4000", "117600"], ["wrapper", "bare"]]
    weights = []
    for mode in cls.params[1]:
        obj = cls()
        obj.setup("tiny", mode)
        obj.time_prox_step("tiny", mode)
        weights.append(obj.layer.weight.detach().clone())
    assert torch.equal(weights[0], weights[1])


def test_readme_training_example_runs():
    """The ten lines of README "Training with weight sharing" run as printed."""
    import os
    import re

    with open(os.path.join(os.path.dirname(__file__), os.pardir, "README.md")) as f:
        readme = f.read()
    section = readme.split("## Training with weight sharing", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    opt, model = scope["opt"], scope["model"]
    w = model[0].weight  # now tied: one free value per cluster of the last step
    assert w.unique().numel() <= opt.metrics()["fc1.weight"]["clusters"] < w.numel()


# ------------------------------------------------------------ a torch.optim citizen

def _train(model, opt, sched, steps, start=0):
    for step in range(start, start + steps):
        _sgd_step(model, opt, step)
        if sched is not None:
            sched.step()


def _prox_opt(model, **kw):
    sgd = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    kw.setdefault("lam", 0.3)
    return wnn.WeightSharingProx(sgd, [("fc1.weight", model[0].weight),
                                       ("fc1.bias", model[0].bias)], **kw)


@pytest.mark.parametrize("make", [
    lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=5),
    lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda e: 1.0 / (1 + e)),
    lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.3),
], ids=["cosine", "lambda", "step"])
def test_schedulers_take_the_object_and_drive_the_prox(make):
    model, ref = _mlp(), _mlp()
    opt = _prox_opt(model)
    assert isinstance(opt, torch.optim.Optimizer)
    sched = make(opt)
    ref_opt = torch.optim.SGD(ref.parameters(), lr=0.2, momentum=0.9)
    ref_sched = make(ref_opt)
    lrs = set()
    for step in range(5):
        lr = ref_opt.param_groups[0]["lr"]
        lrs.add(lr)
        assert opt.param_groups[0]["lr"] == lr
        _sgd_step(model, opt, step)
        _sgd_step(ref, ref_opt, step)
        with torch.no_grad():
            for p in (ref[0].weight, ref[0].bias):
                p.copy_(torch.from_numpy(_ref_prox(p, lr * 0.3, 0.0, 0.0, "tensor")))
        for p, q in zip(model.parameters(), ref.parameters()):
            assert torch.equal(p, q)
        sched.step()
        ref_sched.step()
    assert len(lrs) > 1  # the schedule did change the learning rate


@pytest.mark.parametrize("through", ["wrapper", "inner"])
def test_load_state_dict_new_groups_reach_the_prox(through):
    model = _mlp()
    opt = _prox_opt(model, skip_no_grad=False)
    sd = opt.state_dict()
    sd["param_groups"][0]["lr"] = 0.05
    (opt if through == "wrapper" else opt.optimizer).load_state_dict(sd)
    assert opt.param_groups[0]["lr"] == 0.05  # the groups load_state_dict made
    opt.param_groups[0]["lr"] *= 0.5  # as a scheduler does, in the new group dicts
    w0 = model[0].weight.detach().clone()
    opt.prox_step()
    np.testing.assert_array_equal(model[0].weight.detach().numpy(),
                                  _ref_prox(w0, 0.025 * 0.3, 0.0, 0.0, "tensor"))


def test_resume_from_checkpoint_is_bit_for_bit():
    """Momentum, a cosine schedule on the wrapper and a rho schedule: 3 + 3 steps through
    torch.save / torch.load(weights_only=True) equal 6 uninterrupted steps."""
    import io

    def build():
        model = _mlp()
        opt = _prox_opt(model, l1=0.01, rho=lambda s: 0.4 / (1 + s))
        return model, opt, torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=6)

    model, opt, sched = build()
    _train(model, opt, sched, 6)
    model2, opt2, sched2 = build()
    _train(model2, opt2, sched2, 3)
    buf = io.BytesIO()
    torch.save({"model": model2.state_dict(), "opt": opt2.state_dict(),
                "sched": sched2.state_dict()}, buf)
    buf.seek(0)
    ck = torch.load(buf, weights_only=True)
    assert ck["opt"]["weight_sharing_prox"]["steps"] == 3
    model3, opt3, sched3 = build()
    model3.load_state_dict(ck["model"])
    opt3.load_state_dict(ck["opt"])
    sched3.load_state_dict(ck["sched"])
    assert opt3.steps == 3
    _train(model3, opt3, sched3, 3, start=3)
    for p, q in zip(model.parameters(), model3.parameters()):
        assert torch.equal(p, q)
    # without the prox's state the rho schedule would restart at step 0: a different run
    model4, opt4, sched4 = build()
    model4.load_state_dict(ck["model"])
    opt4.optimizer.load_state_dict(ck["opt"])
    sched4.load_state_dict(ck["sched"])
    _train(model4, opt4, sched4, 3, start=3)
    assert not torch.equal(model4[0].weight, model[0].weight)


def test_state_dict_carries_settings_and_checks_them():
    model = _mlp()
    opt = _prox_opt(model, lam=np.float32(0.25), l1=0.01, rho=0.2)
    sd = opt.state_dict()
    torch.optim.SGD(_mlp().parameters(), lr=1.0).load_state_dict(sd)  # a bare optimiser loads it
    other = _prox_opt(_mlp(), lam=1.0)
    other.load_state_dict(sd)
    g = other.groups[0]
    assert (g["lam"], g["l1"], g["rho"]) == (0.25, 0.01, 0.2)
    before = copy.deepcopy(other.optimizer.state_dict())
    wrong = _prox_opt(_mlp(), scope="row")
    with pytest.raises(ValueError, match=r"scope 'tensor'.*build it with the same params"):
        wrong.load_state_dict(sd)
    assert wrong.optimizer.state_dict()["param_groups"] == before["param_groups"]
    sched_sd = _prox_opt(_mlp(), rho=lambda s: 0.1).state_dict()
    with pytest.raises(ValueError, match="rho schedule; pass the same schedule"):
        _prox_opt(_mlp()).load_state_dict(sched_sd)
    with pytest.warns(UserWarning, match="no WeightSharingProx state"):
        _prox_opt(_mlp()).load_state_dict(opt.optimizer.state_dict())


def test_step_hooks_zero_grad_and_pickling():
    model = _mlp()
    opt = _prox_opt(model)
    calls = []
    opt.register_step_post_hook(lambda o, args, kwargs: calls.append(o.steps))
    _sgd_step(model, opt, 0)
    assert calls == [1]  # after the prox step
    assert all(p.grad is not None for p in model.parameters())
    opt.zero_grad()
    assert all(p.grad is None for p in model.parameters())
    torch.optim.lr_scheduler.StepLR(opt, step_size=1)  # patches opt.step
    twin = copy.deepcopy(opt)
    assert isinstance(twin, wnn.WeightSharingProx) and twin.steps == 1
    twin.prox_step()
    assert (twin.steps, opt.steps) == (2, 1)
    twin.optimizer.zero_grad()
    twin.step()  # the copy's own step, not the original's through the scheduler's patch
    assert (twin.steps, opt.steps) == (3, 1)
    assert "WeightSharingProx" in repr(opt) and "SGD" in repr(opt)


SCALARS = [np.float32(0.25), np.float64(0.25), torch.tensor(0.25), torch.tensor(0.25,
           dtype=torch.float64), np.array(0.25)]


@pytest.mark.parametrize("lam", SCALARS + [np.int64(2), torch.tensor(2)],
                         ids=lambda v: f"{type(v).__name__}-{getattr(v, 'dtype', '')}")
def test_scalars_of_every_kind_are_the_float(lam):
    model, ref = _mlp(), _mlp()
    opt = _prox_opt(model, lam=lam, l1=lam * 0.1, rho=lam * 0.1)
    ref_opt = _prox_opt(ref, lam=float(lam), l1=float(lam * 0.1), rho=float(lam * 0.1))
    _train(model, opt, None, 2)
    _train(ref, ref_opt, None, 2)
    for p, q in zip(model.parameters(), ref.parameters()):
        assert torch.equal(p, q)


@pytest.mark.parametrize("bad,exc,msg", [
    (torch.tensor([0.1, 0.2]), ValueError, "lam must be a scalar"),
    ("0.1", TypeError, "lam must be a real number"),
    (True, TypeError, "lam must be a real number"),
    (np.float32("nan"), ValueError, "lam must be a finite number >= 0"),
])
def test_bad_scalars_are_named(bad, exc, msg):
    model = _mlp()
    with pytest.raises(exc, match=msg):
        _prox_opt(model, lam=bad)


def test_modules_and_parameter_iterators_are_taken():
    model = _mlp()
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    by_module = wnn.WeightSharingProx(sgd, model[0], lam=0.5)
    assert [p.name for p in by_module.params] == ["weight", "bias"]
    named = wnn.WeightSharingProx(sgd, model.named_parameters(), lam=0.5)
    assert [p.name for p in named.params] == ["0.weight", "0.bias", "2.weight", "2.bias"]
    plain = wnn.WeightSharingProx(sgd, model.parameters(), lam=0.5)
    assert len(plain.params) == 4
    grouped = wnn.WeightSharingProx(sgd, [{"params": model[0], "lam": np.float32(2)},
                                          {"params": model[2].parameters()}], lam=0.5)
    assert [g["lam"] for g in grouped.groups] == [2.0, 0.5]


def test_a_bad_schedule_touches_nothing():
    """Group 2's schedule fails at step 0: neither the optimiser step nor group 1's prox ran."""
    model = _mlp()
    sgd = torch.optim.SGD(model.parameters(), lr=0.1)
    opt = wnn.WeightSharingProx(sgd, [{"params": [model[0].weight]},
                                      {"params": [model[2].weight], "rho": lambda s: 2.0}],
                                lam=1.0)
    x, y = _batch(0)
    nn.functional.cross_entropy(model(x), y).backward()
    before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(ValueError, match=r"rho schedule.*2.weight|group 1 param 0.*step 0"):
        opt.step()
    for p, b in zip(model.parameters(), before):
        assert torch.equal(p, b)
    assert opt.steps == 0


def test_parameters_without_grad_are_skipped_unless_asked():
    model = _mlp()
    for skip in (True, False):
        m = copy.deepcopy(model)
        sgd = torch.optim.SGD(m.parameters(), lr=0.1)
        opt = wnn.WeightSharingProx(sgd, [m[0].weight, m[2].weight], lam=1.0,
                                    skip_no_grad=skip)
        m[2].weight.requires_grad_(False)  # no grad reaches it: the optimiser skips it
        x, y = _batch(0)
        nn.functional.cross_entropy(m(x), y).backward()
        w2 = m[2].weight.detach().clone()
        opt.step()
        assert not torch.equal(m[0].weight, model[0].weight)
        if skip:
            assert torch.equal(m[2].weight, w2)
        else:
            np.testing.assert_array_equal(m[2].weight.detach().numpy(),
                                          _ref_prox(w2, 0.1, 0.0, 0.0, "tensor"))


@pytest.mark.parametrize("scope", ["tensor", "row", "joint"])
@pytest.mark.parametrize("shape", [(0,), (0, 5), (5, 0)])
def test_zero_size_parameters_in_every_scope(scope, shape):
    model = _mlp()
    empty = nn.Parameter(torch.zeros(shape))
    sgd = torch.optim.SGD(list(model.parameters()) + [empty], lr=0.1)
    opt = wnn.WeightSharingProx(sgd, [{"params": [("empty", empty), ("w", model[0].weight)],
                                       "scope": scope}], lam=1.0, labels=True,
                                skip_no_grad=False)
    w0 = model[0].weight.detach().clone()
    opt.step()
    assert empty.shape == shape
    assert opt.labels_of(empty).shape == shape
    assert opt.metrics()["empty"] == {"distinct": 0, "zeros": 0, "clusters": 0,
                                      "largest_cluster": 0, "size": 0}
    np.testing.assert_array_equal(model[0].weight.detach().numpy(),
                                  _ref_prox(w0, 0.1, 0.0, 0.0, "tensor" if scope == "joint"
                                            else scope))


def test_metrics_before_the_first_step_count_equal_values():
    model = _mlp()
    with torch.no_grad():
        model[0].weight[:, :6] = 0.5  # 6 equal weights in every row
    opt = _prox_opt(model, scope="row")
    w = model[0].weight.detach()
    m = opt.metrics()["fc1.weight"]
    assert m["clusters"] == sum(r.unique().numel() for r in w) == 9 * 7
    assert m["distinct"] == w.unique().numel() == 9 * 6 + 1 < m["clusters"]
    assert m["largest_cluster"] == 9 * 6


def test_frozen_model_refuses_the_old_prox_and_bakes_to_a_plain_model():
    model = _mlp()
    opt = _prox_opt(model, lam=0.5, l1=0.05, labels=True)
    _train(model, opt, None, 3)
    wnn.freeze_sharing(model, opt)
    assert any(".parametrizations.weight.original" in k for k in model.state_dict())
    with pytest.raises(RuntimeError, match="freeze_sharing"):
        _sgd_step(model, opt, 3)
    with pytest.raises(RuntimeError, match="freeze_sharing"):
        opt.prox_step()
    _train(model, torch.optim.Adam(model.parameters(), lr=0.01), None, 2, start=4)
    x, _ = _batch(9)
    out = model(x)
    tied = model[0].weight.detach().clone()
    wnn.bake_sharing(model)
    plain = _mlp(seed=5)
    plain.load_state_dict(model.state_dict(), strict=True)
    assert torch.equal(plain[0].weight, tied)
    assert torch.equal(plain(x), out)


def test_a_parametrised_parameter_is_refused_by_name():
    """A shape change by any parametrisation (not only freeze_sharing's) stops the prox."""
    model = _mlp()
    opt = _prox_opt(model)
    wnn.tie_parameter(model[0], "bias", np.arange(9) // 3)
    with pytest.raises(RuntimeError, match=r"fc1.bias changed shape from \(9,\) to \(3,\)"):
        opt.prox_step()

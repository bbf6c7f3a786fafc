"""``wsrbench reproduce paper-torus``: its pieces, and the --quick runs end to end."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sklearn")

from wsrbench import cli  # noqa: E402
from wsrbench.nn import reproduce  # noqa: E402

EPS64 = np.finfo(np.float64).eps
EPS32 = np.finfo(np.float32).eps


def conv_rows(shape, channels, rng):
    """The rows of a circular 3-wide convolution written as an FC layer (units x positions)."""
    P = int(np.prod(shape))
    rows = []
    for _ in range(channels):
        k = np.zeros(shape)
        k[tuple(slice(0, 3) for _ in shape)] = rng.standard_normal((3,) * len(shape))
        for s in np.ndindex(*shape):
            rows.append(np.roll(k, s, axis=tuple(range(len(shape)))).ravel())
    return np.array(rows).reshape(-1, P)


@pytest.mark.parametrize("shape", [(8, 8), (40,)])
def test_conv_scores_recognise_a_convolution_and_its_null_does_not(shape):
    rng = np.random.default_rng(0)
    W = conv_rows(shape, 3, rng)
    P = W.shape[1]
    s = reproduce.conv_scores(W, shape)
    # exact shifted copies: cosines of unit vectors, rounding of P-term dot products only
    assert s["shift_match"] == pytest.approx(1.0, abs=4 * P * EPS64)
    assert s["locality"] == pytest.approx(1.0, abs=4 * P * EPS64)
    null = reproduce.conv_scores_null(W, shape)
    assert null["shift_match"] < 1 - 0.1 and null["locality"] < 1 - 0.1
    noise = rng.standard_normal(W.shape)  # unstructured rows: score and null agree
    a, b = reproduce.conv_scores(noise, shape), reproduce.conv_scores_null(noise, shape)
    for k in a:
        assert abs(a[k] - b[k]) < 0.05 * a[k]


def test_rolled_examples_are_cyclic_shifts():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((5, 4, 6))
    R = reproduce.roll_examples(X, np.random.default_rng(2))
    for x, r in zip(X, R):
        assert any(np.array_equal(np.roll(x, (a, b), (0, 1)), r)
                   for a in range(4) for b in range(6))
    assert np.array_equal(X, np.random.default_rng(1).standard_normal((5, 4, 6)))  # not mutated


def test_digits_splits_are_disjoint_stratified_and_standardised():
    sp = reproduce.load_data("digits")
    sizes = {k: len(sp[k][1]) for k in ("train", "val", "test")}
    assert sum(sizes.values()) == 1797 and sp["shape"] == (8, 8)
    for k in sizes:  # 60 / 20 / 20 of every class, up to rounding per class
        counts = np.bincount(sp[k][1], minlength=10)
        share = {"train": 0.6, "val": 0.2, "test": 0.2}[k]
        full = np.bincount(np.concatenate([sp[j][1] for j in sizes]), minlength=10)
        assert np.all(np.abs(counts - share * full) <= 1)
    X = sp["train"][0]
    assert X.dtype == np.float32 and X.shape[1] == 64
    assert abs(X.mean()) < 64 * EPS32 * X.size ** 0.5 and abs(X.std() - 1) < 1e3 * EPS32
    rows = {r.tobytes() for k in sizes for r in sp[k][0]}
    assert len(rows) >= 1797 - 5  # a handful of identical digits at most; no split copied


def test_shuffled_positions_are_one_permutation_of_every_split():
    sp = reproduce.load_data("digits")
    sh, perm = reproduce.shuffle_positions(sp)
    assert sorted(perm) == list(range(64)) and not np.array_equal(perm, np.arange(64))
    for k in ("train", "val", "test"):
        assert np.array_equal(sh[k][0], sp[k][0][:, perm]) and np.array_equal(sh[k][1], sp[k][1])


@pytest.mark.parametrize("kind", ["fc", "cnn"])
@pytest.mark.parametrize("shape", [(8, 8), (40,)])
def test_models_give_ten_logits(kind, shape):
    m = reproduce.build_model(kind, shape, 2, 3)
    assert m(torch.zeros(5, int(np.prod(shape)))).shape == (5, 10)


def _step_with_zero_grad(regularizer, s):
    cfg = reproduce.make_config("digits")
    torch.manual_seed(0)
    m = reproduce.build_model("fc", (8, 8), 2, 3)
    opt, _ = reproduce.make_optimizer(m, regularizer, s, cfg)
    before = {n: p.detach().clone() for n, p in m.named_parameters()}
    for p in m.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    return cfg, before, dict(m.named_parameters())


def test_l1_is_a_soft_threshold_of_lr_s_on_fc1_and_lr_s_over_ten_on_fc2():
    s = 0.05
    cfg, before, after = _step_with_zero_grad("l1", s)
    for name, t in (("fc1.weight", s), ("fc1.bias", s), ("fc2.weight", s / 10)):
        w = before[name].numpy().astype(np.float64)
        want = np.sign(w) * np.maximum(np.abs(w) - cfg["lr"] * t, 0)
        got = after[name].detach().numpy()
        assert np.max(np.abs(got - want)) <= 4 * EPS32 * np.abs(w).max()
    assert torch.equal(after["fc3.weight"], before["fc3.weight"])


def test_weight_decay_and_prox_act_on_fc1_and_fc2_only_in_the_ten_to_one_ratio():
    s = 0.05
    cfg, before, after = _step_with_zero_grad("weight_decay", s)
    for name, t in (("fc1.weight", s), ("fc2.bias", s / 10), ("fc3.weight", 0.0)):
        want = before[name] * (1 - cfg["lr"] * t)
        assert torch.allclose(after[name], want, rtol=4 * EPS32, atol=0)
    cfg, before, after = _step_with_zero_grad("wsr", s)
    for name, t in (("fc1.weight", s), ("fc2.weight", s / 10)):
        w0, w1 = before[name], after[name].detach()
        # the prox keeps the mean and pulls the extremes in by at most lr * strength
        assert abs(float(w1.mean() - w0.mean())) <= 8 * EPS32 * float(w0.abs().max())
        scale = float(w0.abs().max())  # float32 rounding of values of this size
        assert float(w0.max() - w1.max()) <= cfg["lr"] * t + 4 * EPS32 * scale
        assert float(w0.max() - w1.max()) > 0
    assert torch.equal(after["bn1.weight"], before["bn1.weight"])


def test_fc_with_the_prox_is_equivariant_to_a_permutation_of_the_positions():
    """Why FC nets run on the torus only: on shuffled positions, from the correspondingly permuted
    initialisation, training gives fc1 with permuted columns (float64, a few steps)."""
    sp = reproduce.load_data("digits")
    sh, perm = reproduce.shuffle_positions(sp)
    cfg = reproduce.make_config("digits")
    results = []
    for splits, cols in ((sp, np.arange(64)), (sh, perm)):
        torch.manual_seed(0)
        m = reproduce.build_model("fc", (8, 8), 2, 3).double()
        with torch.no_grad():
            m.fc1.weight.copy_(m.fc1.weight[:, torch.from_numpy(cols)])
        opt, _ = reproduce.make_optimizer(m, "wsr", 0.05, cfg)
        X, y = torch.from_numpy(splits["train"][0]).double(), torch.from_numpy(splits["train"][1])
        torch.manual_seed(1)  # the same dropout masks in both runs
        for b in range(0, 256, 64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(m(X[b:b + 64]), y[b:b + 64]).backward()
            opt.step()
        results.append(m.fc1.weight.detach().numpy())
    orig, shuffled = results
    # summation order differs between the two runs: a few ulps per step, amplified through
    # BatchNorm's normalisation (scale ~ 1 / batch std): 1e6 ulps of headroom, still far below
    # any structural difference (weights ~ 0.1)
    assert np.max(np.abs(shuffled - orig[:, perm])) < 1e6 * EPS64
    assert np.max(np.abs(shuffled - orig)) > 1e-3  # the permutation is not trivial


def test_tuning_widens_the_grid_while_the_best_is_on_an_edge(monkeypatch):
    peak = 1e-6  # validation accuracy peaks below the grid: the grid must grow downwards

    def fake_train(kind, splits, regularizer, strength, cfg, seed):
        return object(), [1.0 - abs(np.log10(strength) - np.log10(peak))]

    monkeypatch.setattr(reproduce, "train", fake_train)
    cfg = reproduce.make_config("digits")
    base = {"model": "fc", "setting": "original"}
    best, runs, recs = reproduce.tune("fc", None, "l1", cfg, lambda *a: None, base)
    grid = reproduce.GRIDS["l1"]
    assert best == pytest.approx(grid[0] / 10 ** cfg["max_widen"])  # widened, then capped
    assert len(recs) == len(grid) + cfg["max_widen"] and list(runs) == [best]
    assert all("test_accuracy" not in r for r in recs)  # tuning never reads the test split
    peak = 1e-4  # inside the grid: no widening
    best, runs, recs = reproduce.tune("fc", None, "l1", cfg, lambda *a: None, base)
    assert best == pytest.approx(1e-4) and len(recs) == len(grid)


def test_arm_protocol_fixes_the_strength_before_any_other_seed_whatever_the_order():
    """Results come back from workers in any order: the seeds of the chosen strength are handed
    out only once every grid run (and the widening wave at an edge) has come back."""
    cfg = reproduce.make_config("digits", seeds=3)
    val = {1e-5: 0.3, 1e-4: 0.5, 1e-3: 0.4}  # l1's grid is 1e-5..1e-3: 1e-4 wins, no widening
    arm = reproduce.Arm(cfg, None, "fc", "original", "l1")
    wave = arm.next_tasks()
    assert sorted(t["strength"] for t in wave) == list(cfg["grids"]["l1"])
    assert {t["role"] for t in wave} == {"tuning"} and {t["seed"] for t in wave} == {0}
    for t in reversed(wave):  # out of order, and nothing new while the wave is incomplete
        assert arm.chosen is None
        arm.take(t, {"curve": [val[t["strength"]]]})
        if t is not wave[0]:
            assert arm.next_tasks() == []
    finals = arm.next_tasks()
    assert arm.chosen == pytest.approx(1e-4)
    assert [(t["strength"], t["seed"], t["role"]) for t in finals] == \
        [(arm.chosen, 1, "final"), (arm.chosen, 2, "final")]
    assert not arm.done and arm.finals[0]["curve"] == [0.5]  # seed 0 is the tuning run
    for t in finals:
        arm.take(t, {"curve": [0.0]})
    assert arm.done and arm.next_tasks() == []
    # the best on an edge: one more strength beyond it, as a second wave, before any seed
    arm = reproduce.Arm(cfg, None, "fc", "original", "wsr")
    wave = arm.next_tasks()
    for t in wave:
        arm.take(t, {"curve": [t["strength"]]})  # the largest strength wins
    second = arm.next_tasks()
    top = max(cfg["grids"]["wsr"])
    assert [(t["strength"], t["role"]) for t in second] == [(pytest.approx(top * 10), "tuning")]
    arm.take(second[0], {"curve": [0.0]})
    assert [t["seed"] for t in arm.next_tasks()] == [1, 2] and arm.chosen == top


def test_bad_options_are_clear_errors():
    with pytest.raises(ValueError, match="--data must be one of"):
        reproduce.make_config("mnist")
    with pytest.raises(ValueError, match="--seeds must be >= 1"):
        reproduce.make_config("digits", seeds=0)
    with pytest.raises(ValueError, match="--jobs must be an integer >= 1"):
        reproduce.make_config("digits", jobs=0)
    with pytest.raises(ValueError, match=r"--arms: unknown \['fc-dropout'\]"):
        reproduce.make_config("digits", arm_names=["fc-none", "fc-dropout"])
    m = reproduce.build_model("fc", (8, 8), 2, 3)
    with pytest.raises(ValueError, match="regularizer must be one of"):
        reproduce.make_optimizer(m, "dropout", 0.1, reproduce.make_config("digits"))


def _check_quick_run(out, data):
    res = json.loads((out / "results.json").read_text())
    for name in ("results.md", "results.json", "filters.png", "curves.png"):
        assert os.path.getsize(out / name) > 0
    assert (out / "results.md").read_text().startswith("QUICK SMOKE RUN")
    finals = [r for r in res["records"] if r["role"] == "final"]
    arms = {(r["model"], r["setting"], r["regularizer"]) for r in finals}
    assert arms == set(reproduce.arms(res["config"]))
    for r in res["records"]:
        assert r["data"] == data and r["selected_on"] == "validation"
        assert ("test_accuracy" in r) == (r["role"] == "final")
    for r in finals:
        assert 0 <= r["test_accuracy"] <= 1 and 0 < r["distinct_weights"]
        assert len(r["curve"]) == r["epochs"] == reproduce.epochs_for(res["config"], None)
    return res


@pytest.mark.slow
def test_quick_digits_run_end_to_end(tmp_path):
    out = tmp_path / "rq"
    # Two epochs: every arm, file and record of a quick run, at a third of its cost; two worker
    # processes, whose runs are the ones this process would train (the same seeds, bit for bit)
    assert cli.main(["reproduce", "paper-torus", "--data", "digits", "--quick", "--epochs", "2",
                     "--jobs", "2", "--out", str(out)]) == 0
    res = _check_quick_run(out, "digits")
    assert res["config"]["jobs"] == 2
    rec = next(r for r in res["records"] if r["role"] == "final" and r["regularizer"] == "l1")
    task = {"data": "digits", "n_train": None, "kind": "fc", "setting": "original",
            "regularizer": "l1", "strength": rec["strength"], "seed": rec["seed"],
            "role": "final", "epochs": rec["epochs"]}
    assert reproduce.run_task(task, res["config"])["curve"] == rec["curve"]


@pytest.mark.slow
def test_quick_mnist1d_run_end_to_end(tmp_path):
    pytest.importorskip("mnist1d")
    out = tmp_path / "rq"
    # the generated data and a prox and a CNN arm end to end (every arm: the digits run)
    assert cli.main(["reproduce", "paper-torus", "--data", "mnist1d", "--quick", "--epochs", "1",
                     "--train-sizes", "500", "--arms", "fc-wsr,cnn-shuffled",
                     "--out", str(out)]) == 0
    res = _check_quick_run(out, "mnist1d")
    assert {r["n_train"] for r in res["records"]} == {500}

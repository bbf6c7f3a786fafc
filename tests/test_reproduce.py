"""``wsrbench reproduce shuffled-digits``: its pieces, and the --quick run end to end."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

from wsrbench import cli
from wsrbench.nn import reproduce


def test_conv_likeness_separates_smooth_from_random_filters():
    side, units = 16, 40
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((units, side * side))
    near, far = reproduce.conv_likeness(noise, side, cyclic=True)
    # iid weights: both correlations are sample correlations of independent pairs, whose standard
    # deviation is about 1/sqrt(pairs) (>= units * 2 side^2 near pairs): 5 sigma bounds
    assert abs(near) < 5 / np.sqrt(units * side * side) and abs(far) < 5 / np.sqrt(units * side)
    ys, xs = np.mgrid[0:side, 0:side]
    bumps = []
    for _ in range(units):  # smooth, local filters: Gaussian bumps at random centres (cyclic)
        cy, cx = rng.integers(0, side, 2)
        dy = np.minimum(abs(ys - cy), side - abs(ys - cy))
        dx = np.minimum(abs(xs - cx), side - abs(xs - cx))
        bumps.append(np.exp(-(dy ** 2 + dx ** 2) / 4.0).ravel())
    near, far = reproduce.conv_likeness(np.array(bumps), side, cyclic=True)
    assert near > 0.5 and near - far > 0.5


def test_unshuffle_inverts_the_permutation():
    rng = np.random.default_rng(1)
    image_order = rng.standard_normal((3, 64))
    perm = rng.permutation(64)
    assert np.array_equal(reproduce.unshuffle(image_order[:, perm], perm), image_order)


def test_torus_images_are_cyclic_shifts_of_the_digits():
    cfg = reproduce._config(True, None)
    Xtr, _, Xte, _, side, perm = reproduce.load_data("torus", cfg)
    assert side == reproduce.TORUS and np.array_equal(perm, np.arange(side * side))
    n_test = round(cfg["test_fraction"] * 1797)  # digits has 1797 images
    assert len(Xte) == n_test and len(Xtr) == cfg["torus_copies"] * (1797 - n_test)
    from sklearn.datasets import load_digits

    sums = set(np.round((load_digits().images / 16.0).sum(axis=(1, 2)), 4))
    img = Xtr[0].reshape(side, side)
    assert round(float(img.sum()), 4) in sums  # the whole digit is on the torus
    fits = [np.count_nonzero(np.roll(img, (-a, -b), (0, 1))[8:, :]) +
            np.count_nonzero(np.roll(img, (-a, -b), (0, 1))[:, 8:])
            for a in range(side) for b in range(side)]
    assert min(fits) == 0  # some cyclic shift puts it back into the 8x8 corner
    Xs = reproduce.load_data("torus-shuffled", cfg)
    assert np.array_equal(reproduce.unshuffle(Xs[0], Xs[5]), Xtr)  # same data, pixels permuted


def test_bad_options_are_clear_errors():
    class A:
        seeds, epochs, hidden, lam, settings = 1, 1, 1, -1.0, None
    with pytest.raises(ValueError, match="--lam must be >= 0"):
        reproduce._config(True, A)
    A.lam, A.settings = 0.1, "original,mnist"
    with pytest.raises(ValueError, match=r"--settings: unknown \['mnist'\]"):
        reproduce._config(True, A)


@pytest.mark.slow
def test_quick_run_writes_table_figure_and_records(tmp_path):
    out = tmp_path / "rq"
    assert cli.main(["reproduce", "shuffled-digits", "--quick", "--out", str(out)]) == 0
    for name in ("results.md", "results.csv", "results.json", "filters.png"):
        assert os.path.getsize(out / name) > 0
    res = json.loads((out / "results.json").read_text())
    cells = {(r["setting"], r["model"]) for r in res["summary"]}
    assert cells == {(s, m) for s in reproduce.SETTINGS for m in reproduce.MODELS}
    acc = {(r["setting"], r["model"]): r["acc_mean"] for r in res["summary"]}
    # the unshuffled digits are easy: a model that learns at all is far above chance (10%)
    assert acc[("original", "fc")] > 0.8 and acc[("original", "cnn")] > 0.8
    for r in res["summary"]:
        assert 0 < r["distinct"] <= r["weights"] and r["ms_per_step"] > 0
        assert (r["prox_ms_per_step"] > 0) == (r["model"] == "fc+prox")
    table = (out / "results.md").read_text()
    assert table.count("\n| ") == 2 + len(cells)  # header, separator, one row per cell

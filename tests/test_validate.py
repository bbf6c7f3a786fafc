"""wsrbench validate: passes a correct prox, rejects deliberately broken ones of several kinds."""
from __future__ import annotations

import numpy as np
import pytest

from wsrbench.bench import cases, properties, validate

from . import _candidates as C

MAX_D = 100  # the small sizes reach every family, dtype and lam; broken ones fail far earlier


@pytest.mark.slow
def test_correct_candidate_passes_the_whole_battery():
    res = validate.run_battery(C.correct, max_d=MAX_D)
    assert res.failures == []
    # every family, both dtypes, lam = 0 and collapsing lams were exercised
    assert res.passed > 1000


@pytest.mark.parametrize("name, checks", [
    ("wrong_shift_sign", {"certificate", "reference"}),
    ("one_round_early", {"certificate", "reference"}),
    ("ignores_ties", {"certificate", "reference", "ties"}),
    ("float64_only", {"certificate", "reference"}),
    ("off_by_tiny", {"certificate", "reference"}),
    ("mutates_input", {"mutation"}),
    ("wrong_dtype", {"dtype"}),
])
@pytest.mark.slow
def test_broken_candidates_are_rejected(name, checks):
    res = validate.run_battery(getattr(C, name), max_d=MAX_D)
    assert res.failures, f"{name} passed the battery"
    case, failure = res.failures[0]
    assert failure.check in checks, (case.describe(), failure)
    if name == "float64_only":
        assert case.dtype == "float32"  # it is right for float64
    if name == "ignores_ties":  # only inputs with exact ties expose it
        x, _ = __import__("wsrbench").cases.make(case.family, case.d, seed=case.seed,
                                                 dtype=np.dtype(case.dtype))
        assert np.unique(x).size < x.size


def test_failure_names_a_reproducible_case():
    res = validate.run_battery(C.wrong_shift_sign, max_d=MAX_D)
    case, failure = res.failures[0]
    ns = {"np": np, "wsrbench": __import__("wsrbench")}
    exec(case.reproduce(), ns)
    w = C.wrong_shift_sign(ns["x"], ns["lam"])
    assert not __import__("wsrbench").certify(ns["x"], w, ns["lam"]).ok


def test_structure_check_rejects_a_split_cluster():
    x = np.array([0.0, 1.0, 2.0, 3.0])
    lam = 10.0  # collapses to the mean 1.5
    ref = C.correct(x, lam)
    w = ref.copy()
    w[0] = np.nextafter(w[0], 2.0)  # one ulp: within value tolerance, but splits the cluster
    tol, _, _ = validate._tol(x, ref, 4)
    with pytest.raises(properties.CheckFailure) as exc:
        properties.check_structure(x, w, ref, lam, tol)
    assert exc.value.check == "structure"


def test_ties_check_rejects_unequal_outputs_for_equal_inputs():
    x = np.array([1.0, 1.0, 5.0])
    ref = C.correct(x, 0.0)
    w = ref.copy()
    w[1] = np.nextafter(w[1], 0.0)
    with pytest.raises(properties.CheckFailure) as exc:
        properties.check_structure(x, w, ref, 0.0, 1e-12)
    assert exc.value.check == "ties"


def test_perturbation_detects_a_non_minimiser():
    x, lam = np.array([0.0, 1.0, 3.0]), 0.5
    w = C.correct(x, lam) + np.array([0.0, 1e-3, 0.0])
    with pytest.raises(properties.CheckFailure) as exc:
        properties.check_perturbation(x, w, lam, np.random.default_rng(0), 6.0, 2.2e-16)
    assert exc.value.check == "perturbation"


def test_load_candidate_from_file_and_errors(tmp_path):
    f = tmp_path / "cand.py"
    f.write_text("import wsrbench\ndef fast(x, lam):\n    return wsrbench.prox(x, lam)\n")
    fn = validate.load_candidate(f"{f}:fast")
    assert fn(np.array([1.0, 2.0]), 0.0).tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="MODULE:FUNCTION"):
        validate.load_candidate("no_colon")
    with pytest.raises(ValueError, match="no callable"):
        validate.load_candidate(f"{f}:missing")
    with pytest.raises(FileNotFoundError):
        validate.load_candidate(f"{tmp_path}/nope.py:f")


def test_battery_covers_sizes_lams_dtypes_and_families():
    seen = list(validate.battery(300))
    ds = {c.d for c, _ in seen}
    assert {1, 2, 3, 257, 300} <= ds and max(ds) == 300
    assert {c.dtype for c, _ in seen} == {"float32", "float64"}
    assert {c.lam_name for c, _ in seen} >= {"zero", "family", "collapse", "beyond collapse"}
    assert {c.family for c, _ in seen} == set(validate.all_families())


# ------------------------------------------------------------------ graded verdicts (docs/design.md#graded-verdicts-in-wsrbench-validate)

@pytest.mark.slow
def test_scipy_isotonic_is_exact_to_rounding():
    """SciPy's isotonic regression: every value right, ties a few ulps apart: EXACT TO ROUNDING,
    with the spread reported, never WRONG."""
    res = validate.run_battery(C.scipy_isotonic, max_d=MAX_D, families=cases.names())
    assert res.failures == [], res.failures[:1]
    assert res.grade() == validate.ROUNDING
    checks = {g.check for _, g in res.findings}
    assert "ties" in checks
    # within the value tolerance; the largest spread is a handful of ulps
    assert 0 < max(g.ulps for _, g in res.findings) <= 16


@pytest.mark.slow
def test_exit_status_by_grade(tmp_path):
    from wsrbench.cli import main

    cand = C.__file__ + ":scipy_isotonic"
    args = ["validate", cand, "--no-timing", "--max-d", "64", "--families", "worst_pava"]
    assert main(args) == 0  # EXACT TO ROUNDING passes by default
    assert main(args + ["--strict"]) == 1
    assert main(["validate", C.__file__ + ":correct", "--no-timing", "--max-d", "16",
                 "--strict"]) == 0  # EXACT passes even with --strict
    assert main(["validate", C.__file__ + ":wrong_shift_sign", "--no-timing", "--max-d",
                 "16"]) == 1


def test_float32_arithmetic_is_diagnosed_and_float32_still_reported():
    res = validate.run_battery(C.float32_shifts, max_d=MAX_D,
                               families=["gaussian", "quantized", "worst_pava"])
    first64 = next(f for c, f in res.failures if c.dtype == "float64")
    assert "consistent with float32 arithmetic" in first64.diagnosis, first64.diagnosis
    # the float64 failure does not hide float32: its cases ran and were tallied
    assert sum(n for (dt, _, _), n in res.tally.items() if dt == "float32") > 50
    assert "float64" in res.stopped


def test_dtype_option_and_tally_by_dtype_family_check(capsys):
    from wsrbench.cli import main

    status = main(["validate", C.__file__ + ":float32_shifts", "--no-timing", "--max-d", "33",
                   "--dtype", "float64", "--keep-going", "--families", "gaussian,quantized"])
    out = capsys.readouterr().out
    assert status == 1
    assert "float32" not in out.split("tally")[1]
    assert "float64  gaussian" in out and "diagnosis: precision lost" in out
    res = validate.run_battery(C.float32_shifts, max_d=33, dtypes=("float64",), keep_going=True,
                               families=["gaussian", "quantized"])
    assert {k[0] for k in res.tally} == {"float64"}
    assert {k[1] for k in res.tally} == {"gaussian", "quantized"}
    assert sum(res.tally.values()) == res.passed + len(res.failures)


@pytest.mark.slow
def test_rounding_level_tie_spread_is_exact_to_rounding_in_both_dtypes():
    """A 1-ulp spread of equal inputs: the perturbation check allows for it (the whole-cluster
    moves of a split cluster go downhill by at most spread x the gradient)."""
    tied = ["quantized", "wide_binades"]  # exact ties, at unit scale and over many binades
    for dtype in ("float64", "float32"):
        res = validate.run_battery(C.tie_spread_1ulp, max_d=64, dtypes=(dtype,), families=tied)
        assert res.grade() == validate.ROUNDING, (dtype, res.failures[:1])
        assert any(f.check == "ties" for _, f in res.findings)


def test_a_split_cluster_is_diagnosed_as_structural_not_precision():
    res = validate.run_battery(C.splits_one_cluster, max_d=1000, dtypes=("float64",),
                               families=["quantized"])
    assert res.grade() == validate.WRONG
    case, failure = res.failures[0]
    assert "structural" in failure.diagnosis and "split" in failure.diagnosis, failure.diagnosis
    assert "consistent with" not in failure.diagnosis


# ------------------------------------------------------------------ what the candidate offers

SMALL = dict(max_d=5, families=["quantized"], dtypes=("float64",))


def test_candidate_options_are_read_from_the_signature():
    assert validate.candidate_options(C.correct) == {"l1": False, "rho": False}
    assert validate.candidate_options(C.with_l1_rho) == {"l1": True, "rho": True}
    assert validate.candidate_options(lambda x, lam, *, l1=0.0: x) == {"l1": True, "rho": False}
    assert validate.candidate_options(lambda x, lam, **kw: x) == {"l1": False, "rho": False}


def test_l1_rho_are_exercised_and_ignoring_them_is_wrong():
    good = validate.run_battery(C.with_l1_rho, **SMALL)
    assert good.grade() == validate.EXACT, good.failures[:1]
    assert good.exercised == ("l1", "rho")
    assert any(c.l1 > 0 for c, _ in validate.option_battery(5, l1=True, rho=False))
    bad = validate.run_battery(C.ignores_l1_rho, **SMALL)
    assert bad.grade() == validate.WRONG
    case, failure = bad.failures[0]
    assert case.l1 > 0 or case.rho > 0  # its (x, lam) answers are the reference's
    assert failure.diagnosis.startswith("ignores "), failure.diagnosis


def test_rows_are_checked_row_by_row_and_mixing_them_is_wrong():
    good = validate.run_battery(C.rows_correct, rows=True, **SMALL)
    assert good.grade() == validate.EXACT, good.failures[:1]
    assert any(c.rows > 1 for c, _ in validate.rows_battery(5))
    X = validate.row_batch(5, dtype=np.float32)
    assert X.dtype == np.float32 and np.all(np.isfinite(X))
    # rows differ in scale: their max |x| spans several powers of two
    assert np.ptp(np.log2(np.abs(X).max(axis=1) + 1e-300)) > 8
    bad = validate.run_battery(C.rows_mixed, rows=True, **SMALL)
    assert bad.grade() == validate.WRONG
    case, failure = bad.failures[0]
    assert case.rows > 1 and "rows mixed" in failure.diagnosis, failure.diagnosis


def test_torch_tensors_in_and_out():
    pytest.importorskip("torch", reason="--array torch needs PyTorch")
    good = validate.run_battery(C.torch_correct, array="torch", **SMALL)
    assert good.grade() == validate.EXACT, good.failures[:1]
    bad = validate.run_battery(C.torch_returns_numpy, array="torch", **SMALL)
    assert bad.failures[0][1].check == "type"
    with pytest.raises(ValueError, match="array"):
        validate.run_battery(C.correct, array="jax", **SMALL)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_split_run_of_equal_inputs_is_named_structural(dtype):
    res = validate.run_battery(C.splits_tie_runs, max_d=8, families=["quantized"],
                               dtypes=(dtype,))
    assert res.grade() == validate.WRONG
    failure = res.failures[0][1]
    assert "structural: a run of equal inputs" in failure.diagnosis, failure.diagnosis


def test_battery_has_sub_resolution_lams_and_wide_rows():
    seen = list(validate.battery(17, families=["quantized", *validate.WIDE_FAMILIES]))
    names = {c.lam_name for c, _ in seen}
    assert {"zero", "below resolution", "subnormal"} <= names
    for c, x in seen:
        if c.lam_name == "below resolution":  # under the resolution of the largest entries
            assert 0 < c.lam < np.spacing(np.max(np.abs(x)))
    wide = [x for c, x in seen if c.family == "wide_outlier" and c.d == 17]
    big = np.sort(np.abs(wide[0].astype(np.float64)))
    assert big[-1] / big[-2] >= 0.5 / np.finfo(np.float64).eps  # one outlier ~1/eps away
    x = validate.wide_row("wide_binades", 64, dtype=np.float32)
    assert np.ptp(np.log2(np.abs(x))) > 64  # many binades, and exact ties
    assert np.unique(x).size < x.size


def _library_algorithms():
    from wsrbench.core import registry

    return [pytest.param(b.name, a, id=f"{b.name}-{a}",
                         marks=[] if b.available else [pytest.mark.skip(reason=b.reason)])
            for b in registry.backends() if b.name in ("numpy", "numba") for a in b.algorithms]


@pytest.mark.parametrize("backend, algorithm", _library_algorithms())
@pytest.mark.slow
def test_library_algorithms_pass_ties_and_wide_rows(backend, algorithm):
    """The battery's tie and wide-row cases (lam = 0, below the resolution of x, subnormal):
    every registered CPU algorithm grades EXACT (or EXACT TO ROUNDING)."""
    import wsrbench

    def fn(x, lam):
        return wsrbench.prox(x, lam, backend=backend, algorithm=algorithm)

    rng = np.random.default_rng(0)
    n = 0
    for case, x in validate.battery(17, families=["quantized", *validate.WIDE_FAMILIES]):
        if case.d in (7, 17) and case.lam_name in ("zero", "below resolution", "subnormal"):
            assert validate.check_case(fn, case, x, rng) == [], case.describe()  # EXACT
            n += 1
    assert n >= 30


def test_shifts_summed_with_x_are_diagnosed_as_precision_lost_to_lam():
    """SciPy's isotonic regression of x + v: on a row of values near 1e-22 at lam = 1 the shifts
    swamp x and the collapsed mean comes out 0 (the reference sums x and the shifts apart)."""
    res = validate.run_battery(C.scipy_isotonic, max_d=3, families=["wide_binades"],
                               dtypes=("float64",))
    assert res.grade() == validate.WRONG
    case, failure = res.failures[0]
    assert case.lam > np.max(np.abs(validate.wide_row("wide_binades", case.d)))
    assert failure.diagnosis.startswith("precision lost to lam"), failure.diagnosis

"""The CPU side of the first GPU run (wsrbench.bench.gpu_first_run): arguments, the step runner's
timeout and failure records, the summary writer on recorded results, the calibration fit, and the
refusal without a GPU. No GPU is used here."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from wsrbench.bench import gpu_first_run as gfr
from wsrbench.bench import gpu_model

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = Path(__file__).resolve().parent / "data" / "gpu_first_run_fake.json"


# ------------------------------------------------------------------------------- arguments

def test_steps_default_all_in_order_and_selection_keeps_the_order():
    assert gfr.parse_steps(None) == list(gfr.STEPS)
    assert gfr.parse_steps("sharded, tests") == ["tests", "sharded"]


@pytest.mark.parametrize("text", ["gpu", "tests,nope", ","])
def test_unknown_steps_are_refused_by_name(text):
    with pytest.raises(ValueError, match="--steps"):
        gfr.parse_steps(text)


def test_budgets_default_fit_the_run_and_overrides_apply():
    b = gfr.parse_budgets(None, list(gfr.STEPS))
    assert b == gfr.STEPS and sum(b.values()) <= gfr.TOTAL_LIMIT_S
    b = gfr.parse_budgets(["tests=30", "compare=12.5"], ["tests", "compare"])
    assert b == {"tests": 30.0, "compare": 12.5}
    # a budget for a step that is not run is accepted and unused
    assert gfr.parse_budgets(["train=5"], ["tests"]) == {"tests": gfr.STEPS["tests"]}


@pytest.mark.parametrize("item, match", [
    ("tests", "STEP=SECONDS"), ("gpu=10", "unknown step"), ("tests=ten", "not a number"),
    ("tests=0", "positive"), ("tests=-3", "positive"), ("tests=nan", "positive"),
    ("tests=inf", "positive")])
def test_bad_budgets_are_refused_clearly(item, match):
    with pytest.raises(ValueError, match=match):
        gfr.parse_budgets([item], list(gfr.STEPS))


def test_budgets_over_the_run_limit_are_refused():
    over = gfr.TOTAL_LIMIT_S - sum(v for k, v in gfr.STEPS.items() if k != "tests") + 1
    with pytest.raises(ValueError, match="add up to"):
        gfr.parse_budgets([f"tests={over}"], list(gfr.STEPS))


def test_results_dir_is_dated_new_and_distinct(tmp_path):
    import datetime

    now = datetime.datetime(2031, 2, 3, 4, 5, 6, tzinfo=datetime.timezone.utc)
    a = gfr.results_dir(tmp_path / "out", now)
    b = gfr.results_dir(tmp_path / "out", now)
    assert a.name == "gpu-first-run-20310203T040506Z" and a.is_dir()
    assert b != a and b.is_dir()


def test_command_line_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as e:
        gfr.main(["--budget", "tests=ten"])
    assert e.value.code == 2
    assert "not a number" in capsys.readouterr().err


# ------------------------------------------------------------------------------- refusal

def _run_script(env_extra, *args):
    env = dict(os.environ, PYTHON=sys.executable, **env_extra)
    return subprocess.run(["bash", str(ROOT / "scripts" / "gpu_first_run.sh"), *args],
                          capture_output=True, text=True, env=env, timeout=120, check=False)


def test_script_refuses_under_the_simulator(tmp_path):
    r = _run_script({"NUMBA_ENABLE_CUDASIM": "1"}, "--out", str(tmp_path))
    assert r.returncode == 2
    assert "refusing" in r.stderr and "NUMBA_ENABLE_CUDASIM" in r.stderr
    assert "Traceback" not in r.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.slow  # imports torch in a fresh process: ~20 s on a loaded machine
def test_script_refuses_without_a_gpu(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is visible here")
    r = _run_script({"NUMBA_ENABLE_CUDASIM": "0"}, "--out", str(tmp_path))
    assert r.returncode == 2
    assert "refusing" in r.stderr and "GPU" in r.stderr and "Traceback" not in r.stderr
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------- the runner

def _py(code):
    return [sys.executable, "-c", code]


def test_runner_records_ok_failed_timeout_and_unstartable_steps(tmp_path):
    write = ("import json, sys, pathlib; pathlib.Path(sys.argv[1], '_{name}.json').write_text("
             "json.dumps({{'records': [{{'step': '{name}', 'n': 1}}], 'note': 'x'}}))")
    budget = 1.0
    steps = [
        gfr.Step("ok", 30.0, _py(write.format(name="ok")) + [tmp_path]),
        gfr.Step("bad", 30.0, _py("raise SystemExit(3)")),
        # writes a record, starts a grandchild, then hangs past its budget
        gfr.Step("slow", budget, _py(
            write.format(name="slow") + "; import subprocess, time; "
            "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            "pathlib.Path(sys.argv[1], 'pid').write_text(str(p.pid)); time.sleep(60)") + [tmp_path]),
        gfr.Step("missing", 30.0, [str(tmp_path / "no-such-program")]),
    ]
    t0 = time.monotonic()
    res = {r.name: r for r in gfr.run_steps(steps, tmp_path)}
    assert time.monotonic() - t0 < 30  # the hanging step did not hold the run
    assert (res["ok"].status, res["ok"].returncode) == ("ok", 0)
    assert res["ok"].records == [{"step": "ok", "n": 1}] and res["ok"].extra == {"note": "x"}
    assert (res["bad"].status, res["bad"].returncode) == ("failed", 3)
    assert "exit status 3" in res["bad"].message
    slow = res["slow"]
    assert slow.status == "timeout" and slow.returncode is None and "budget" in slow.message
    assert slow.seconds >= budget
    assert slow.records == [{"step": "slow", "n": 1}]  # written before it was killed
    grandchild = int((tmp_path / "pid").read_text())
    for _ in range(50):  # the whole process group went, not only the step's own process
        if not Path(f"/proc/{grandchild}").exists() or \
                Path(f"/proc/{grandchild}/stat").read_text().split()[2] == "Z":
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"the timed-out step's child {grandchild} is still running")
    assert res["missing"].status == "error" and "could not start" in res["missing"].message
    log = (tmp_path / "log.txt").read_text()
    for name in ("ok", "bad", "slow", "missing"):
        assert f"===== step {name}" in log
    assert not list(tmp_path.glob("_*.json"))  # merged into the results, then removed


def test_default_steps_run_this_module_with_their_budgets(tmp_path):
    steps = gfr.default_steps(["tests", "train"], {"tests": 5.0, "train": 7.0}, tmp_path)
    assert [(s.name, s.budget_s) for s in steps] == [("tests", 5.0), ("train", 7.0)]
    for s in steps:
        assert s.argv[1:3] == ["-m", "wsrbench.bench.gpu_first_run"]
        assert s.argv[s.argv.index("--run-step") + 1] == s.name
        assert s.argv[s.argv.index("--dir") + 1] == tmp_path
        assert set(gfr.STEP_FUNCTIONS) == set(gfr.STEPS)


# ------------------------------------------------------------------------------- the summary

def _fixture():
    run = json.loads(FIXTURE.read_text())
    assert run["fixture"].startswith("FAKE TEST FIXTURE")
    return run


def _rows(md, heading):
    part = md.split(heading, 1)[1].split("\n## ", 1)[0]
    return [ln for ln in part.splitlines() if ln.startswith("| ") and not ln.startswith("| step |")
            and not ln.startswith("| constant |")]


def test_summary_of_recorded_results():
    run = _fixture()
    md = gfr.summary_markdown(run)
    assert run["fixture"] in md  # the fake label travels into what it produces
    env = run["environment"]
    for v in (env["git_commit"], env["cpu"], env["device"]["name"], env["torch"], env["date_utc"]):
        assert str(v) in md
    steps = _rows(md, "## Steps")
    assert len(steps) == len(run["steps"])
    for s, line in zip(run["steps"], steps):
        assert line.startswith(f"| {s['name']} | {s['status']} |")
    assert "pytest: " + run["steps"][0]["extra"]["pytest"]["summary"] in steps[0]
    rows = _rows(md, "## Measured vs modelled")
    assert len(rows) == len(run["records"])
    fitted = run["calibration"]["fitted"]
    for r in run["records"]:
        key = f"| {r['step']} | {r['backend']} | {r['algorithm']} | {r['family']} | {r['d']:,} |"
        (line,) = [ln for ln in rows if ln.startswith(key)]
        cells = [c.strip() for c in line.strip("|").split("|")]
        measured, model, ratio, fit_ms, fit_ratio = cells[7:12]
        if r["measured_s"] is None:
            assert measured == "—" and ratio == "—"
        else:
            assert float(measured) == pytest.approx(r["measured_s"] * 1e3, abs=5e-4)
        if r["model_s"] is None:
            assert model == "—" and fit_ms == "—"
            continue
        assert float(model) == pytest.approx(r["model_s"] * 1e3, abs=5e-4)
        fm = gpu_model.modelled_seconds(r["counts"], constants=fitted)
        assert float(fit_ms) == pytest.approx(fm * 1e3, abs=5e-4)
        if r["measured_s"] is not None:
            assert float(ratio) == pytest.approx(r["measured_s"] / r["model_s"], abs=5e-3)
            assert float(fit_ratio) == pytest.approx(r["measured_s"] / fm, abs=5e-3)
    calib = _rows(md, "## Calibration of the cost model")
    assert len(calib) == len(gfr.CONSTANTS)
    for k, line in zip(gfr.CONSTANTS, calib):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0] == k
        assert float(cells[3]) == pytest.approx(fitted[k] / getattr(gpu_model, k), abs=5e-3)


def test_summary_without_calibration_has_no_fitted_columns():
    run = _fixture()
    run["calibration"] = None
    md = gfr.summary_markdown(run)
    assert "fitted" not in md and "## Calibration" not in md
    assert len(_rows(md, "## Measured vs modelled")) == len(run["records"])


def test_write_results_merges_step_results(tmp_path):
    run = _fixture()
    recs = run["records"]
    results = [gfr.StepResult("compare", "ok", 1.0, 10.0, 0, records=recs[:2]),
               gfr.StepResult("calibrate", "ok", 2.0, 10.0, 0,
                              extra={"calibration": run["calibration"]}),
               gfr.StepResult("sharded", "timeout", 10.0, 10.0, None, "killed",
                              records=recs[5:])]
    out = gfr.write_results(tmp_path, run["environment"], results)
    saved = json.loads((tmp_path / "run.json").read_text())
    assert saved == json.loads(json.dumps(out))
    assert saved["records"] == recs[:2] + recs[5:]
    assert [s["name"] for s in saved["steps"]] == ["compare", "calibrate", "sharded"]
    assert saved["calibration"] == run["calibration"]
    assert (tmp_path / "summary.md").read_text() == gfr.summary_markdown(saved)


# ------------------------------------------------------------------------------- the calibration

def _synthetic(k, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)

    def line(xs, slope, icpt):
        return [(float(x), icpt + slope * x * (1 + noise * rng.standard_normal())) for x in xs]

    return {"launch": line((200, 400, 800, 1600), k["LAUNCH_S"], 3e-4),
            "sync": line((50, 100, 200, 400), k["LAUNCH_S"] + k["SYNC_S"], 2e-4),
            "global": line((256, 512, 1024, 2048), k["STEP_S"], 4e-6),
            "shared": line((4096, 8192, 16384, 32768), k["SHARED_STEP_S"], 4e-6),
            "copy": line((2 << 28, 2 << 29, 2 << 30), 1 / k["HBM_BYTES_PER_S"], 8e-6)}


KNOWN = {"HBM_BYTES_PER_S": 3.1e12, "LAUNCH_S": 7.5e-6, "SYNC_S": 1.3e-5, "STEP_S": 6.2e-7,
         "SHARED_STEP_S": 2.9e-8}


def test_fit_recovers_known_constants():
    fit = gfr.fit_constants(_synthetic(KNOWN))
    # Exact data: only rounding in the least squares (a few eps, conditioned by x's spread).
    rtol = 1e4 * np.finfo(np.float64).eps
    for k, v in KNOWN.items():
        assert fit[k] == pytest.approx(v, rel=rtol), k
    assert fit["launch_intercept_s"] == pytest.approx(3e-4, rel=rtol)


def test_fit_with_noise_stays_within_the_noise():
    noise = 0.01  # 1 % relative noise on every timing
    fit = gfr.fit_constants(_synthetic(KNOWN, noise=noise, seed=1))
    for k, v in KNOWN.items():
        # SYNC_S is a difference of two slopes: its error is both slopes' over the small one.
        scale = (KNOWN["LAUNCH_S"] * 2 + KNOWN["SYNC_S"]) / KNOWN["SYNC_S"] if k == "SYNC_S" else 1
        assert abs(fit[k] / v - 1) < 5 * noise * scale, k


def test_fit_refuses_missing_or_degenerate_samples():
    s = _synthetic(KNOWN)
    del s["shared"]
    with pytest.raises(ValueError, match="shared"):
        gfr.fit_constants(s)
    s = _synthetic(KNOWN)
    s["global"] = [(512, 1e-4), (512, 1.1e-4)]
    with pytest.raises(ValueError, match="distinct"):
        gfr.fit_constants(s)


def test_fitted_constants_feed_the_model():
    c = {"bytes": 1e9, "launches": 40, "syncs": 3, "serial_steps": 100, "shared_steps": 1000}
    mine = {k: getattr(gpu_model, k) for k in gfr.CONSTANTS}
    assert gpu_model.modelled_seconds(c, constants=mine) == gpu_model.modelled_seconds(c)
    expect = (c["bytes"] / KNOWN["HBM_BYTES_PER_S"] + c["launches"] * KNOWN["LAUNCH_S"]
              + c["syncs"] * KNOWN["SYNC_S"] + c["serial_steps"] * KNOWN["STEP_S"]
              + c["shared_steps"] * KNOWN["SHARED_STEP_S"])
    assert gfr.model_of(c, KNOWN) == pytest.approx(expect, rel=8 * np.finfo(np.float64).eps)


# ------------------------------------------------------------------------------- the sharded step

def test_launch_refuses_an_unknown_process_group_backend():
    from wsrbench.bench import launch

    with pytest.raises(ValueError, match="gloo"):
        launch.run(gfr._sharded_rank, 1, (10,), 0, "cpu", backend="mpi")


@pytest.mark.slow  # two spawned processes import torch
def test_sharded_step_rank_function_on_gloo():
    """The sharded step's per-rank function, run as the step runs it but on CPU tensors and gloo:
    each rank's piece matches the whole vector's prox within the derived tolerance."""
    pytest.importorskip("torch")
    from wsrbench.bench import launch

    sizes, world = (3001, 40), 2
    per_rank = launch.run(gfr._sharded_rank, world, sizes, 0, "cpu", timeout=240.0,
                          collective_timeout=120.0)
    assert len(per_rank) == world
    for r, rows in enumerate(per_rank):
        assert [row["d"] for row in rows] == list(sizes)
        for row in rows:
            assert row["rank"] == r and row["world"] == world and row["seconds"] > 0
            assert row["max_error"] <= row["tolerance"]
            assert row["bytes_sent"] > 0 and row["collectives"] > 0


# ------------------------------------------------------------------------------- the geometry check

def _own_counts(x, lam, alg, dtype, validation=True):
    """Dry-run counts at this process's geometry (the simulator's here, the GPU's on a GPU)."""
    from wsrbench.backends import numba_cuda as nc
    from wsrbench.backends.numba_cuda import sort as nc_sort

    return nc.count_call(1, len(x), dtype, lam, alg, sort_method=nc_sort.choose(len(x)),
                         validation=validation)


def _needs_gpu_backends():
    from wsrbench.core import registry

    for name in ("numba_cuda", "torch"):
        why = registry.get_backend(name).unavailable_reason()
        if why:
            pytest.skip(f"{name}: {why}")


@pytest.mark.slow  # every GPU algorithm in the simulator, 2 sizes x 3 families x 2 dtypes
def test_geometry_check_passes_on_correct_kernels(tmp_path):
    """The first step's check, run here at the simulator's geometry (tiles of 8 points): every
    record certified, within tolerance, hull_bridges' counts equal to the dry run's."""
    _needs_gpu_backends()
    w = gfr._Writer(tmp_path, "tests")
    bad = gfr.geometry_check(w, (9, 21), torch_bridges_max_d=10, counts_of=_own_counts, repeats=1)
    recs = w.data["records"]
    assert bad == 0, [r for r in recs if r["status"] != "ok"]
    from wsrbench.core import registry

    per_row = sum(len([a for a in registry.get_backend(b).algorithms if a != "pava"])
                  for b in ("numba_cuda", "torch"))
    assert len(recs) == 3 * 2 * per_row + 3 * 2 * (per_row - 1)  # torch bridges skipped at d=21
    for r in recs:
        assert r["certified"] and r["max_error"] <= r["tolerance"] and r["measured_s"] > 0
        assert r["counts_match"] is (True if r["counts"] is not None else None)
    assert json.loads((tmp_path / "_tests.json").read_text())["records"] == \
        json.loads(json.dumps(recs))


@pytest.mark.slow  # numba_cuda's algorithms in the simulator
def test_geometry_check_reports_a_count_mismatch(tmp_path):
    """A dry-run count that differs from the real call's is a failed record, not a pass."""
    _needs_gpu_backends()

    def off_by_one(x, lam, alg, dtype, validation=True):
        c = _own_counts(x, lam, alg, dtype, validation)
        return dict(c, launches=c["launches"] + 1)

    w = gfr._Writer(tmp_path, "tests")
    bad = gfr.geometry_check(w, (9,), torch_bridges_max_d=0, counts_of=off_by_one,
                             backends=("numba_cuda",), families=("gaussian",), repeats=1)
    hull = [r for r in w.data["records"] if r["algorithm"] == "hull_bridges"]
    assert len(hull) == 2 and bad == len(hull)
    assert all(r["status"] == "mismatch" and r["counts_match"] is False for r in hull)
    assert all(r["status"] == "ok" for r in w.data["records"] if r["algorithm"] != "hull_bridges")


def test_junit_summary(tmp_path):
    p = tmp_path / "j.xml"
    p.write_text('<testsuites><testsuite name="pytest" tests="7" failures="1" errors="0" '
                 'skipped="2"/></testsuites>')
    assert gfr._junit_summary(p) == "7 tests, 1 failures, 0 errors, 2 skipped"
    assert gfr._junit_summary(tmp_path / "none.xml").startswith("no JUnit report")


def test_main_runs_the_selected_steps_into_one_dated_directory(tmp_path, monkeypatch, capsys):
    """The whole driver with fake steps in place of the GPU ones: one directory with run.json,
    summary.md and log.txt; a failed step makes the exit status 1 and the others still run."""
    monkeypatch.setattr(gfr, "gpu_missing_reason", lambda: None)
    monkeypatch.setattr(gfr, "environment", lambda: {"date_utc": "fake", "git_commit": "fake"})
    seen = {}

    def fake_steps(names, budgets, out_dir):
        seen.update(names=names, budgets=budgets)
        rec = json.dumps({"records": [{"step": "train", "backend": "b", "algorithm": "a",
                                       "family": "f", "d": 10, "dtype": "float32",
                                       "measured_s": 0.002, "counts": None, "model_s": None}]})
        return [gfr.Step("tests", budgets["tests"], _py("raise SystemExit(1)")),
                gfr.Step("train", budgets["train"], _py(
                    f"import pathlib; pathlib.Path({str(out_dir)!r}, '_train.json')"
                    f".write_text({rec!r})"))]

    monkeypatch.setattr(gfr, "default_steps", fake_steps)
    rc = gfr.main(["--out", str(tmp_path), "--steps", "train,tests", "--budget", "train=9"])
    assert rc == 1
    assert seen == {"names": ["tests", "train"], "budgets": {"tests": gfr.STEPS["tests"],
                                                             "train": 9.0}}
    (out,) = tmp_path.iterdir()
    assert out.name.startswith("gpu-first-run-")
    assert sorted(p.name for p in out.iterdir()) == ["log.txt", "run.json", "summary.md"]
    run = json.loads((out / "run.json").read_text())
    assert [(s["name"], s["status"]) for s in run["steps"]] == [("tests", "failed"),
                                                               ("train", "ok")]
    assert [r["d"] for r in run["records"]] == [10]
    assert "| train | b | a | f | 10 | float32 |" in (out / "summary.md").read_text()
    assert str(out) in capsys.readouterr().out


@pytest.mark.slow  # simulator threads
def test_calibration_microbenchmarks_run_and_fit(tmp_path):
    """The calibration's kernels and timing loops, in the simulator at tiny sizes (the times mean
    nothing here): every sample present, finite and non-negative, and the fit accepts them."""
    pytest.importorskip("torch")
    from numba.cuda.core import config

    if not config.ENABLE_CUDASIM:
        pytest.skip("a real GPU: the first run itself measures this")
    tiny = {"launches": (2, 4), "syncs": (2, 4), "global_log2": 6, "global_steps": (4, 8),
            "shared_steps": (4, 8), "copy_mib": (1 / 64, 1 / 32)}
    samples = gfr._calibration_samples(repeats=1, sizes=tiny, device="cpu")
    want = {"launch": "launches", "sync": "syncs", "global": "global_steps",
            "shared": "shared_steps"}
    for key, size_key in want.items():
        assert [x for x, _ in samples[key]] == list(tiny[size_key])
    assert [x for x, _ in samples["copy"]] == [2 * 4 * int(m * (1 << 18)) for m in tiny["copy_mib"]]
    for key, pts in samples.items():
        assert all(np.isfinite(t) for _, t in pts)
        if key in ("launch", "sync", "copy"):  # wall clock; the simulator's events give -1 ms
            assert all(t >= 0 for _, t in pts)
    fit = gfr.fit_constants(samples)
    assert set(gfr.CONSTANTS) <= set(fit)

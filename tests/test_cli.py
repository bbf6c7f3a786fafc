"""The compare and validate subcommands end to end (through wsrbench.cli, as a user runs them)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from wsrbench.cli import main

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir))


def test_help_lists_compare_and_validate(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "compare" in out and "validate" in out
    assert main(["compare", "--help"]) == 0  # main returns the status, it never exits
    assert "--quick" in capsys.readouterr().out
    assert main(["validate", "--help"]) == 0
    out = capsys.readouterr().out
    assert "MODULE:FUNCTION" in out and "--max-d" in out and "--budget" in out


@pytest.mark.slow
def test_compare_subprocess_writes_its_files(tmp_path):
    out = tmp_path / "cmp"
    proc = subprocess.run(
        [sys.executable, "-m", "wsrbench", "compare", "--backends", "numpy", "--algorithms",
         "pava,imminent_collisions", "--families", "gaussian,worst_imminent_collisions",
         "--sizes", "100,1000", "--repeats", "1", "--no-plot", "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "| numpy | imminent_collisions | worst_imminent_collisions (worst) |" in proc.stdout
    assert "scaling exponent" in proc.stdout
    for name in ("results.md", "results.csv", "results.json"):
        assert (out / name).stat().st_size > 0


@pytest.mark.slow
def test_compare_quick_defaults_with_plot(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    # --quick with the defaults narrowed to the numpy backend and small sizes to keep CI fast
    assert main(["compare", "--quick", "--backends", "numpy", "--sizes", "100,1000",
                 "--out", str(tmp_path), "--no-progress"]) == 0
    assert (tmp_path / "scaling.png").exists()
    out = capsys.readouterr().out
    for fam in ("gaussian", "worst_imminent_collisions", "worst_end_collisions"):
        assert fam in out


def test_compare_usage_errors_exit_2(capsys):
    assert main(["compare", "--backends", "nope"]) == 2
    assert "unknown backend" in capsys.readouterr().err
    assert main(["compare", "--sizes", "0"]) == 2


@pytest.mark.slow
def test_validate_passes_a_correct_candidate(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code = main(["validate", "tests._candidates:correct", "--max-d", "100", "--budget", "4"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "verdict: EXACT " in out and "candidate" in out and "x np.argsort" in out
    assert "numpy/pava" in out  # the built-ins are timed beside it


@pytest.mark.slow
@pytest.mark.parametrize("name", ["one_round_early", "ignores_ties", "mutates_input"])
def test_validate_fails_broken_candidates_naming_the_case(capsys, monkeypatch, name):
    monkeypatch.chdir(ROOT)
    code = main(["validate", f"tests._candidates:{name}", "--max-d", "100"])
    out = capsys.readouterr().out
    assert code == 1
    assert "first failing case: family=" in out and "reproduce:" in out


def test_validate_bad_spec_exits_2(capsys):
    assert main(["validate", "no_colon_here"]) == 2
    assert "MODULE:FUNCTION" in capsys.readouterr().err

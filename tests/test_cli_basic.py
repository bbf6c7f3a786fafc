"""The CLI skeleton: cases, backends, prox (compare and validate have their own tests)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import wsrbench
from wsrbench.cli import main


def test_help_lists_commands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    for cmd in ("cases", "backends", "prox"):
        assert cmd in out


def test_cases_lists_every_family(capsys):
    assert main(["cases"]) == 0
    out = capsys.readouterr().out
    for name in wsrbench.bench.cases.names():
        assert name in out
    assert "worst case of imminent_collisions" in out


def test_cases_writes_a_family(tmp_path, capsys):
    out = tmp_path / "x.npy"
    assert main(["cases", "--family", "quantized", "-d", "50", "--dtype", "float32", "--out", str(out)]) == 0
    x = np.load(out)
    assert np.array_equal(x, wsrbench.bench.cases.make("quantized", 50, dtype=np.float32)[0])


def test_prox_on_a_file_roundtrip(tmp_path, capsys):
    x = np.random.default_rng(0).normal(size=(3, 40))
    np.save(tmp_path / "x.npy", x)
    assert main(["prox", str(tmp_path / "x.npy"), str(tmp_path / "w.npy"), "--lam", "0.3",
                 "--backend", "numpy", "--algorithm", "search_collisions"]) == 0
    out = capsys.readouterr().out
    w = np.load(tmp_path / "w.npy")
    np.testing.assert_array_equal(w, wsrbench.prox(x, 0.3, algorithm="search_collisions", backend="numpy"))
    assert "clusters" in out and "rounds" in out and "certified yes" in out
    assert "search_collisions" in out


def test_prox_on_a_family_reports_rounds(capsys):
    assert main(["prox", "--family", "worst_imminent_collisions", "-d", "200",
                 "--algorithm", "imminent_collisions", "--backend", "numpy"]) == 0
    out = capsys.readouterr().out
    assert "rounds    199" in out and "clusters  1" in out


def test_prox_errors_are_explained(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.array([1.0, np.nan]))
    assert main(["prox", str(tmp_path / "x.npy"), "--lam", "0.1"]) == 2
    assert "x contains NaN" in capsys.readouterr().err
    assert main(["prox", str(tmp_path / "x.npy")]) == 2
    assert "--lam is required" in capsys.readouterr().err
    assert main(["prox", "--family", "gaussian", "--algorithm", "nope"]) == 2
    assert "unknown algorithm 'nope'" in capsys.readouterr().err


def test_backends_command(capsys):
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    assert "numpy" in out and "available" in out


@pytest.mark.slow
def test_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "wsrbench", "cases"], capture_output=True, text=True)
    assert out.returncode == 0 and "worst_pava" in out.stdout

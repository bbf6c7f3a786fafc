"""The command line never shows a traceback (docs/design.md#command-line-errors).

Every subcommand the parser knows (so one added later is covered without editing this file) is run
with bad arguments: exactly one line on stderr, status 2, no "Traceback". Then the specific reports:
an unimportable candidate, a text file, a float16 file, a kind mismatch worded in CLI terms, a
closed pipe, --version.

``wsrbench.cli.main`` is the one place that turns every failure into a message and a status, so
most cases call it in this process (:func:`run_main`, milliseconds); what only a real process
shows (the entry point, the interpreter's exit on a closed pipe, one bad option end to end) runs
in a subprocess (:func:`run_cli`, seconds each, marked slow).
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import pytest

import wsrbench
from wsrbench.cli import build_parser, main

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_cli(*args, cwd=None, shell_pipe=None):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("WSRBENCH_TRACEBACK", None)
    if shell_pipe:
        cmd = f"{sys.executable} -m wsrbench {' '.join(args)} | {shell_pipe}"
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, cwd=cwd, env=env,
                              timeout=300)
    return subprocess.run([sys.executable, "-m", "wsrbench", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300)


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def run_main(capsys, monkeypatch):
    """``wsrbench ARGS`` through ``cli.main`` in this process (optionally in ``cwd``)."""
    monkeypatch.delenv("WSRBENCH_TRACEBACK", raising=False)

    def run(*args, cwd=None):
        if cwd is not None:
            monkeypatch.chdir(cwd)
        capsys.readouterr()
        status = main(list(args))
        out = capsys.readouterr()
        return Result(status, out.out, out.err)
    return run


def assert_usage_error(res, *fragments):
    lines = res.stderr.strip().splitlines()
    assert "Traceback" not in res.stderr + res.stdout
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert len(lines) == 1, res.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


def subcommands() -> list[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return sorted(sub.choices)


@pytest.mark.parametrize("bad", [["--no-such-option"], ["--max-d", "x", "--sizes", "x", "-d", "x"]],
                         ids=["unknown-option", "bad-values"])
@pytest.mark.parametrize("command", subcommands())
def test_every_subcommand_refuses_bad_arguments_in_one_line(run_main, command, bad):
    assert_usage_error(run_main(command, *bad), f"wsrbench {command}")


@pytest.mark.slow
def test_a_bad_option_end_to_end_in_a_process():
    assert_usage_error(run_cli("compare", "--no-such-option"), "wsrbench compare")


@pytest.mark.slow
def test_unknown_command_and_no_arguments():
    assert_usage_error(run_cli("frobnicate"), "invalid choice")
    res = run_cli()
    assert res.returncode == 0 and "COMMAND" in res.stdout


@pytest.mark.slow
def test_version():
    res = run_cli("--version")
    assert res.returncode == 0 and res.stdout.strip() == f"wsrbench {wsrbench.__version__}"


def test_unimportable_candidate(run_main):
    assert_usage_error(run_main("validate", "surely_not_a_module_i11:prox", "--no-timing"),
                       "could not import module 'surely_not_a_module_i11'")


def test_candidate_that_raises_on_import(run_main, tmp_path):
    (tmp_path / "cand.py").write_text("raise RuntimeError('broken on import')\n")
    assert_usage_error(run_main("validate", str(tmp_path / "cand.py") + ":prox", "--no-timing"),
                       "broken on import")


def test_prox_input_files(run_main, tmp_path):
    (tmp_path / "x.txt").write_text("1 2 3\n")
    np.save(tmp_path / "h.npy", np.ones(4, dtype=np.float16))
    np.save(tmp_path / "o.npy", np.array([{}], dtype=object), allow_pickle=True)
    np.save(tmp_path / "x.npy", np.arange(5.0))
    cwd = str(tmp_path)
    assert_usage_error(run_main("prox", "x.txt", "--lam", "1", cwd=cwd), "not a .npy file")
    assert_usage_error(run_main("prox", "h.npy", "--lam", "1", cwd=cwd), "float16")
    assert_usage_error(run_main("prox", "o.npy", "--lam", "1", cwd=cwd), "numeric array")
    assert_usage_error(run_main("prox", "missing.npy", "--lam", "1", cwd=cwd), "no such file")
    assert_usage_error(run_main("prox", "x.npy", cwd=cwd), "--lam is required")
    assert_usage_error(run_main("prox", "x.npy", "--lam", "nan", cwd=cwd), "--lam must be finite")
    assert_usage_error(run_main("prox", "x.npy", "--lam", "1", "--rho", "2", cwd=cwd), "--rho")
    assert_usage_error(run_main("prox", "x.npy", "--lam", "1", "--algorithm", "nope", cwd=cwd),
                       "unknown algorithm")
    torch_entry = wsrbench.core.registry.get_backend("torch")
    if torch_entry.unavailable_reason() is None:
        res = run_main("prox", "x.npy", "--lam", "1", "--backend", "torch", cwd=cwd)
        assert_usage_error(res, "--backend auto")
        assert "backend='auto'" not in res.stderr


@pytest.mark.slow
def test_closed_pipe_is_quiet():
    res = run_cli("cases", "--family", "gaussian", "-d", "200000", shell_pipe="head -c 20")
    assert "Traceback" not in res.stderr and "BrokenPipe" not in res.stderr, res.stderr
    assert res.stderr.strip() == ""

"""Provenance of a measured figure: date, commit, machine and load (docs/design.md#figures-with-provenance).

A timing measured on a shared machine means something only with the load it ran under, so every
file of figures the project writes (``docs/figures/*.md``, the reproduction's tables, the speed
scripts' tables, the instruction-count baseline) starts with the same facts, written here once:
the UTC date, the commit, the CPU model and core count, the load average sampled through the run
(:class:`LoadMonitor`: mean and maximum of the 1-minute figure) and the command. A run whose load
exceeded the core count is flagged: its timings are suspect.

It lives in ``core`` because every layer that publishes a figure (the benchmark suite, the
reproduction in ``nn``) needs it and it depends on nothing of the package.
"""
from __future__ import annotations

import datetime
import os
import platform
import shlex
import subprocess
import sys
import threading


class LoadMonitor:
    """Samples ``os.getloadavg()[0]`` every ``interval`` seconds while the block runs."""

    def __init__(self, interval: float = 5.0):
        self.interval = interval
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        try:
            self.samples.append(os.getloadavg()[0])
        except (OSError, AttributeError):  # no load average on this platform
            pass

    def __enter__(self) -> LoadMonitor:
        self._sample()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()

    @property
    def max(self) -> float:
        return max(self.samples) if self.samples else float("nan")

    @property
    def mean(self) -> float:
        return sum(self.samples) / len(self.samples) if self.samples else float("nan")


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def commit() -> str:
    """The checked-out commit of the package's source tree (12 hex digits, ``-dirty`` when a
    tracked file outside docs/figures has uncommitted changes), or ``"unknown"`` outside a git
    checkout. docs/figures is left out because the figure commands write there: the second
    command of one ``scripts/figures.sh`` run measures the same code as the first."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        r = subprocess.run(["git", "-C", here, "describe", "--always", "--abbrev=12"],
                           capture_output=True, text=True, timeout=10)
        rev = r.stdout.strip()
        if r.returncode != 0 or not rev:
            return "unknown"
        s = subprocess.run(["git", "-C", here, "status", "--porcelain", "--untracked-files=no",
                            "--", ":(top)", ":(top,exclude)docs/figures"],
                           capture_output=True, text=True, timeout=10)
        return rev + ("-dirty" if s.returncode != 0 or s.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine() -> dict:
    return {"cpu": cpu_model(), "cores": os.cpu_count() or 0}


def overloaded(load: LoadMonitor | float, cores: int | None = None) -> bool:
    """Whether the load exceeded the core count (the timings are then suspect)."""
    peak = load.max if isinstance(load, LoadMonitor) else float(load)
    return peak > (cores or os.cpu_count() or 1)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _command(command: str | None) -> str:
    return command or " ".join(shlex.quote(a) for a in [os.path.basename(sys.executable),
                                                          *sys.argv])


def lines(load: LoadMonitor, command: str | None = None) -> list[str]:
    """The provenance as markdown list items: date, commit, machine, load, command (and a
    warning when the load exceeded the cores)."""
    m = machine()
    out = [f"- date: {_now():%Y-%m-%d %H:%M} UTC",
           f"- commit: {commit()}",
           f"- machine: {m['cpu']}, {m['cores']} cores",
           f"- load average (1 min) during the run: mean {load.mean:.2f}, max {load.max:.2f}",
           f"- command: `{_command(command)}`"]
    if overloaded(load, m["cores"]):
        out.append(f"- **LOADED MACHINE: the load ({load.max:.1f}) exceeded the {m['cores']} "
                   f"cores during the run; timings are suspect (rerun on a quiet machine)**")
    return out


def header(title: str, load: LoadMonitor, command: str | None = None) -> str:
    """The provenance header of a figures file (markdown): a title, then :func:`lines`."""
    return "\n".join([f"# {title}", "", *lines(load, command)]) + "\n"


def meta(load: LoadMonitor, command: str | None = None) -> dict:
    """The same provenance as a dict, for the JSON beside the markdown."""
    return {"date": f"{_now():%Y-%m-%dT%H:%M}Z", "commit": commit(), **machine(),
            "load_mean": round(load.mean, 2), "load_max": round(load.max, 2),
            "overloaded": overloaded(load), "command": _command(command)}

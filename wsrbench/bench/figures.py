"""Provenance of a published figure: the header every ``docs/figures/*.md`` file starts with, and
timing ratios as interleaved medians with their spread (docs/design.md#figures-with-provenance).

A timing measured on a shared machine is meaningful only with the load it ran under: the header
records date, commit, machine (CPU model, cores), the load average sampled through the run (the
maximum of the 1-minute figure) and the command, and flags the file when the load exceeded the
core count. A ratio t_a / t_b is reported as the median of per-pair ratios of interleaved calls
(a, b, a, b, ...: a load change hits both) with the interquartile range of those ratios.
"""
from __future__ import annotations

import datetime
import os
import shlex
import sys
import threading

import numpy as np


class LoadMonitor:
    """Samples ``os.getloadavg()[0]`` every ``interval`` seconds while the block runs."""

    def __init__(self, interval: float = 5.0):
        self.interval = interval
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = None

    def _sample(self):
        try:
            self.samples.append(os.getloadavg()[0])
        except OSError:  # no load average on this platform
            pass

    def __enter__(self):
        self._sample()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _loop(self):
        while not self._stop.wait(self.interval):
            self._sample()

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def max(self) -> float:
        return max(self.samples) if self.samples else float("nan")

    @property
    def mean(self) -> float:
        return float(np.mean(self.samples)) if self.samples else float("nan")


def machine() -> dict:
    from .track import cpu_model

    return {"cpu": cpu_model(), "cores": os.cpu_count() or 0}


def overloaded(load: LoadMonitor | float, cores: int | None = None) -> bool:
    """Whether the load exceeded the core count (the timings are then suspect)."""
    peak = load.max if isinstance(load, LoadMonitor) else float(load)
    return peak > (cores or os.cpu_count() or 1)


def header(title: str, load: LoadMonitor, command: str | None = None) -> str:
    """The provenance header of a figures file (markdown)."""
    from .track import commit

    m = machine()
    cmd = command or " ".join(shlex.quote(a) for a in [os.path.basename(sys.executable),
                                                       *sys.argv])
    lines = [f"# {title}", "",
             f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
             f"- commit: {commit()}",
             f"- machine: {m['cpu']}, {m['cores']} cores",
             f"- load average (1 min) during the run: mean {load.mean:.2f}, max {load.max:.2f}",
             f"- command: `{cmd}`"]
    if overloaded(load, m["cores"]):
        lines.append(f"- **LOADED MACHINE: the load ({load.max:.1f}) exceeded the {m['cores']} "
                     f"cores during the run; timings are suspect (rerun on a quiet machine)**")
    return "\n".join(lines) + "\n"


def meta(load: LoadMonitor, command: str | None = None) -> dict:
    """The same provenance as a dict, for the JSON beside the markdown."""
    from .track import commit

    return {"date": f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%dT%H:%M}Z",
            "commit": commit(), **machine(), "load_mean": round(load.mean, 2),
            "load_max": round(load.max, 2), "overloaded": overloaded(load),
            "command": command or " ".join(sys.argv)}


def interleaved_ratio(f, g, runs: int) -> dict:
    """t_f / t_g from ``runs`` interleaved pairs after one warm-up call of each: the median
    ratio and its interquartile range (q25, q75), and the median times."""
    from .benchtools import interleaved_times

    if runs < 3:
        raise ValueError(f"runs must be at least 3 for an interquartile range, got {runs}")
    tf, tg = interleaved_times(f, g, runs)
    r = np.asarray(tf) / np.asarray(tg)
    q25, med, q75 = np.percentile(r, [25, 50, 75])
    return {"ratio": float(med), "q25": float(q25), "q75": float(q75),
            "median_f": float(np.median(tf)), "median_g": float(np.median(tg)), "runs": runs}


def fmt_ratio(r: dict) -> str:
    """``0.35x (IQR 0.33-0.37)``."""
    return f"{r['ratio']:.2f}x (IQR {r['q25']:.2f}-{r['q75']:.2f})"

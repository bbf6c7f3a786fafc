"""Instruction counts as asv ``track_`` records: ``asv run`` over a commit range gives a history
that machine load does not move (docs/design.md#instruction-counts). Needs valgrind (skips
without it).

- ``Tracked``: the whole tracked set of ``wsrbench track`` (``wsrbench.bench.track``, the same
  definitions as the CI gate and ``benchmarks/baseline.json``), one callgrind process per commit
  in ``setup_cache``; skipped on commits that predate it.
- ``KernelHistory``: the main Numba prox kernels counted by ``benchmarks/_track_count.py``, which
  needs only ``wsrbench.prox``: it runs on every commit since the numba backend (``asv publish``
  graphs it; ``python scripts/track_history.py COMMIT...`` counts and plots without asv).
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))


def _counter():
    spec = importlib.util.spec_from_file_location("_wsrbench_track_count",
                                                  os.path.join(_HERE, "_track_count.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _tracked_names():
    try:
        from wsrbench.bench import track
    except ImportError:
        return []
    return [b.name for b in track.benchmarks() if b.instructions]


_TRACKED = _tracked_names() or ["(none on this commit)"]
_KERNELS = _counter().cell_names()


def _read(cache, name, key):
    if cache is None or name not in cache or key not in cache[name]:
        raise NotImplementedError(f"{name}: not counted on this commit")
    return cache[name][key]


class Tracked:
    params = [_TRACKED]
    param_names = ["benchmark"]
    timeout = 3600

    def setup_cache(self):
        if shutil.which("valgrind") is None:
            return None
        try:
            from wsrbench.bench import track
        except ImportError:
            return None
        return track.run(only=_TRACKED, log=lambda msg: None)["benchmarks"]

    def setup(self, cache, name):
        _read(cache, name, "instructions")

    def track_instructions(self, cache, name):
        return _read(cache, name, "instructions")

    def track_ll_misses(self, cache, name):
        return _read(cache, name, "ll_misses")


class KernelHistory:
    params = [_KERNELS]
    param_names = ["benchmark"]
    timeout = 3600

    def setup_cache(self):
        if shutil.which("valgrind") is None:
            return None
        return _counter().count(python=sys.executable)

    def setup(self, cache, name):
        _read(cache, name, "instructions")

    def track_instructions_per_element(self, cache, name):
        return _read(cache, name, "instructions") / cache[name]["elements"]

    track_instructions_per_element.unit = "instructions/element"

"""The provenance header every published figure carries (docs/design.md#figures-with-provenance)."""
from __future__ import annotations

import os
import re

from wsrbench.core import provenance


def test_header_names_date_commit_machine_load_and_command():
    load = provenance.LoadMonitor(interval=0.01)
    with load:
        pass
    text = provenance.header("A table", load, command="python make_table.py --n 3")
    assert text.startswith("# A table\n")
    assert re.search(r"- date: \d{4}-\d\d-\d\d \d\d:\d\d UTC", text)
    assert f"- commit: {provenance.commit()}" in text
    assert f"{provenance.cpu_model()}, {os.cpu_count()} cores" in text
    assert re.search(r"load average \(1 min\) during the run: mean \S+, max \S+", text)
    assert "`python make_table.py --n 3`" in text
    assert len(load.samples) >= 2  # sampled on entry and on exit at least


def test_a_run_over_the_core_count_is_flagged():
    cores = os.cpu_count() or 1
    busy = provenance.LoadMonitor()
    busy.samples = [0.5, cores + 1.0]
    quiet = provenance.LoadMonitor()
    quiet.samples = [0.5, cores - 0.5]
    assert "LOADED MACHINE" in provenance.header("t", busy, command="c")
    assert "LOADED MACHINE" not in provenance.header("t", quiet, command="c")
    meta = provenance.meta(busy, command="c")
    assert meta["overloaded"] is True and meta["load_max"] == cores + 1.0
    assert {"date", "commit", "cpu", "cores", "command"} <= set(meta)

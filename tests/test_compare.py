"""wsrbench compare: planning with explicit caps, measuring with certificates, the output files."""
from __future__ import annotations

import argparse
import csv
import json
import math

import numpy as np
import pytest

from wsrbench import cases
from wsrbench.bench import benchtools, compare
from wsrbench.cli import compare as cli_compare
from wsrbench.core import registry


def _args(tmp_path, **kw):
    p = argparse.ArgumentParser()
    cli_compare.add_arguments(p)
    ns = p.parse_args([])
    ns.out = str(tmp_path / "out")
    ns.no_progress = True
    for k, v in kw.items():
        setattr(ns, k, v)
    return ns


def test_fit_exponent_recovers_known_powers():
    ds = [1_000, 10_000, 100_000]
    for p in (1.0, 1.5, 2.0):
        got, n = compare.fit_exponent(ds, [3e-9 * d ** p for d in ds])
        assert got == pytest.approx(p, abs=1e-9) and n == 2  # only d >= 1e4 when two exist
    got, n = compare.fit_exponent([10, 100], [1.0, 10.0])
    assert got == pytest.approx(1.0) and n == 2
    assert math.isnan(compare.fit_exponent([1000], [1.0])[0])


def test_parse_sizes_and_families():
    assert compare.parse_sizes("1e3, 2000,1e3") == [1000, 2000]
    with pytest.raises(ValueError, match="positive integer"):
        compare.parse_sizes("1.5")
    with pytest.raises(ValueError, match="not a number"):
        compare.parse_sizes("big")
    assert compare.resolve_families("worst", []) == cases.names("worst")
    with pytest.raises(ValueError, match="unknown family"):
        compare.resolve_families("nope", [])


def test_caps_are_the_shared_table():
    # one table, shared with the asv suite (its entries are checked in tests/test_benchmarks.py)
    assert compare.CAPS is benchtools.CAPS
    cap = compare.cap_for("torch", "pava", "gaussian", "cpu")
    assert cap.max_d == 100_000 and compare.cap_for("torch", "pava", "gaussian", "gpu") is None
    assert compare.cap_for("numba", "end_collisions", "gaussian", "any").max_d == 10_000


def test_plan_lists_what_it_caps():
    plan = compare.make_plan(["numpy"], ["end_collisions", "pava"], ["worst_end_collisions"],
                             [1_000, 10_000, 100_000])
    assert ("numpy", "end_collisions", "worst_end_collisions", 100_000) not in plan.cells
    assert ("numpy", "pava", "worst_end_collisions", 100_000) in plan.cells
    (b, a, f, over, cap), = plan.capped
    assert (a, f, over, cap.max_d) == ("end_collisions", "worst_end_collisions", [100_000], 10_000)
    lifted = compare.make_plan(["numpy"], ["end_collisions"], ["worst_end_collisions"],
                               [100_000], use_caps=False)
    assert lifted.cells and not lifted.capped


def test_measure_certifies_and_times():
    r = compare.measure("numpy", "pava", "quantized", 500, repeats=2)
    assert r.status == "ok" and r.certified and r.seconds > 0 and r.floor == "np.argsort"
    assert r.clusters >= 1 and r.rounds >= 500 and r.ratio_to_floor > 0


def test_run_writes_table_csv_json(tmp_path, capsys):
    args = _args(tmp_path, backends="numpy", algorithms="pava,search_collisions",
                 families="gaussian,worst_pava", sizes="200,2000", repeats=1, no_plot=True)
    assert cli_compare.run(args) == 0
    out = capsys.readouterr().out
    assert "| numpy | pava | gaussian |" in out and "p = " in out and "x floor" in out
    d = tmp_path / "out"
    md = (d / "results.md").read_text()
    assert "### worst_pava (worst)" in md and "### gaussian" in md  # one table per family
    # Reading aids: the floor named and explained, its own times, dtype and date in the title, the
    # command without a trailing space
    title = md.splitlines()[0]
    assert title.startswith("# wsrbench compare, float64: ") and " UTC" in title
    assert "np.argsort (sort floor)" in md and "Floor times" in md and "below it" in md
    assert "`wsrbench compare `" not in md and "(1 combinations)" not in md
    rows = list(csv.DictReader((d / "results.csv").read_text().splitlines()))
    assert len(rows) == 2 * 2 * 2 and all(r["certified"] == "True" for r in rows)
    js = json.loads((d / "results.json").read_text())
    assert js["meta"]["sizes"] == [200, 2000] and len(js["summary"]) == 4
    assert all(int(r["depth"]) > 0 for r in rows)  # the reference counts every algorithm's depth
    assert "Parallel depth" in md and "| search_collisions | worst_pava |" in md


def test_depth_exponent_reads_the_power_of_log_d():
    from wsrbench.bench import depth_report

    for p_true in (1, 2, 3):
        pts = [(d, round(10 * math.log2(d) ** p_true)) for d in (10**2, 10**3, 10**4, 10**6)]
        p, q = depth_report.fit_log_exponent(pts)
        assert abs(p - p_true) < 0.01 and q < 0.5
    p, q = depth_report.fit_log_exponent([(d, d) for d in (10**2, 10**4, 10**6)])
    assert abs(q - 1) < 1e-9 and p > 3


@pytest.mark.slow
def test_run_plots_when_matplotlib_is_installed(tmp_path):
    pytest.importorskip("matplotlib")
    args = _args(tmp_path, backends="numpy", algorithms="pava", families="gaussian,all_equal",
                 sizes="100,1000", repeats=1)
    assert cli_compare.run(args) == 0
    assert (tmp_path / "out" / "scaling.png").stat().st_size > 1000
    assert (tmp_path / "out" / "depth.png").stat().st_size > 1000


def test_run_prints_caps_and_rejects_unknown_names(tmp_path, capsys):
    args = _args(tmp_path, backends="numpy", algorithms="end_collisions",
                 families="worst_end_collisions", sizes="1e3,1e5", repeats=1, no_plot=True)
    assert cli_compare.run(args) == 0
    assert "d <= 10000" in capsys.readouterr().out
    with pytest.raises(ValueError, match="unknown backend"):
        cli_compare.run(_args(tmp_path, backends="nope"))
    with pytest.raises(ValueError, match="unknown algorithm"):
        cli_compare.run(_args(tmp_path, algorithms="nope"))


def test_failed_certificate_is_reported(tmp_path, capsys, monkeypatch):
    from wsrbench.core import plugins
    from wsrbench.core.registry import Algorithm

    def bad_partition(xs, lam):  # every element its own cluster: wrong unless nothing merges
        return np.arange(xs.shape[0], dtype=np.int64), 1, {}

    plugins.register(Algorithm("no_merge", "never merges", "O(d)", "1"), "numpy",
                     partition=bad_partition)
    try:
        args = _args(tmp_path, backends="numpy", algorithms="no_merge", families="gaussian",
                     sizes="100", repeats=1, no_plot=True)
        assert cli_compare.run(args) == 1
        assert "FAILED: numpy/no_merge/gaussian/d=100" in capsys.readouterr().out
    finally:
        plugins.unregister("no_merge")


def test_check_answer_is_the_certificate_even_on_dense_near_ties():
    # dense float32 data at lam = 0: distinct values closer than the certificate's tolerance
    x, _ = cases.make("nearly_sorted", 1000, dtype=np.float32)
    ok, _, msg = compare.check_answer(x, x.copy(), 0.0)
    assert ok and msg == ""
    w = x.copy()
    w[10] += np.float32(1e-3)
    ok, _, msg = compare.check_answer(x, w, 0.0)
    assert not ok and "violation" in msg


def test_simulated_backends_run_only_their_test_sizes():
    sims = [b.name for b in registry.backends()
            if b.available and getattr(registry.get_backend(b.name).load(), "SIMULATOR", False)]
    if not sims:
        pytest.skip("no backend runs in a simulator here")
    b = sims[0]
    alg = registry.get_backend(b).algorithms[0]
    plan = compare.make_plan([b], [alg], ["gaussian"], [8, 100_000])
    assert plan.cells == [(b, alg, "gaussian", 8)]
    assert plan.capped[0][3] == [100_000] and "simulator" in plan.capped[0][4].reason


def test_a_capped_line_gets_a_marker_where_it_stops():
    plt = pytest.importorskip("matplotlib.pyplot")
    from wsrbench.bench import report
    from wsrbench.bench.benchtools import Cap

    recs = [compare.Record("numpy", "end_collisions", "g", "typical", d, "float64", "ok",
                           seconds=1e-3 * d) for d in (100, 1000)]
    cap = Cap("numpy", "end_collisions", "g", 1000, "slow")
    fig, ax = plt.subplots()
    assert report.mark_caps(ax, recs, [("numpy", "end_collisions", "g", [10_000], cap)], "g",
                            {}, {}) == 1
    (line,) = ax.get_lines()
    assert list(line.get_xdata()) == [1000]  # at the last measured size
    assert report.mark_caps(ax, recs, [], "g", {}, {}) == 0
    plt.close(fig)


def test_depth_figure_title_caps_legend_and_laws(tmp_path):
    """depth.png read through its Figure, no pixels: the title names dtype, machine and date;
    an x marks the line that stops at a cap; the legend covers no panel; a polylog line is named
    by its p, a sequential one by depth ~ d^q."""
    pytest.importorskip("matplotlib")
    from wsrbench.bench import depth_report, report
    from wsrbench.bench.compare import Record

    sizes = (10**2, 10**3, 10**4, 10**5)
    recs = []
    for fam in ("gaussian", "quantized"):
        for d in sizes:
            recs.append(Record("numpy", "hull_bridges", fam, "typical", d, "float32", "ok",
                               depth=round(2 * math.log2(d) ** 2)))
            if d <= 10**3:  # pava stops at a size cap
                recs.append(Record("numpy", "pava", fam, "typical", d, "float32", "ok", depth=d))
    capped = [("numpy", "pava", "gaussian", [10**4, 10**5], None)]
    meta = {"dtype": "float32", "machine": "Test CPU (2 cores)", "date": "2026-12-07"}
    fig = depth_report.figure(recs, capped=capped, title=report.report_title(meta))
    try:
        title = fig._suptitle.get_text()
        assert "float32" in title and "2026-12-07" in title and "Test CPU" in title
        axes = [ax for ax in fig.axes if ax.has_data()]
        caps = [ln for ax in axes for ln in ax.get_lines() if ln.get_gid() == "cap"]
        assert len(caps) == 1 and caps[0].get_marker() == "x"  # gaussian only: quantized has no cap
        labels = [t.get_text() for t in fig.legends[0].get_texts()]
        assert "hull_bridges: depth ~ (log2 d)^p, p = 2.00" in labels, labels
        assert "pava: depth ~ d^q, q = 1.00 (sequential)" in labels, labels
        assert not any("pava" in t and "log2" in t for t in labels)  # no p for a sequential line
        fig.canvas.draw()
        leg = fig.legends[0].get_window_extent()
        assert not any(leg.overlaps(ax.get_window_extent()) for ax in axes)
    finally:
        import matplotlib.pyplot as plt
        plt.close(fig)
    md = depth_report.markdown(recs, sizes)
    pava_row = next(ln for ln in md.splitlines() if ln.startswith("| pava | gaussian"))
    assert pava_row.split("|")[-3].strip() == "-" and pava_row.split("|")[-2].strip() == "1.00"
    assert depth_report.plot(recs, tmp_path / "depth.png", capped=capped, title="t")

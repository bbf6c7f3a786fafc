"""Count the instructions of the tracked benchmarks under valgrind (callgrind) and compare them
with the committed baseline (benchmarks/baseline.json). Instruction counts are deterministic on a
loaded machine; beside them the machine-independent counts (rounds, clusters, depth, GPU launches,
syncs and bytes of the dry-run model, distributed bytes and collectives) are compared exactly.
docs/design.md#instruction-counts.

  wsrbench track               run and print the counts
  wsrbench track --check       compare with the baseline; exit 1 naming every regression
  wsrbench track --update      rewrite the baseline (say why in CHANGELOG.md)
"""
from __future__ import annotations

import json
import os
import sys
import time

DEFAULT_BASELINE = os.path.join("benchmarks", "baseline.json")


def add_arguments(p) -> None:
    g = p.add_mutually_exclusive_group()
    g.add_argument("--check", action="store_true",
                   help="compare with the baseline; exit 1 on a regression")
    g.add_argument("--update", action="store_true", help="rewrite the baseline with this run")
    p.add_argument("--baseline", default=DEFAULT_BASELINE,
                   help=f"baseline file (default {DEFAULT_BASELINE})")
    p.add_argument("--threshold", type=float, default=None,
                   help="relative instruction-count change that counts as a regression "
                        "(default 0.02)")
    p.add_argument("--json", dest="json_out", help="write this run to a JSON file")
    p.add_argument("--markdown", help="write the instruction counts as a figures file (per "
                                      "element, ratio to np.argsort), e.g. docs/figures/track.md")
    p.add_argument("--from-json", help="read a run written by --json instead of running "
                                       "(with --check, --update or --markdown)")
    p.add_argument("--only", action="append",
                   help="run only benchmarks matching this glob (repeatable), e.g. 'prox.*.pava.*'")
    p.add_argument("--plugin", action="append", default=[],
                   help="import this module first (it may register extra benchmarks with "
                        "wsrbench.bench.track.register_benchmark)")
    p.add_argument("--no-cache-sim", action="store_true",
                   help="count instructions only (no last-level misses; faster)")
    p.add_argument("--list", action="store_true", help="list the tracked benchmarks and exit")


def run(args) -> int:
    from ..bench import track

    threshold = track.DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    if not 0 < threshold < 1:
        raise ValueError(f"--threshold must be in (0, 1), e.g. 0.02 for 2%; got {threshold}")
    if args.list:
        track._load_plugins(args.plugin)
        for b in track.select(track.benchmarks(), args.only):
            print(f"{'instructions' if b.instructions else 'counts      '}  {b.name}")
        return 0
    base = None
    if args.check:
        if not os.path.isfile(args.baseline):
            raise FileNotFoundError(f"no baseline {args.baseline}; create it with "
                                    f"'wsrbench track --update --baseline {args.baseline}'")
        with open(args.baseline) as fh:
            base = json.load(fh)
    t0 = time.perf_counter()

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    if track.valgrind_path() is None and not args.from_json:
        log("valgrind not found: instruction counts skipped (install valgrind, e.g. "
            "'apt-get install valgrind'); machine-independent counts only")
    if args.from_json:
        with open(args.from_json) as fh:
            result = json.load(fh)
    else:
        result = track.run(only=args.only, plugins=args.plugin, cache_sim=not args.no_cache_sim,
                           log=log)
        result["meta"]["seconds"] = round(time.perf_counter() - t0, 1)
    if args.json_out:
        track.write_json(result, args.json_out)
    if args.markdown:
        with open(args.markdown, "w") as fh:
            fh.write(track.markdown(result, "wsrbench " + " ".join(sys.argv[1:])))
    if args.update:
        track.write_json(result, args.baseline)
        print(f"wrote {args.baseline}: {len(result['benchmarks'])} benchmarks "
              f"({sum('instructions' in c for c in result['benchmarks'].values())} with "
              f"instruction counts) in {result['meta']['seconds']} s")
        return 0
    if base is None:
        for name, c in result["benchmarks"].items():
            print(f"{name:<62} " + " ".join(f"{k}={v:,}" for k, v in c.items()))
        return 0
    if args.only:  # compare only what ran
        base = dict(base, benchmarks={k: v for k, v in base["benchmarks"].items()
                                      if k in result["benchmarks"]
                                      or any(k.startswith(n + ".") for n in result["benchmarks"])})
    cmp_ = track.compare(base, result, threshold)
    print(track.format_comparison(cmp_, threshold))
    print(f"({len(result['benchmarks'])} benchmarks in {result['meta']['seconds']} s)")
    return 0 if cmp_.ok else 1

"""The ``wsrbench`` command line (also ``python -m wsrbench``).

Subcommands:
  cases      list the input families (or write one to a .npy file)
  backends   what backends and algorithms exist here, and why one is unavailable
  prox       run the prox on a .npy file (or a built-in family) and report clusters and rounds
  compare    time algorithms x backends x families x sizes against the sort floor
  validate   run the exactness battery on a candidate prox MODULE:FUNCTION
  reproduce  train with weight sharing on offline data, against FC and CNN baselines

Each larger subcommand lives in its own module of this package (``wsrbench.cli.compare``,
``wsrbench.cli.validate``) exposing ``add_arguments(parser)`` and
``run(args) -> int``; this file only wires them up.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import time

import numpy as np

# name -> (module, one-line help); modules are imported only when their subcommand runs
_EXTERNAL = {
    "compare": ("wsrbench.cli.compare",
                "time algorithms x backends x families x sizes against the sort floor"),
    "validate": ("wsrbench.cli.validate", "check a candidate prox MODULE:FUNCTION for exactness and scaling"),
    "reproduce": ("wsrbench.cli.reproduce", "reproduce a paper result (shuffled-digits) on offline data"),
}


def _cmd_cases(args) -> int:
    from .. import cases

    if args.family:
        x, lam = cases.make(args.family, args.d, seed=args.seed, dtype=np.dtype(args.dtype))
        if args.out:
            np.save(args.out, x)
            print(f"wrote {args.out}: {args.family}, d={args.d}, dtype={args.dtype}; use lam={lam!r}")
        else:
            print(f"{args.family}: d={args.d} lam={lam!r} x[:8]={np.array2string(x[:8], precision=4)}")
        return 0
    width = max(len(n) for n in cases.names())
    for regime in ("typical", "worst"):
        print(f"{regime} families:")
        for f in cases.families(regime):
            tag = f" [worst case of {f.worst_for}]" if f.worst_for else ""
            print(f"  {f.name:<{width}}  {f.description}{tag}")
    return 0


def _cmd_backends(args) -> int:
    from ..registry import algorithms, backends

    print("backends:")
    for b in backends():
        state = "available" if b.available else f"unavailable: {b.reason}"
        print(f"  {b.name:<11} {state}\n              algorithms: {', '.join(b.algorithms)}")
    print("algorithms:")
    for a in algorithms():
        print(f"  {a.name:<20} work {a.work}, depth {a.depth}; backends here: "
              f"{', '.join(a.available_backends) or 'none'}")
    return 0


def _cmd_prox(args) -> int:
    from .. import cases
    from ..api import prox_info
    from ..certificate import certify

    if (args.input is None) == (args.family is None):
        print("wsrbench prox: give either an input .npy file or --family NAME", file=sys.stderr)
        return 2
    if args.input is not None:
        x = np.load(args.input, allow_pickle=False)
        source = args.input
        if args.lam is None:
            print("wsrbench prox: --lam is required with an input file", file=sys.stderr)
            return 2
        lam = args.lam
    else:
        x, lam = cases.make(args.family, args.d, seed=args.seed)
        source = f"family {args.family} (d={args.d}, seed={args.seed})"
        lam = lam if args.lam is None else args.lam
    t0 = time.perf_counter()
    w, info = prox_info(x, lam, l1=args.l1, rho=args.rho, algorithm=args.algorithm, backend=args.backend)
    elapsed = time.perf_counter() - t0
    cert = certify(x, w, lam, l1=args.l1) if args.rho == 0.0 else None
    shape = "x".join(str(s) for s in np.shape(x))
    print(f"input     {source}: shape {shape}, dtype {np.asarray(x).dtype}, lam={lam:g}, "
          f"l1={args.l1:g}, rho={args.rho:g}")
    print(f"backend   {info.backend}, algorithm {info.algorithm}, {elapsed * 1e3:.2f} ms "
          f"(first call includes any JIT compile)")
    print(f"clusters  {_summary(info.clusters)}")
    print(f"rounds    {_summary(info.rounds)}")
    if cert is not None:
        print(f"certified {'yes' if cert.ok else 'NO: ' + cert.message}")
    if args.output:
        np.save(args.output, np.asarray(w))
        print(f"wrote     {args.output}")
    return 0 if cert is None or cert.ok else 1


def _summary(v) -> str:
    v = np.asarray(v)
    if v.ndim == 0:
        return str(int(v))
    return f"per row: min {v.min()}, median {int(np.median(v))}, max {v.max()} ({v.size} rows)"


def build_parser() -> argparse.ArgumentParser:
    from .. import cases

    p = argparse.ArgumentParser(
        prog="wsrbench",
        description="Exact weight-sharing prox and friends: compare algorithms and backends, "
                    "validate new ones. Run 'wsrbench COMMAND -h' for the options of a command.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    c = sub.add_parser("cases", help="list the input families, or build one",
                       description="Without --family: list the families. With it: build (x, lam) "
                                   "and print it, or save x to --out.")
    c.add_argument("--family", choices=cases.names(), help="build this family")
    c.add_argument("-d", type=int, default=1000, help="number of weights (default 1000)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--dtype", choices=["float32", "float64"], default="float64")
    c.add_argument("--out", help="save x to this .npy file")
    c.set_defaults(func=_cmd_cases)

    b = sub.add_parser("backends", help="list backends and algorithms and whether they run here")
    b.set_defaults(func=_cmd_backends)

    r = sub.add_parser("prox", help="run the prox on a .npy file or a built-in family",
                       description="Compute w = prox_{lam R + l1 |.|_1}(x) for x from a .npy file "
                                   "(1-D, or 2-D with one vector per row) or from --family, certify "
                                   "it, and print the number of clusters and rounds.")
    r.add_argument("input", nargs="?", help="input .npy file (1-D or 2-D)")
    r.add_argument("output", nargs="?", help="where to save w (.npy)")
    r.add_argument("--family", choices=cases.names(), help="use a built-in family instead of a file")
    r.add_argument("-d", type=int, default=10000, help="size for --family (default 10000)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--lam", type=float, help="regularization strength (default: the family's)")
    r.add_argument("--l1", type=float, default=0.0, help="L1 weight mu (default 0)")
    r.add_argument("--rho", type=float, default=0.0, help="training interpolation in [0, 1] (default 0)")
    r.add_argument("--algorithm", default="auto",
                   help="an algorithm of 'wsrbench backends' (pava, search_collisions, ...) or auto")
    r.add_argument("--backend", default="auto", help="numpy, numba, ... or auto (see 'wsrbench backends')")
    r.set_defaults(func=_cmd_prox)

    for name, (module, help_text) in _EXTERNAL.items():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue  # not part of this version
        sp = sub.add_parser(name, help=help_text, description=(mod.__doc__ or help_text).strip())
        mod.add_arguments(sp)
        sp.set_defaults(func=mod.run)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError, RuntimeError, FileNotFoundError) as exc:
        print(f"wsrbench {args.command}: error: {exc}", file=sys.stderr)
        return 2

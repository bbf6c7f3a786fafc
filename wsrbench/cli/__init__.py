"""The ``wsrbench`` command line (also ``python -m wsrbench``).

Subcommands:
  cases      list the input families (or write one to a .npy file)
  backends   what backends and algorithms exist here, and why one is unavailable
  prox       run the prox on a .npy file (or a built-in family) and report clusters and rounds
  compare    time algorithms x backends x families x sizes against the sort floor
  validate   run the exactness battery on a candidate prox MODULE:FUNCTION
  reproduce  the paper's torus experiment on offline data, with tuned controls
  track      instruction counts of the tracked benchmarks under valgrind, against a baseline

Each larger subcommand lives in its own module of this package (``wsrbench.cli.compare``,
``wsrbench.cli.validate``) exposing ``add_arguments(parser)`` and
``run(args) -> int``; this file only wires them up.
"""
from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
import time

import numpy as np

# name -> (module, one-line help); modules are imported only when their subcommand runs
_EXTERNAL = {
    "compare": ("wsrbench.cli.compare",
                "time algorithms x backends x families x sizes against the sort floor"),
    "validate": ("wsrbench.cli.validate", "check a candidate prox MODULE:FUNCTION for exactness and scaling"),
    "reproduce": ("wsrbench.cli.reproduce", "the paper's torus experiment (paper-torus), offline"),
    "track": ("wsrbench.cli.track",
              "count instructions of the tracked benchmarks (valgrind); --check against the baseline"),
}


def _cmd_cases(args) -> int:
    from ..bench import cases

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
    from ..core.registry import algorithms, backends

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
    from ..api import prox_info
    from ..bench import cases
    from ..core.certificate import certify

    if args.family is not None and args.input is not None and args.output is None:
        args.input, args.output = None, args.input  # wsrbench prox --family NAME OUT
    if (args.input is None) == (args.family is None):
        print("wsrbench prox: give either an input .npy file or --family NAME", file=sys.stderr)
        return 2
    output = output_path(args.output) if args.output else None  # checked before computing
    if args.input is not None:
        x = load_npy(args.input)
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
    if output:
        np.save(output, np.asarray(w))
        print(f"wrote     {output}")
    return 0 if cert is None or cert.ok else 1


def output_path(path: str) -> str:
    """The file ``np.save(path, ...)`` really writes (it appends .npy to any other name), checked
    to be writable before any work is done: a ValueError naming the problem otherwise."""
    real = path if path.endswith(".npy") else path + ".npy"
    parent = os.path.dirname(os.path.abspath(real))
    if os.path.isdir(real):
        raise ValueError(f"output {real} is a directory; give a file name")
    if not os.path.isdir(parent):
        raise ValueError(f"output directory {parent} does not exist; create it or pick another path")
    if not os.access(parent, os.W_OK) or (os.path.exists(real) and not os.access(real, os.W_OK)):
        raise ValueError(f"output {real} is not writable")
    return real


def load_npy(path: str) -> np.ndarray:
    """A numeric array from a .npy file, or a UsageError that says what the file is instead."""
    if not os.path.exists(path):
        raise UsageError(f"no such file: {path}")
    if os.path.isdir(path):
        raise UsageError(f"{path} is a directory; give a .npy file")
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if magic != b"\x93NUMPY":
        raise UsageError(f"{path} is not a .npy file; save the array with numpy.save (a text "
                         f"file converts with: numpy.save('x.npy', numpy.loadtxt('{path}')))")
    try:
        x = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise UsageError(f"{path}: cannot read it without unpickling ({_one_line(exc)}); save a "
                         f"numeric array (float32 or float64)") from None
    if x.dtype.kind == "f" and x.dtype.itemsize not in (4, 8):
        raise UsageError(f"{path} holds {x.dtype} values; only float32 and float64 are supported "
                         f"(convert with numpy.save(path, x.astype(numpy.float32)))")
    return x


def _summary(v) -> str:
    v = np.asarray(v)
    if v.ndim == 0:
        return str(int(v))
    return f"per row: min {v.min()}, median {int(np.median(v))}, max {v.max()} ({v.size} rows)"


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__
    from ..bench import cases

    p = _Parser(
        prog="wsrbench",
        description="Exact weight-sharing prox and friends: compare algorithms and backends, "
                    "validate new ones. Run 'wsrbench COMMAND -h' for the options of a command.")
    p.add_argument("--version", action="version", version=f"wsrbench {__version__}")
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
    r.add_argument("output", nargs="?", help="where to save w (.npy is appended to another name); "
                                            "with --family the one positional is the output")
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


class UsageError(Exception):
    """A mistake in how the command was called: one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (the usage stays in ``-h``); subparsers inherit it."""

    def error(self, message):
        raise UsageError(f"{message} (see '{self.prog} -h')", self.prog)


def main(argv=None) -> int:
    """Run the command line; the one place that turns every failure into a message and a status.

    Every subcommand, including ones added later, runs inside this function, so none of them can
    show a traceback: usage errors (bad options, bad input files, bad values) print one line on
    stderr and return 2; a closed pipe (``wsrbench cases | head -1``) ends quietly; anything else
    is an internal error, one line naming the exception and return 1 (``WSRBENCH_TRACEBACK=1``
    shows the traceback for a bug report).
    """
    command = "wsrbench"
    try:
        parser = build_parser()
        args, extra = parser.parse_known_args(argv)
        if args.command:
            command = f"wsrbench {args.command}"
        if extra:  # worded for the subcommand that was given them
            raise UsageError(f"unrecognized arguments: {' '.join(extra)} (see '{command} -h')")
        if not getattr(args, "func", None):
            parser.print_help()
            return 0
        status = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe surfaces here, inside the handler below
        return status
    except BrokenPipeError:
        # The reader went away (| head). Point stdout at devnull so that the interpreter's final
        # flush does not raise again, and stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:  # -h and --version exit 0 through argparse
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        # sys.exit("message") from a subcommand: the message is the error, never swallowed
        print(f"{command}: error: {_one_line(exc.code)}", file=sys.stderr)
        return 2
    except (UsageError, ValueError, TypeError, FileNotFoundError, IsADirectoryError,
            PermissionError, RuntimeError, ImportError) as exc:
        if os.environ.get("WSRBENCH_TRACEBACK"):
            raise
        if isinstance(exc, UsageError) and len(exc.args) == 2:
            exc, command = UsageError(exc.args[0]), exc.args[1]  # the parser that refused it
        print(f"{command}: error: {cli_terms(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:
        if os.environ.get("WSRBENCH_TRACEBACK"):
            raise
        print(f"{command}: internal error: {type(exc).__name__}: {_one_line(exc)} (please report "
              f"it; WSRBENCH_TRACEBACK=1 shows the traceback)", file=sys.stderr)
        return 1


def _one_line(exc) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


# Library messages name Python arguments; on the command line the same things are options.
_OPTION_WORDS = re.compile(r"\b(backend|algorithm|lam|l1|rho|dtype)=(['\"]?)([\w.+-]+)\2")


def cli_terms(exc) -> str:
    """An exception's message in command-line terms: ``backend='auto'`` becomes ``--backend auto``."""
    msg = _one_line(exc)
    msg = re.sub(r"^(lam|l1|rho) (must|=)", r"--\1 \2", msg)
    msg = _OPTION_WORDS.sub(lambda m: f"--{m.group(1)} {m.group(3)}", msg)
    return msg.replace("pass --backend auto or convert the input", "pass --backend auto")

"""The tracked benchmarks: instruction counts under callgrind beside machine-independent counts.

Design: docs/design.md#instruction-counts. Timings on a shared machine drift by tens of percent;
the number of instructions a kernel executes does not. Each *instruction* benchmark runs once,
counted, inside one ``valgrind --tool=callgrind`` process that collects only:

- ``*call_cfunc*``: Numba's dispatcher entry into compiled code (the kernel, with its argument
  unboxing; never the interpreter), and
- ``PyArray_ArgSort``: NumPy's argsort (the sort floor).

The process starts with instrumentation off (``--instr-atstart=no``: interpreter start-up, imports
and Numba's cache loads run at near-native speed) and drives callgrind with client requests
(:class:`Callgrind`, the valgrind magic instruction sequence in an executable page called through
ctypes; a no-op outside valgrind): per benchmark, instrumentation on, a 16 MiB buffer written
(the simulated caches start equally cold), the counted call, a dump named after the benchmark,
instrumentation off. Numba compiles for a pinned target (``PINNED_ENV``: haswell, AVX2, one
thread), so an uncounted warm-up process fills Numba's on-disk cache and the valgrind process only
loads machine code, and the counts do not depend on the host CPU. The cache simulation (pinned
geometry, ``CACHE_GEOMETRY``) adds last-level misses, the signal of the memory-bound sort.

Beside each instruction count, and for the benchmarks that have no instructions to count here
(numba_cuda's dry-run model, torch's dispatched ops, the sharded prox's communication), integer
counts that no machine changes: rounds, clusters, depth; GPU launches, host syncs, device-to-host
copies, modelled bytes and serial steps; distributed bytes and collectives.

The set is built from the registry (every algorithm of the numba backend) and the families of
:mod:`wsrbench.bench.cases`; what ``wsrbench compare`` caps below 1e5 runs at ``CAPPED_D``. The
command line is ``wsrbench track`` (:mod:`wsrbench.cli.track`); asv's ``track_`` benchmarks
(``benchmarks/bench_track.py``) read the same definitions.
"""
from __future__ import annotations

import fnmatch
import glob
import importlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: Numba's code generation pinned to one target: the same machine code on every host, hence the
#: same instruction counts, and one on-disk cache that a plain run fills and valgrind reuses
#: (the cache is keyed by CPU name and features; valgrind's virtual CPU differs from the host's).
#: haswell is the AVX2 level; valgrind does not run AVX-512.
PINNED_ENV = {"NUMBA_CPU_NAME": "haswell", "NUMBA_CPU_FEATURES": "", "NUMBA_NUM_THREADS": "1",
              "PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "1"}
TOGGLES = ("*call_cfunc*", "PyArray_ArgSort")
#: Written before each counted call: evicts the previous benchmark from the simulated caches.
EVICT_BYTES = 16 << 20
#: A fixed simulated cache (32 KiB L1s, 8 MiB last level), not the host's: misses comparable.
CACHE_GEOMETRY = ("--I1=32768,8,64", "--D1=32768,8,64", "--LL=8388608,16,64")
#: Counts compared with a relative threshold (they depend on compiler and library versions);
#: every other count is algorithmic and compared exactly, except the informational ones.
INSTRUCTION_KEYS = ("instructions",)
#: Recorded, never compared: simulated last-level misses depend on where allocations land
#: (address-space layout), and moved by up to 80% on small counts between two identical runs.
INFORMATIONAL_KEYS = ("ll_misses",)
DEFAULT_THRESHOLD = 0.02
SIZES = (10_000, 100_000)
#: Combinations ``compare`` caps below 1e5 (quadratic work: end_collisions, imminent_collisions on
#: its worst case) run at this size: their 1e4 calls take 0.4-0.7 s natively, minutes of CPU
#: under callgrind's cache simulation, more than the whole gate may cost.
CAPPED_D = 1_000
DTYPES = ("float32", "float64")
TYPICAL = "gaussian"
#: The prox step of a training iteration: the first layer of the paper's 784-150-10 MLP.
MLP_FIRST_LAYER = (150, 784)
#: Tool versions an instruction count depends on; counts are compared only when all agree.
#: libc: the math functions compiled kernels call (exp, log) come from it.
VERSIONED = ("valgrind", "python", "numba", "llvmlite", "numpy", "torch", "libc")


@dataclass(frozen=True)
class Benchmark:
    """One tracked measurement.

    ``setup()`` builds the inputs (seeded) and returns a function of no arguments. For an
    ``instructions`` benchmark that function is the counted call and returns the call's
    machine-independent counts (a dict of ints, computed after the call returned, uncounted);
    otherwise it returns all the benchmark's counts and runs outside valgrind.
    """
    name: str
    setup: Callable[[], Callable[[], dict]]
    instructions: bool = True


_EXTRA: list[Benchmark] = []


def register_benchmark(b: Benchmark) -> None:
    """Add a benchmark to the tracked set of this process (``--plugin`` modules call this)."""
    _EXTRA.append(b)


def _sz(d: int) -> str:
    e = int(round(np.log10(d)))
    return f"d1e{e}" if 10**e == d else f"d{d}"


def _info_counts(info) -> dict:
    out = {"rounds": int(info.rounds), "clusters": int(info.clusters)}
    if getattr(info, "depth", None) is not None:
        out["depth"] = int(info.depth)
    return out


def _prox_setup(backend, algorithm, family, d, dtype):
    def setup():
        from ..api import prox_info
        from . import cases

        x, lam = cases.make(family, d, seed=0, dtype=np.dtype(dtype))
        prox_info(x, lam, algorithm=algorithm, backend=backend)  # warm (loads the kernels)

        def call():
            return _info_counts(prox_info(x, lam, algorithm=algorithm, backend=backend)[1])
        return call
    return setup


def _floor_setup(family, d, dtype):
    def setup():
        from . import cases

        x, _ = cases.make(family, d, seed=0, dtype=np.dtype(dtype))
        np.argsort(x)

        def call():
            np.argsort(x)
            return {}
        return call
    return setup


def _state_setup(hint, d, dtype):
    """ProxState with a good hint (the order of the previous, slightly perturbed, input) or a
    useless one (a random permutation: the adaptive sort gives up and sorts from scratch)."""
    def setup():
        from ..core.warm_start import ProxState
        from . import cases

        x, lam = cases.make(TYPICAL, d, seed=0, dtype=np.dtype(dtype))
        rng = np.random.default_rng(1)
        order = (np.argsort(x, kind="stable") if hint == "good_hint" else rng.permutation(d))
        # the next step's input: every weight moved by about the gap between neighbours, as a
        # small training step does (a few inversions per element)
        y = (x + np.std(x) / d * rng.standard_normal(d)).astype(x.dtype)
        ProxState(order).prox_info(y, lam)  # warm

        def call():
            state = ProxState(order)
            info = state.prox_info(y, lam)[1]
            out = _info_counts(info)
            out["hinted_rows"] = int(state.hinted_rows)
            out["hint_moves"] = int(np.asarray(state.last_moves).sum())
            return out
        return call
    return setup


def _clustered_setup(dtype, lam=0.02, modes=False):
    """ProxState after a step on a row whose prox has formed clusters: seven rounds of a prox
    then a step that moves every weight by noise, timed on the next call, whose hint is the
    clusters (docs/design.md#numba-cpu). A gaussian row (noise 1e-4) leaves one block of all but
    133 values at lam = 0.02 (one block with outliers) and the whole row at lam = 1 (one block);
    with ``modes``, eight modes 0.1 apart and 1% of the values spread between them (noise 5e-4)
    leave eight blocks of about 12,500 values and 630 small ones (the cluster path, with
    histograms and peeling)."""
    def setup():
        from ..core.warm_start import ProxState

        rng = np.random.default_rng(0)
        d = 100_000
        step = 5e-4 if modes else 1e-4
        if modes:
            x = 0.1 * rng.integers(0, 8, d) + 1e-3 * rng.standard_normal(d)
            far = rng.random(d) < 0.01
            x[far] = 0.8 * rng.random(int(far.sum()))
            x = x.astype(dtype)
        else:
            x = (0.05 * rng.standard_normal(d)).astype(dtype)
        state = ProxState()
        for _ in range(7):
            x = (state.prox(x, lam) + step * rng.standard_normal(d)).astype(dtype)
        state.copy().prox_info(x, lam)  # warm

        def call():
            s = state.copy()  # the same hint every call
            out = _info_counts(s.prox_info(x, lam)[1])
            out["hinted_rows"] = int(s.hinted_rows)
            out["hint_moves"] = int(np.asarray(s.last_moves).sum())
            return out
        return call
    return setup


def training_weights(dtype="float32") -> np.ndarray:
    """The first-layer weights of the 784-150-10 MLP after a few SGD steps from the usual
    initialisation, deterministic (seeded): a trained-like matrix of 117,600 weights."""
    rng = np.random.default_rng(0)
    fan_in = MLP_FIRST_LAYER[1]
    W = rng.uniform(-1, 1, MLP_FIRST_LAYER) / np.sqrt(fan_in)
    for _ in range(5):  # least-squares SGD steps on random data toward a fixed random target
        a = rng.standard_normal((32, fan_in))
        g = (a @ W.T - rng.standard_normal((32, MLP_FIRST_LAYER[0]))).T @ a / 32
        W -= 0.01 * g
    return W.astype(dtype)


def _training_setup():
    def setup():
        import wsrbench

        W = training_weights()
        lam = 1e-4  # lr 0.1 x lam 1e-3: the prox strength of one step
        wsrbench.prox_info(W.reshape(-1), lam, backend="numba")

        def call():
            return _info_counts(wsrbench.prox_info(W.reshape(-1), lam, backend="numba")[1])
        return call
    return setup


def _op_setup(op, d, dtype):
    def setup():
        import wsrbench

        rng = np.random.default_rng(0)
        fn = getattr(wsrbench, op)
        w = rng.standard_normal(d).astype(dtype)
        if op == "project_ties":
            # the projection itself: the labels are prepared once (np.unique's argsort is counted
            # as the sort floor, and its instruction count moved between identical runs)
            fn = wsrbench.TieProjector(rng.integers(0, 100, d)).project
            args = (w,)
        elif op == "hard_concrete":
            args = (w, rng.uniform(0.01, 0.99, d).astype(dtype))
        else:
            args = (w,)
        fn(*args, backend="numba")

        def call():
            fn(*args, backend="numba")
            return {}
        return call
    return setup


def _model_setup(family, d, counts):
    """Setup of a count-only benchmark: counts(x, lam) -> {name: int} on the family's float32 input."""
    def setup():
        from . import cases

        def call():
            x, lam = cases.make(family, d, seed=0, dtype=np.float32)
            return counts(x, lam)
        return call
    return setup


def _gpu_setup(algorithm, family, d):
    def counts(x, lam):
        from . import gpu_model

        c = gpu_model.numba_cuda_counts(x, lam, algorithm, dtype=np.float32)
        c = {k: int(v) for k, v in c.items() if isinstance(v, (int, np.integer))}
        c["modelled_ns"] = int(round(gpu_model.modelled_seconds(c) * 1e9))
        return c
    return _model_setup(family, d, counts)


def _torch_setup(algorithm, family, d):
    def counts(x, lam):
        from . import gpu_model

        return {k: int(v) for k, v in gpu_model.torch_counts(x, lam, algorithm).items()}
    return _model_setup(family, d, counts)


def _sharded_setup(p, sizes, dtype):
    def setup():
        from . import sharded

        def call():
            tab = sharded.table([p], sizes, [dtype], timeout=600.0)
            out = {}
            for (_, d, _dt), rows in tab.items():
                infos = [r[3] for r in rows]
                out[_sz(d)] = {
                    "bytes_max_rank": int(max(i["bytes_sent"] + i["bytes_received"]
                                              for i in infos)),
                    "collectives": int(infos[0]["collectives"]),
                    "rounds": int(infos[0]["rounds"]),
                }
            return out
        return call
    return setup


def benchmarks() -> list[Benchmark]:
    """The tracked set, in the order the valgrind process runs it."""
    from ..core import registry
    from .benchtools import cap_for

    out = []
    numba = registry.get_backend("numba")
    for algorithm in numba.algorithms:
        worst = registry.get_algorithm(algorithm).worst_case
        for family in dict.fromkeys(f for f in (TYPICAL, worst) if f):
            for dtype in DTYPES:
                cap = cap_for("numba", algorithm, family, "cpu")
                sizes = SIZES if cap is None or cap.max_d >= SIZES[-1] else (CAPPED_D,)
                for d in sizes:
                    out.append(Benchmark(f"prox.numba.{algorithm}.{family}.{dtype}.{_sz(d)}",
                                         _prox_setup("numba", algorithm, family, d, dtype)))
    for dtype in DTYPES:
        for d in SIZES:
            out.append(Benchmark(f"floor.argsort.{TYPICAL}.{dtype}.{_sz(d)}",
                                 _floor_setup(TYPICAL, d, dtype)))
    for hint in ("good_hint", "useless_hint"):
        for dtype in DTYPES:
            out.append(Benchmark(f"state.numba.{hint}.{dtype}.d1e5", _state_setup(hint, 100_000,
                                                                                 dtype)))
    for dtype in DTYPES:
        out.append(Benchmark(f"state.numba.clustered_step.{dtype}.d1e5",
                             _clustered_setup(dtype, modes=True)))
    for dtype in DTYPES:
        out.append(Benchmark(f"state.numba.outliers_step.{dtype}.d1e5", _clustered_setup(dtype)))
    for dtype in DTYPES:
        out.append(Benchmark(f"state.numba.one_block_step.{dtype}.d1e5",
                             _clustered_setup(dtype, lam=1.0)))
    out.append(Benchmark("train.mlp784_150_10.first_layer_prox.float32", _training_setup()))
    for op in ("project_ties", "hard_concrete", "hard_concrete_gate"):
        for dtype in DTYPES:
            out.append(Benchmark(f"op.numba.{op}.{dtype}.d1e5", _op_setup(op, 100_000, dtype)))
    for algorithm in _backend_algorithms("numba_cuda"):
        worst = registry.get_algorithm(algorithm).worst_case
        for family in dict.fromkeys(f for f in (TYPICAL, worst) if f):
            for d in SIZES:
                if algorithm == "imminent_collisions" and family != TYPICAL and d > 10_000:
                    continue  # d - m rounds, each scripted by the reference: minutes
                out.append(Benchmark(f"gpu.numba_cuda.{algorithm}.{family}.float32.{_sz(d)}",
                                     _gpu_setup(algorithm, family, d), instructions=False))
    for algorithm in _backend_algorithms("torch"):
        worst = registry.get_algorithm(algorithm).worst_case
        for family in dict.fromkeys(f for f in (TYPICAL, worst) if f):
            # d = 1e3: a CPU call dispatches every op of the GPU algorithm (seconds at 1e4)
            out.append(Benchmark(f"ops.torch.{algorithm}.{family}.float32.d1e3",
                                 _torch_setup(algorithm, family, 1_000), instructions=False))
    out.append(Benchmark("dist.sharded.p2.gaussian.float64", _sharded_setup(2, SIZES, "float64"),
                         instructions=False))
    return out + list(_EXTRA)


def _backend_algorithms(name: str) -> tuple[str, ...]:
    from ..core import registry

    try:
        return registry.get_backend(name).algorithms
    except (KeyError, ValueError):
        return ()


def select(bs: list[Benchmark], only: list[str] | None) -> list[Benchmark]:
    if not only:
        return bs
    return [b for b in bs if any(fnmatch.fnmatchcase(b.name, p) for p in only)]


# ---------------------------------------------------------------------------------------------
# Running


def _load_plugins(plugins) -> None:
    for mod in plugins or ():
        importlib.import_module(mod)


class Callgrind:
    """Callgrind client requests from Python (``valgrind/callgrind.h`` without a C compiler).

    The request is valgrind's amd64 "special instruction" sequence (rotations of rdi by 3, 13, 61
    and 51 bits, a no-op, then ``xchg rbx, rbx``) with rax pointing at the request and its five
    arguments, the result in rdx. Outside valgrind the sequence does nothing and returns 0.
    """
    _BASE = (ord("C") << 24) | (ord("T") << 16)
    DUMP_STATS_AT, START_INSTRUMENTATION, STOP_INSTRUMENTATION = _BASE + 3, _BASE + 4, _BASE + 5
    _CODE = bytes.fromhex(
        "4889f8"  # mov rax, rdi  (the argument block)
        "31d2"  # xor edx, edx  (the default result)
        "48c1c703" "48c1c70d" "48c1c73d" "48c1c733"  # rol rdi, 3 / 13 / 61 / 51
        "4887db"  # xchg rbx, rbx  (the request)
        "4889d0"  # mov rax, rdx
        "c3")  # ret

    def __init__(self):
        import ctypes
        import mmap

        if platform.machine() not in ("x86_64", "AMD64"):
            raise RuntimeError(f"callgrind client requests are implemented for x86-64 only, "
                               f"not {platform.machine()}")
        self._page = mmap.mmap(-1, mmap.PAGESIZE,
                               prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        self._page.write(self._CODE)
        addr = ctypes.addressof(ctypes.c_char.from_buffer(self._page))
        self._fn = ctypes.CFUNCTYPE(ctypes.c_ulong, ctypes.c_void_p)(addr)
        self._ctypes = ctypes

    def request(self, code: int, arg1: int = 0) -> int:
        args = (self._ctypes.c_ulong * 6)(code, arg1, 0, 0, 0, 0)
        return self._fn(self._ctypes.addressof(args))

    def dump(self, name: str) -> None:
        buf = self._ctypes.create_string_buffer(name.encode())
        self.request(self.DUMP_STATS_AT, self._ctypes.addressof(buf))

    def start(self) -> None:
        self.request(self.START_INSTRUMENTATION)

    def stop(self) -> None:
        self.request(self.STOP_INSTRUMENTATION)


def run_counted(names: list[str], plugins: list[str], out_path: str) -> None:
    """In the child process: run the instruction benchmarks ``names`` in order, each counted
    alone between client requests (see the module docstring), and write their
    machine-independent counts to ``out_path``."""
    _load_plugins(plugins)
    table = {b.name: b for b in benchmarks()}
    cg = Callgrind()
    evict = np.empty(EVICT_BYTES // 8)
    results = {}
    for name in names:
        call = table[name].setup()  # inputs and the warm-up call, uninstrumented
        cg.start()
        evict.fill(1.0)  # simulated, not collected: every benchmark starts with cold caches
        counts = call()
        cg.dump(name)
        cg.stop()
        results[name] = counts
    with open(out_path, "w") as fh:
        json.dump(results, fh)


def _child_env() -> dict:
    env = dict(os.environ)
    env.update(PINNED_ENV)
    env.pop("NUMBA_ENABLE_CUDASIM", None)
    env.pop("NUMBA_DISABLE_JIT", None)
    return env


def _child_cmd(names, plugins, out_path) -> list[str]:
    code = ("import sys, json; from wsrbench.bench.track import run_counted; "
            "a = json.loads(sys.argv[1]); run_counted(a['names'], a['plugins'], a['out'])")
    return [sys.executable, "-c", code,
            json.dumps({"names": names, "plugins": list(plugins), "out": out_path})]


def valgrind_path() -> str | None:
    return shutil.which("valgrind")


def tool_versions() -> dict:
    import llvmlite
    import numba

    out = {"python": platform.python_version(), "numba": numba.__version__,
           "llvmlite": llvmlite.__version__, "numpy": np.__version__,
           "libc": " ".join(platform.libc_ver()).strip() or None}
    try:
        import torch
        out["torch"] = torch.__version__
    except ImportError:
        out["torch"] = None
    vg = valgrind_path()
    out["valgrind"] = (subprocess.run([vg, "--version"], capture_output=True, text=True)
                       .stdout.strip() if vg else None)
    return out


def _parse_dump(path: str) -> dict:
    events = totals = None
    trigger = ""
    with open(path) as fh:
        for line in fh:
            if line.startswith("desc: Trigger:"):
                trigger = line.split("Trigger:", 1)[1].strip()
            elif line.startswith("events:"):
                events = line.split()[1:]
            elif line.startswith("totals:"):
                totals = [int(v) for v in line.split()[1:]]
    if events is None or totals is None:
        raise RuntimeError(f"callgrind dump {path} has no events/totals line")
    ev = dict(zip(events, totals + [0] * (len(events) - len(totals))))
    out = {"instructions": ev.get("Ir", 0), "_trigger": trigger}
    if "DLmr" in ev:
        out["ll_misses"] = ev.get("ILmr", 0) + ev.get("DLmr", 0) + ev.get("DLmw", 0)
    return out


def run(*, only=None, plugins=(), cache_sim=True, log=print) -> dict:
    """Run the tracked set; returns ``{"meta": ..., "benchmarks": {name: {count: int}}}``.

    Instruction benchmarks need valgrind; without it they are listed in ``meta["skipped"]`` and
    only the machine-independent benchmarks run (``meta["instructions"]`` is False).
    """
    _load_plugins(plugins)
    bs = select(benchmarks(), only)
    counted = [b.name for b in bs if b.instructions]
    results: dict[str, dict] = {}
    import datetime

    # Imported here, not at the top: benchmarks/_track_count.py loads this file alone, outside
    # the package, on old commits (its top level needs only the standard library and NumPy).
    from ..core.provenance import commit, cpu_model

    meta = {"commit": commit(), "cpu": cpu_model(), "tools": tool_versions(),
            "date": f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
            "pinned_env": PINNED_ENV, "toggles": list(TOGGLES),
            "cache_geometry": list(CACHE_GEOMETRY) if cache_sim else None,
            "instructions": bool(counted) and valgrind_path() is not None, "skipped": {}}
    if counted and valgrind_path() is None:
        for n in counted:
            meta["skipped"][n] = "valgrind is not installed"
    elif counted:
        results.update(_run_valgrind(counted, plugins, cache_sim, log))
    for b in bs:
        if b.instructions:
            continue
        try:
            c = b.setup()()
        except (ImportError, NotImplementedError) as exc:
            meta["skipped"][b.name] = f"{type(exc).__name__}: {exc}"
            continue
        if c and all(isinstance(v, dict) for v in c.values()):  # one entry per size
            for k, v in c.items():
                results[f"{b.name}.{k}"] = v
        else:
            results[b.name] = c
        log(f"  counted {b.name}")
    return {"meta": meta, "benchmarks": dict(sorted(results.items()))}


def _run_valgrind(names, plugins, cache_sim, log) -> dict:
    with tempfile.TemporaryDirectory(prefix="wsrbench-track-") as tmp:
        counts_path = os.path.join(tmp, "counts.json")
        env = _child_env()
        log(f"warm-up (fills Numba's cache for the pinned target): {len(names)} benchmarks")
        r = subprocess.run(_child_cmd(names, plugins, counts_path), env=env)
        if r.returncode:
            raise RuntimeError(f"the warm-up run of the tracked benchmarks failed "
                               f"(exit {r.returncode})")
        out_file = os.path.join(tmp, "cg.out")
        cmd = [valgrind_path(), "--tool=callgrind", "--instr-atstart=no",
               "--collect-atstart=no", *[f"--toggle-collect={t}" for t in TOGGLES],
               f"--callgrind-out-file={out_file}"]
        if cache_sim:
            cmd += ["--cache-sim=yes", *CACHE_GEOMETRY]
        log(f"counting under callgrind: {len(names)} benchmarks in one process")
        r = subprocess.run(cmd + _child_cmd(names, plugins, counts_path), env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode:
            raise RuntimeError(f"the callgrind run failed (exit {r.returncode}):\n"
                               f"{r.stdout[-3000:]}")
        dumps = {}
        for path in glob.glob(out_file + ".*"):
            c = _parse_dump(path)
            dumps[c.pop("_trigger").removeprefix("Client Request:").strip()] = c
        missing = [n for n in names if n not in dumps]
        if missing:
            raise RuntimeError(f"no callgrind dump for {len(missing)} benchmark(s), e.g. "
                               f"{missing[0]} (found {sorted(dumps)[:3]}...)")
        with open(counts_path) as fh:
            algorithmic = json.load(fh)
        return {name: {**dumps[name], **algorithmic[name]} for name in names}


# ---------------------------------------------------------------------------------------------
# Comparing


def comparable_instructions(base_meta: dict, meta: dict) -> tuple[bool, list[str]]:
    """Whether instruction counts of two runs may be compared, and the tool differences."""
    if not (base_meta.get("instructions") and meta.get("instructions")):
        return False, ["no instruction counts in one of the runs"]
    bt, t = base_meta.get("tools", {}), meta.get("tools", {})
    diffs = [f"{k} {bt.get(k)} -> {t.get(k)}" for k in VERSIONED if bt.get(k) != t.get(k)]
    if base_meta.get("pinned_env") != meta.get("pinned_env"):
        diffs.append("pinned Numba target differs")
    if base_meta.get("cache_geometry") != meta.get("cache_geometry"):
        diffs.append("cache simulation differs")
    return not diffs, diffs


@dataclass
class Comparison:
    regressions: list  # (name, key, old, new, ratio)
    improvements: list
    missing: list  # in the baseline, not measured (and not skipped for a reason)
    new: list
    instructions_compared: bool
    tool_diffs: list

    @property
    def ok(self) -> bool:
        return not self.regressions and not self.missing


def compare(base: dict, run_: dict, threshold: float = DEFAULT_THRESHOLD) -> Comparison:
    """Regressions: an instruction count up by more than ``threshold`` (relative), or any
    change of an algorithmic count; improvements: an instruction count down by more than
    ``threshold``. Instruction counts are compared only between runs with the same tools."""
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    same_tools, diffs = comparable_instructions(base["meta"], run_["meta"])
    cpu_same = base["meta"].get("cpu") == run_["meta"].get("cpu")
    regs, imps, missing, new = [], [], [], []
    bb, rb = base["benchmarks"], run_["benchmarks"]
    skipped = run_["meta"].get("skipped", {})
    for name, old in bb.items():
        if name not in rb:
            if name not in skipped and not (name.split(".")[0] in ("prox", "floor", "state",
                                                                    "train", "op")
                                            and not run_["meta"].get("instructions")):
                missing.append(name)
            continue
        new_c = rb[name]
        for key, o in old.items():
            if key not in new_c:
                continue
            n = new_c[key]
            if key in INFORMATIONAL_KEYS:
                continue
            if key in INSTRUCTION_KEYS:
                # NumPy's sort picks its SIMD kernels from the CPU it runs on
                if not same_tools or (name.startswith("floor.") and not cpu_same):
                    continue
                ratio = n / o if o else (1.0 if n == 0 else float("inf"))
                if ratio > 1 + threshold:
                    regs.append((name, key, o, n, ratio))
                elif ratio < 1 - threshold:
                    imps.append((name, key, o, n, ratio))
            elif n != o:
                regs.append((name, key, o, n, n / o if o else float("inf")))
    new = sorted(set(rb) - set(bb))
    return Comparison(regs, imps, missing, new, same_tools, diffs)


def format_comparison(c: Comparison, threshold: float) -> str:
    lines = []
    if not c.instructions_compared:
        lines.append("instruction counts NOT compared (tools differ from the baseline's: "
                     + "; ".join(c.tool_diffs) + "); machine-independent counts only")
    for title, rows in (("REGRESSED", c.regressions), ("improved", c.improvements)):
        for name, key, o, n, ratio in rows:
            lines.append(f"{title:<9} {name} {key}: {o:,} -> {n:,} ({ratio:.4f}x)")
    for name in c.missing:
        lines.append(f"MISSING   {name}: in the baseline, not measured")
    for name in c.new:
        lines.append(f"new       {name}: not in the baseline (--update adds it)")
    verdict = ("ok" if c.ok else f"FAILED: {len(c.regressions)} regressed count(s), "
               f"{len(c.missing)} missing benchmark(s)")
    lines.append(f"{verdict} (instruction threshold {threshold:.1%}; algorithmic counts exact)")
    return "\n".join(lines)


def markdown(result: dict, command: str) -> str:
    """The instruction benchmarks of a run as a figures file: instructions per element, the
    ratio to np.argsort's instructions on the same size and dtype, last-level misses and the
    algorithmic counts (docs/design.md#figures-with-provenance; counts need no load figure)."""
    meta = result["meta"]
    tools = ", ".join(f"{k} {v}" for k, v in meta["tools"].items() if v)
    lines = ["# Instruction counts of the tracked benchmarks", "",
             f"- date: {meta.get('date', '')}", f"- commit: {meta['commit']}",
             f"- machine: {meta['cpu']} (counted on valgrind's virtual CPU, Numba code pinned "
             f"to haswell)",
             f"- tools: {tools}", f"- command: `{command}`",
             "- counts do not depend on the machine's load", "",
             "| benchmark | instructions | per element | / np.argsort | LL misses | rounds | "
             "clusters | depth |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    bench = result["benchmarks"]
    for name in sorted(bench, key=_natural):
        c = bench[name]
        if "instructions" not in c:
            continue
        m = re.search(r"\.(float32|float64)\.d1e(\d)$", name)
        per, ratio = "", ""
        if m:
            d = 10 ** int(m.group(2))
            per = f"{c['instructions'] / d:,.1f}"
            floor = bench.get(f"floor.argsort.{TYPICAL}.{m.group(1)}.d1e{m.group(2)}", {})
            if floor.get("instructions") and not name.startswith("floor."):
                ratio = f"{c['instructions'] / floor['instructions']:.2f}"
        misses = f"{c['ll_misses']:,}" if "ll_misses" in c else ""
        lines.append(f"| {name} | {c['instructions']:,} | {per} | {ratio} | {misses} | "
                     f"{c.get('rounds', '')} | {c.get('clusters', '')} | {c.get('depth', '')} |")
    return "\n".join(lines) + "\n"


def _natural(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def write_json(data: dict, path: str) -> None:
    with open(path, "w") as fh:
        json.dump(data, fh, indent=1, sort_keys=False)
        fh.write("\n")

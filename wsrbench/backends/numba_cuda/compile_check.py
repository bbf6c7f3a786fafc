"""Real CUDA compilation of every numba_cuda kernel, without a GPU (docs/design.md#real-compilation-in-ci).

    python -m wsrbench.backends.numba_cuda.compile_check [--write FILE] [--jobs N]

For every entry of ``signatures.SIGNATURES`` (every kernel x every signature it is launched
with), NVVM compiles the kernel to PTX (``numba.cuda.compile_ptx``, compute capability 8.0; PTX is
forward compatible) and ptxas assembles that PTX to SASS for sm_80 and for sm_90, reporting
registers, shared memory, stack and spills. It fails (exit status 1) if a compilation fails, if
a kernel defined in ``wsrbench/backends/numba_cuda/`` has no entry, if a kernel spills
without an entry in ``SPILLS_EXPLAINED``, if a kernel launched with a fixed block size
(``BLOCK_THREADS``) needs more registers per block than an SM has (the launch would fail), or if
a kernel's PTX holds a float64 FMA without an
entry in ``FMA_EXPLAINED`` or an approximate division (a contracted x + c P or a fastmath
division could flip a merge decision,
docs/design.md#no-fused-multiply-add-in-a-decision). No GPU and no driver are needed: NVVM,
libdevice and ptxas come from the
``nvidia-cuda-nvcc-cu12`` and ``nvidia-cuda-nvrtc-cu12`` wheels (extra ``gpucheck``). The
simulator must be off in this process (it replaces numba.cuda's compiler), so the command refuses
to run with NUMBA_ENABLE_CUDASIM=1.

What the simulator hides and this catches: a call to a plain Python function, a list or dict, an
unsupported NumPy call, a type that cannot be unified, a device function without ``inline=True``
(numba-cuda would ask the absent driver for the compute capability), register spills, and FMA
contraction (the simulator computes in Python floats, which never fuse).
"""
from __future__ import annotations

import argparse
import importlib
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor

ARCHS = ("sm_80", "sm_90")
PTX_CC = (8, 0)

# kernel key -> why its spills are acceptable (none today).
SPILLS_EXPLAINED: dict[str, str] = {}
# kernel key -> (module, attribute) of the most threads per block it is launched with, for
# kernels whose blocks are larger than launch.THREADS_PER_BLOCK: registers x threads must fit
# the 64 K registers a block may use on sm_80 and sm_90.
BLOCK_THREADS: dict[str, tuple[str, str]] = {
    "hull_tiles.tile_levels": ("wsrbench.backends.numba_cuda.hull_tiles", "MAX_THREADS"),
}
REGISTERS_PER_BLOCK = 65536
# kernel key -> why float64 FMAs in it decide nothing: they round a value, within the value
# tolerance of docs/design.md#tolerances, and no merge decision reads it.
FMA_EXPLAINED: dict[str, str] = {
    "finish.values_down": "rho's centroid + (1 - rho)(value - centroid): a block's output value",
    "gates._gate": "libdevice exp/log polynomials: gate values",
    "gates._prob": "libdevice exp/log polynomials: gate probabilities",
    "gates._sample": "libdevice exp/log polynomials: sampled gates",
    "projection._columns_dot": "dot products of the projection: values",
}
_FMA64 = re.compile(r"\bfma\.rn(?:\.ftz)?(?:\.sat)?\.f64\b")
# Approximate division (what fastmath would emit): a merge decision divides, and must round as the
# CPU's IEEE division does (docs/design.md#no-fused-multiply-add-in-a-decision).
_DIV_APPROX = re.compile(r"\bdiv\.(?:approx|full)\b")


def ptxas_path() -> str:
    """ptxas from the nvidia-cuda-nvcc-cu12 wheel (or $PTXAS, or the PATH)."""
    if os.environ.get("PTXAS"):
        return os.environ["PTXAS"]
    try:
        import nvidia.cuda_nvcc as nv

        base = list(nv.__path__)[0]
        cand = os.path.join(base, "bin", "ptxas")
        if os.path.exists(cand):
            return cand
    except ImportError:
        pass
    import shutil

    found = shutil.which("ptxas")
    if not found:
        raise SystemExit("ptxas not found: pip install nvidia-cuda-nvcc-cu12 nvidia-cuda-nvrtc-cu12 "
                         "(or: pip install -e '.[gpucheck]')")
    return found


_RE = {
    "registers": re.compile(r"Used (\d+) registers"),
    "smem": re.compile(r"(\d+) bytes smem"),
    "stack": re.compile(r"(\d+) bytes stack frame"),
    "spill_stores": re.compile(r"(\d+) bytes spill stores"),
    "spill_loads": re.compile(r"(\d+) bytes spill loads"),
}


def assemble(ptx: str, arch: str, ptxas: str) -> dict:
    """ptxas -v on one PTX module: its resource figures (the kernel is the only entry)."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "k.ptx")
        with open(src, "w") as f:
            f.write(ptx)
        res = subprocess.run([ptxas, f"-arch={arch}", "-v", src, "-o", os.path.join(tmp, "k.cubin")],
                             capture_output=True, text=True)
    if res.returncode:
        raise RuntimeError(f"ptxas -arch={arch} failed:\n{res.stderr.strip()}")
    out = {}
    for name, rx in _RE.items():
        vals = [int(v) for v in rx.findall(res.stderr)]
        out[name] = max(vals) if vals else 0
    return out


def ptx_of(disp, sig, device: bool = False) -> str:
    """PTX of a ``cuda.jit`` function for one signature, with the options it was declared with
    (``fastmath`` among them: compiling ``py_func`` bare would hide what the decorator asks)."""
    from numba import cuda

    fn = getattr(disp, "py_func", disp)
    opts = getattr(disp, "targetoptions", {}) or {}
    ptx, _ = cuda.compile_ptx(fn, sig, device=device, cc=PTX_CC,
                              fastmath=bool(opts.get("fastmath", False)))
    return ptx


def compile_one(key: str, sig: str, device: bool = False) -> dict:
    """PTX of ``key`` for ``sig`` then SASS for every arch: {arch: resources} or {"error": msg}."""

    from .signatures import parse, resolve

    try:
        ptx = ptx_of(resolve(key), parse(sig), device)
        ptxas = ptxas_path()
        fma = len(_FMA64.findall(ptx))
        approx = len(_DIV_APPROX.findall(ptx))
        return {arch: dict(assemble(ptx, arch, ptxas), fma64=fma, div_approx=approx)
                for arch in ARCHS}
    except Exception as exc:  # report every failure, not just the first
        msg = str(exc).strip().splitlines()
        return {"error": f"{type(exc).__name__}: " + " | ".join(msg[:6])}


def _job(args):
    return args, compile_one(*args)


def run(jobs: int = 2, write: str | None = None, stream=sys.stdout) -> int:
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        raise SystemExit("unset NUMBA_ENABLE_CUDASIM: the simulator replaces the compiler")
    from .signatures import DEVICE, discover, table

    t0 = time.perf_counter()
    failures = []
    kernels = {k: dev for k, (_, dev) in discover().items()}
    tab = table()
    for key, device in sorted(kernels.items()):
        if not device and key not in tab:
            failures.append(f"{key}: a kernel with no entry in signatures.SIGNATURES (add one: "
                            f"run the tests, they print the line to paste)")
    for key in tab:
        if key not in kernels and not key.startswith("wsrbench."):
            failures.append(f"{key}: in signatures.SIGNATURES but no such kernel")
    work = [(k, s, k in DEVICE) for k in sorted(tab) if k in kernels or k.startswith("wsrbench.")
            for s in tab[k]]
    rows = []
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            results = list(pool.map(_job, work))
    else:
        results = [_job(w) for w in work]
    for (key, sig, _), res in results:
        if "error" in res:
            failures.append(f"{key}({sig}): {res['error']}")
            continue
        for arch in ARCHS:
            r = res[arch]
            rows.append((key, sig, arch, r))
            if key in BLOCK_THREADS:
                mod, attr = BLOCK_THREADS[key]
                tpb = getattr(importlib.import_module(mod), attr)
                if r["registers"] * tpb > REGISTERS_PER_BLOCK:
                    failures.append(f"{key}({sig}) {arch}: {r['registers']} registers x {tpb} "
                                    f"threads per block > {REGISTERS_PER_BLOCK}: the launch "
                                    f"would fail (fewer threads per block, or fewer registers)")
            if (r["spill_stores"] or r["spill_loads"]) and key not in SPILLS_EXPLAINED:
                failures.append(f"{key}({sig}) {arch}: spills {r['spill_stores']} B stores, "
                                f"{r['spill_loads']} B loads (fix, or explain in SPILLS_EXPLAINED)")
        if res[ARCHS[0]]["fma64"] and key not in FMA_EXPLAINED:
            failures.append(f"{key}({sig}): {res[ARCHS[0]]['fma64']} float64 FMAs in its PTX (form "
                            f"products feeding a sum with numerics.mul_rn, or explain in "
                            f"FMA_EXPLAINED)")
        if res[ARCHS[0]]["div_approx"]:
            failures.append(f"{key}({sig}): {res[ARCHS[0]]['div_approx']} approximate divisions "
                            f"in its PTX (no fastmath: a decision must divide as the CPU does)")
    lines = [f"# numba_cuda kernels compiled with NVVM (PTX for cc {PTX_CC[0]}.{PTX_CC[1]}) and "
             f"ptxas -v; written by python -m wsrbench.backends.numba_cuda.compile_check --write",
             f"{'kernel':42s} {'arch':6s} {'regs':>4s} {'smem':>5s} {'stack':>5s} {'spill':>5s} "
             f"{'fma64':>5s}  signature"]
    for key, sig, arch, r in rows:
        spill = r["spill_stores"] + r["spill_loads"]
        lines.append(f"{key:42s} {arch:6s} {r['registers']:4d} {r['smem']:5d} {r['stack']:5d} "
                     f"{spill:5d} {r['fma64']:5d}  ({sig})")
    table_text = "\n".join(lines) + "\n"
    stream.write(table_text)
    n_sigs = len(work)
    most = max((r["registers"] for *_, r in rows), default=0)
    stream.write(f"\n{len(kernels)} jitted functions, {n_sigs} kernel signatures x {len(ARCHS)} "
                 f"archs compiled in {time.perf_counter() - t0:.1f} s; max registers {most}; "
                 f"spills: {sum(1 for *_, r in rows if r['spill_stores'] or r['spill_loads'])}; "
                 f"kernels with float64 FMAs: {len({k for k, *_, r in rows if r['fma64']})} "
                 f"(all in FMA_EXPLAINED unless listed below)\n")
    if write and not failures:
        with open(write, "w") as f:
            f.write(table_text)
    if failures:
        stream.write("\nFAILED:\n  " + "\n  ".join(failures) + "\n")
        return 1
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1))
    ap.add_argument("--write", metavar="FILE", help="also write the resource table to FILE")
    args = ap.parse_args(argv)
    return run(args.jobs, args.write)


if __name__ == "__main__":
    sys.exit(main())

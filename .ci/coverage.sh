#!/usr/bin/env bash
# Coverage of the NumPy, Numba and numba_cuda code, as STUMPY does it: the Numba JIT off
# (NUMBA_DISABLE_JIT=1: every @njit kernel runs as its Python source, prange as range) and the
# CUDA simulator on (NUMBA_ENABLE_CUDASIM=1: every CUDA kernel runs as Python, one thread at a time).
# tests/_nojit.py gives the few compiler-only primitives (@intrinsic bit casts, @overload
# dispatch) Python twins; tests/conftest.py installs them when the JIT is off.
#
# Usage: [PYTHON=...] .ci/coverage.sh [extra pytest arguments]
# (default PYTHON=.venv/bin/python, with the "test" and "cov" extras installed)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export NUMBA_DISABLE_JIT=1 NUMBA_ENABLE_CUDASIM=1

# Left out, with the reason:
# - torch parametrisations, tests/test_nn.py, tests/test_distributed.py, tests/test_training.py and
#   tests/test_reproduce.py (-k "not torch", --ignore): torch code is neither JIT nor simulator
#   code; the regular suite runs it.
# - tests/test_training_sharded.py: torch code, like tests/test_training.py; and the GPU first
#   run's sharded step on gloo (torch.distributed ranks in spawned processes, where the JIT-off
#   twins of tests/_nojit.py are not installed).
# - the tests of the compiled artefact, meaningless without the JIT: the dispatchers'
#   signature count (no recompilation), the disk cache of the rows drivers, the NRT allocation counters (memory per call, d = 2e5
#   as Python loops), and the instruction counts of compiled code under valgrind (wsrbench track).
# The overflow RuntimeWarning is the key flip's intended unsigned wrap-around in sort.py, which
# compiled code does silently and NumPy scalars do with a warning.
"$PY" -m coverage erase
"$PY" -m coverage run -m pytest -q -p no:cacheprovider \
    -k "not torch" --ignore=tests/test_nn.py --ignore=tests/test_distributed.py \
    --ignore=tests/test_training.py --ignore=tests/test_reproduce.py \
    --ignore=tests/test_training_sharded.py \
    --deselect tests/test_gpu_first_run.py::test_sharded_step_rank_function_on_gloo \
    --deselect tests/test_numba_backend.py::test_no_recompilation_after_warm_up \
    --deselect tests/test_numba_backend.py::test_memory_per_call \
    --deselect tests/test_numba_backend.py::test_compiled_copies_have_cache_entries_of_their_own \
    --deselect tests/test_numba_backend.py::test_rows_drivers_load_from_the_disk_cache \
    --deselect tests/test_track.py::test_planted_regression_of_5_percent_is_caught_and_named_half_a_percent_is_not \
    --deselect tests/test_track.py::test_two_runs_count_the_same_instructions \
    -W "ignore:overflow encountered in scalar:RuntimeWarning" \
    "$@"
# Every module but the torch-only ones ([tool.coverage.run] omit); fails under fail_under.
"$PY" -m coverage report

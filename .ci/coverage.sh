#!/usr/bin/env bash
# Coverage of the NumPy, Numba and numba_cuda code, as STUMPY does it: the Numba JIT off
# (NUMBA_DISABLE_JIT=1: every @njit kernel runs as its Python source, prange as range) and the
# CUDA simulator on (NUMBA_ENABLE_CUDASIM=1: every CUDA kernel runs as Python, one thread at a time).
# tests/_nojit.py gives the few compiler-only primitives (@intrinsic bit casts, @overload
# dispatch) Python twins; tests/conftest.py installs them when the JIT is off.
#
# Usage: [PYTHON=...] [COVERAGE_SET=everyday|full] .ci/coverage.sh [extra pytest arguments]
# (default PYTHON=.venv/bin/python, with the "test" and "cov" extras installed)
#
# Two sets, two floors:
# - everyday (CI's, the default): the tests not marked slow, floor 87%. As Python loops the
#   kernels run hundreds of times slower than compiled, so the whole suite takes over 20 minutes
#   here, more than CI's budget for everything; the everyday set reaches every backend and
#   algorithm once.
# - full: the whole suite, floor 91% ([tool.coverage.report] fail_under): run it before a release
#   or when a change adds code that only slow tests reach.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export NUMBA_DISABLE_JIT=1 NUMBA_ENABLE_CUDASIM=1
SET=${COVERAGE_SET:-everyday}
case "$SET" in
    everyday) SELECT=(-m "not slow"); FLOOR=(--fail-under=87) ;;
    full) SELECT=(); FLOOR=() ;;
    *) echo "COVERAGE_SET must be everyday or full, got '$SET'" >&2; exit 2 ;;
esac

# Left out, with the reason:
# - torch parametrisations, tests/test_nn.py, tests/test_distributed.py, tests/test_training.py and
#   tests/test_reproduce.py (-k "not torch", --ignore): torch code is neither JIT nor simulator
#   code; the regular suite runs it.
# - tests/test_training_sharded.py: torch code, like tests/test_training.py; and the GPU first
#   run's sharded step on gloo (torch.distributed ranks in spawned processes, where the JIT-off
#   twins of tests/_nojit.py are not installed).
# - the tests of the compiled artefact, meaningless without the JIT: the dispatchers'
#   signature count (no recompilation), the disk cache of the rows drivers, the NRT allocation
#   counters (memory per call, d = 2e5 as Python loops), and the instruction counts of compiled
#   code under valgrind (wsrbench track).
# - tests whose sizes are chosen for compiled code (the rows driver's chunking of many small and
#   a few long rows, the warm start's sampled hint at d = 2e5, the parallel long-row path above
#   its threshold): minutes each as Python loops; the same functions run on small rows in
#   tests/test_numba_backend.py and tests/test_prox.py.
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
    --deselect tests/test_track.py::test_planted_regression_of_5_percent_is_caught_and_named_and_two_runs_agree \
    --deselect tests/test_numba_backend.py::test_batched_rows_many_small_and_few_large \
    --deselect tests/test_numba_backend.py::test_warm_start_hint_poor_in_the_middle_is_sampled_and_skipped \
    --deselect tests/test_numba_backend.py::test_warm_start_useless_hint_falls_back_exactly \
    --deselect tests/test_hull_bridges.py::test_numba_parallel_long_row_matches_serial_rows \
    -W "ignore:overflow encountered in scalar:RuntimeWarning" \
    ${SELECT[@]+"${SELECT[@]}"} "$@"
# Every module but the torch-only ones ([tool.coverage.run] omit); fails under the set's floor.
"$PY" -m coverage report ${FLOOR[@]+"${FLOOR[@]}"}

#!/usr/bin/env bash
# Regenerate every performance figure the README and docs/ quote, each into docs/figures/*.md with
# its provenance header (date, commit, machine, load average during the run, command; flagged when
# the load exceeded the cores): docs/design.md#figures-with-provenance. Run it on a quiet machine.
#   scripts/figures.sh                  # everything (tens of minutes on a 2-core machine)
#   scripts/figures.sh --quick --out D  # the same commands at tiny sizes into D, in about a
#                                       # minute: checks the wiring, its numbers mean nothing
#   PYTHON=/path/to/python scripts/figures.sh
# The paper reproduction's tables (docs/figures/paper_torus_*) come from `wsrbench reproduce` (under
# 90 minutes per data set on 2 cores) and scripts/torus_scale.py (its choice of scale).
set -euo pipefail
usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; }
QUICK=0
OUT=docs/figures
while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=1 ;;
        --out) [ $# -ge 2 ] || { echo "figures.sh: --out needs a directory" >&2; exit 2; }
               OUT=$2; shift ;;
        --out=*) OUT=${1#--out=} ;;
        -h|--help) usage; exit 0 ;;
        *) echo "figures.sh: unknown argument '$1' (--quick, --out DIR)" >&2; exit 2 ;;
    esac
    shift
done
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
cd "$(dirname "$0")/.."
# inside the repository, the commands (and so the files' headers) name OUT relative to its root
case "$OUT" in "$PWD"/*) OUT=${OUT#"$PWD"/} ;; "$PWD") OUT=. ;; esac
PY=${PYTHON:-python}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if [ "$QUICK" = 1 ]; then
    TRAIN=(--iters 3 --warmup 1 --nets 784-150-10 --big '' --overhead-iters 4)
    SPEED=(--sizes 1e3 --families gaussian --dtypes float64 --runs 3)
    MODEL=(--sizes 1e3 --families gaussian)
    HULL=(--sizes 1e3 --families gaussian --repeats 3)
    PIECES=(--sizes 1e3 --families gaussian --runs 3)
else
    TRAIN=(--overhead-iters 0)
    SPEED=(--sizes 1e4,1e5,1e6,1e7)  # every family (about 10 minutes)
    MODEL=(--sizes 1e7 --families gaussian,worst_imminent_collisions,worst_pava,worst_hull_bridges)
    HULL=(--sizes 1e5,1e6 --repeats 30)
    PIECES=(--sizes 1e4,1e6,1e7 --families gaussian,quantized,worst_pava,worst_imminent_collisions
            --runs 7)
fi

# training-iteration cost of the prox and the one-off large-layer step (README "Training with
# weight sharing", docs/design.md#what-training-costs): training_bench.md
$PY scripts/training_bench.py "${TRAIN[@]}" --out "$OUT"
# the wrapper's own overhead at 4,000 and 117,600 weights: training_overhead.md
if [ "$QUICK" = 1 ]; then
    $PY scripts/training_bench.py --skip-iterations --big '' --overhead-iters 4 --out "$OUT"
else
    $PY scripts/training_bench.py --skip-iterations --big '' --out "$OUT"
fi
# Numba prox / np.argsort, interleaved medians with IQR (README "numba"): numba_speed.md
$PY scripts/numba_speed.py --only table "${SPEED[@]}" --out "$OUT/numba_speed.md"
# where one call's time goes: radix sort, PAVA, scatter and the rest against np.argsort, float32
# (docs/design.md#the-cpu-prox-against-half-a-sort): numba_pieces.md
$PY scripts/numba_speed.py --only pieces --dtypes float32 "${PIECES[@]}" --out "$OUT/numba_pieces.md"
# hull_bridges against pava and np.argsort on one thread
# (docs/design.md#what-the-parallel-algorithm-pays-on-a-cpu): hull_speed.md
NUMBA_NUM_THREADS=1 $PY scripts/hull_speed.py "${HULL[@]}" --out "$OUT/hull_speed.md"
# GPU launches, syncs, bytes and the modelled H100 time, float32 (machine-independent counts;
# docs/design.md#cost-counted-without-a-gpu): gpu_model.md
$PY -m wsrbench compare --gpu-model --dtype float32 "${MODEL[@]}" --no-progress --out "$OUT"
# Instruction counts need valgrind and minutes of CPU (its first run recompiles every kernel):
# left out of --quick, which checks the wiring only.
if [ "$QUICK" = 0 ] && command -v valgrind >/dev/null; then
    # the tracked set: per element and per np.argsort (no load dependence): track.md
    $PY -m wsrbench track --markdown "$OUT/track.md"
    # instructions per element over history: the first commit with the numba backend, and HEAD
    $PY scripts/track_history.py 1d0ad1f "$(git rev-parse --short HEAD)" --out "$OUT/track_history"
fi

#!/usr/bin/env bash
# Regenerate every performance figure the README and docs/ quote, each into docs/figures/*.md with
# its provenance header (date, commit, machine, load average during the run, command; flagged when
# the load exceeded the cores): docs/design.md#figures-with-provenance. Run it on a quiet machine.
#   scripts/figures.sh            # everything (about 15 minutes on a 2-core machine)
#   PYTHON=/path/to/python scripts/figures.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

# training-iteration cost of the prox (README "Training with weight sharing", docs/design.md#what-training-costs)
$PY scripts/training_bench.py --out docs/figures
# Numba prox / np.argsort, interleaved medians with IQR (README "numba")
$PY scripts/numba_speed.py --only table --sizes 1e4,1e5,1e6 \
    --families gaussian,gaussian_collapse,worst_pava,worst_hull_bridges \
    --out docs/figures/numba_speed.md
# instruction counts of the tracked set: per element and per np.argsort (no load dependence)
if command -v valgrind >/dev/null; then
    $PY -m wsrbench track --markdown docs/figures/track.md
fi
# instruction counts per element over history: the first commit with the numba backend, and HEAD
if command -v valgrind >/dev/null; then
    $PY scripts/track_history.py 1d0ad1f "$(git rev-parse --short HEAD)" --out docs/figures/track_history
fi

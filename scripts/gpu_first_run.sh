#!/usr/bin/env bash
# The first run on a GPU machine (docs/design.md#calibrating-the-cost-model-on-a-gpu): every step
# with its own time budget, under 8 minutes in all; results in one dated directory under --out.
#   scripts/gpu_first_run.sh --out "$OUT"        # options: python -m wsrbench.bench.gpu_first_run -h
set -u
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root" || exit 2
# The commit travels with the results even where the tree is a copy without .git.
WSRBENCH_COMMIT="${WSRBENCH_COMMIT:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}"
export WSRBENCH_COMMIT PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
# A whole-run guard above the step budgets (480 s): a device command may run 10 minutes.
exec timeout --signal=TERM --kill-after=20 540 "${PYTHON:-python3}" -m wsrbench.bench.gpu_first_run "$@"

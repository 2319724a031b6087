#!/usr/bin/env bash
# The disaster-recovery drill, as the scheduled workflow runs it.
#
#   bash scripts/dr_drill.sh                      # embedded: a platform with a trained, deployed model
#                                                 # is lost; the drill restores it into a second one
#   SOURCE_ENDPOINTS=prod.json TARGET_ENDPOINTS=dr.json bash scripts/dr_drill.sh   # AWS: into the DR region
#
# Exit 0 only if the restore verified and every deployment served its last-known-good again;
# the report (RTO/RPO measured against terraform/README.md's targets) is in $WORK/drill/drill-report.json.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-$REPO/.venv/bin/python}
WORK=${WORK:-$REPO/.state/dr-drill-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$WORK"

if [[ -n "${SOURCE_ENDPOINTS:-}" ]]; then
  "$PY" -m control dr drill --endpoints "$SOURCE_ENDPOINTS" ${TARGET_ENDPOINTS:+--target "$TARGET_ENDPOINTS"} \
    --work-dir "$WORK/drill"
  exit
fi

"$PY" -m control up --endpoints-file "$WORK/source.json" --state-dir "$WORK/source" >"$WORK/source.log" 2>&1 &
SOURCE_PID=$!
trap 'kill -INT $SOURCE_PID 2>/dev/null; wait $SOURCE_PID 2>/dev/null || true' EXIT
for _ in $(seq 300); do [[ -s "$WORK/source.json" ]] && break; sleep 1; done
[[ -s "$WORK/source.json" ]] || { echo "the source platform did not start: $WORK/source.log" >&2; exit 1; }
# Something worth restoring: a trained, approved, deployed model (the smoke test does exactly that).
MLCP_ENDPOINTS="$WORK/source.json" bash "$REPO/scripts/smoke_test.sh"
"$PY" -m control dr drill --endpoints "$WORK/source.json" --work-dir "$WORK/drill"

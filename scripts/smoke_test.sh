#!/usr/bin/env bash
# Smoke test of a deployed platform, through the CLI only: health, a small training run on a
# bundled dataset (generated from a fixed seed), approval, and a blue-green rollout of the new
# version with the built-in preview load. Exit 0 only if every step passed.
#
#   MLCP_ENDPOINTS=endpoints.json bash scripts/smoke_test.sh     # the embedded platform (`control up`)
#   MLCP_API_URL=https://... DATA_BUCKET=... bash scripts/smoke_test.sh   # AWS (SigV4, your credentials)
#
# The deploy pipeline runs it after `helm upgrade`; a failure there triggers scripts/rollback_deploy.sh.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-$REPO/.venv/bin/python}
CONTROL=("$PY" -m control)
MODEL=${SMOKE_MODEL:-smoke}
DEPLOYMENT=${SMOKE_DEPLOYMENT:-smoke-api}
VERSION_TAG=${SMOKE_DATASET_VERSION:-s$(date -u +%Y%m%d%H%M%S)}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

field() { "$PY" -c "import json,sys; print(json.load(sys.stdin)$1)"; }

if [[ -n "${MLCP_ENDPOINTS:-}" ]]; then
  DATA_BUCKET=$(field '["data_bucket"]' <"$MLCP_ENDPOINTS")
  API_URL=$(field '["api_url"]' <"$MLCP_ENDPOINTS")
  export AWS_ENDPOINT_URL=$(field '["aws_endpoint_url"]' <"$MLCP_ENDPOINTS")
  export AWS_DEFAULT_REGION=$(field '["region"]' <"$MLCP_ENDPOINTS")
  export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing
else
  API_URL=${MLCP_API_URL:?set MLCP_ENDPOINTS (embedded) or MLCP_API_URL and DATA_BUCKET (AWS)}
  DATA_BUCKET=${DATA_BUCKET:?set DATA_BUCKET to the platform data bucket}
fi

echo "1/4 health: $API_URL/healthz and the registry through the API"
"$PY" -c "import sys, urllib.request; sys.exit(urllib.request.urlopen(sys.argv[1] + '/healthz', timeout=10).status != 200)" "$API_URL"
"${CONTROL[@]}" models list --json >/dev/null

echo "2/4 training on the bundled dataset (600 rows, seed 7) → s3://$DATA_BUCKET/datasets/$MODEL/$VERSION_TAG/"
"$PY" -m workloads.training.synthetic --rows 600 --seed 7 >"$WORK/data.csv"
"$PY" - "$WORK/data.csv" "$DATA_BUCKET" "datasets/$MODEL/$VERSION_TAG/data.csv" <<'PYEOF'
import sys
import boto3
boto3.client("s3").upload_file(sys.argv[1], sys.argv[2], sys.argv[3])
PYEOF
"${CONTROL[@]}" runs start "s3://$DATA_BUCKET/datasets/$MODEL/$VERSION_TAG/data.csv" \
  --epochs 2 --workers 1 --gate-threshold 0.3 --follow --timeout 1200 --json >"$WORK/run.json"
VERSION=$(field '["model_version"]' <"$WORK/run.json")
echo "    registered $MODEL v$VERSION"

echo "3/4 approval"
"${CONTROL[@]}" models approve "$MODEL" "$VERSION" -r "smoke test of the deploy" --json >/dev/null

echo "4/4 blue-green rollout to $DEPLOYMENT with the preview load"
"${CONTROL[@]}" deployments deploy "$DEPLOYMENT" --model "$MODEL" --version "$VERSION" \
  --preview-traffic-rate 5 --watch --timeout 900 --json >"$WORK/rollout.json"
PHASE=$(field '["status"]["phase"]' <"$WORK/rollout.json")
[[ "$PHASE" == "COMPLETED" ]] || { echo "smoke test: the rollout ended $PHASE" >&2; exit 1; }
echo "smoke test passed: $MODEL v$VERSION serves on $DEPLOYMENT"

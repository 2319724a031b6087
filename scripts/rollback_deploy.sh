#!/usr/bin/env bash
# Undo a deploy whose smoke test failed: apply the platform again with the last good deploy's
# images and Lambda package (recorded by the last successful pipeline run in the state bucket,
# deploys/<env>/last-good.json), and roll the platform chart back to its previous revision.
#
#   STATE_BUCKET=... ENVIRONMENT=prod ENV_DIR=... BACKEND=... VAR_FILE=... bash scripts/rollback_deploy.sh
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RECORD=s3://${STATE_BUCKET:?set STATE_BUCKET}/deploys/${ENVIRONMENT:?set ENVIRONMENT}/last-good.json
mkdir -p "$REPO/build/last-good"
aws s3 cp "$RECORD" "$REPO/build/last-good/record.json"
python3 - "$REPO/build/last-good/record.json" "$REPO/build/last-good" <<'PYEOF'
import json, sys
record = json.load(open(sys.argv[1]))
json.dump(record["images"], open(f"{sys.argv[2]}/images.json", "w"))
print(f"rolling back to commit {record['commit']} ({record['images']})")
PYEOF
aws s3 cp "s3://$STATE_BUCKET/deploys/$ENVIRONMENT/last-good.zip" "$REPO/build/last-good/mlcp-functions.zip"
IMAGES=$REPO/build/last-good/images.json PACKAGE=$REPO/build/last-good/mlcp-functions.zip \
  bash "$REPO/scripts/terraform_deploy.sh" apply
if [[ -s "$REPO/build/chart-revision" ]]; then
  helm rollback mlcp-platform "$(cat "$REPO/build/chart-revision")" -n kube-system --wait
fi
echo "rolled back to the last good deploy"

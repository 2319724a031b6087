#!/usr/bin/env bash
# After a deploy passed its smoke test: keep its images and Lambda package as the last good deploy,
# the one scripts/rollback_deploy.sh returns to.
#
#   STATE_BUCKET=... ENVIRONMENT=prod COMMIT=<sha> bash scripts/record_deploy.sh
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX=s3://${STATE_BUCKET:?set STATE_BUCKET}/deploys/${ENVIRONMENT:?set ENVIRONMENT}
python3 - "$REPO/build/images.json" "${COMMIT:?set COMMIT}" >"$REPO/build/last-good.json" <<'PYEOF'
import json, sys
print(json.dumps({"commit": sys.argv[2], "images": json.load(open(sys.argv[1]))}))
PYEOF
aws s3 cp "$REPO/build/lambda/mlcp-functions.zip" "$PREFIX/last-good.zip"
aws s3 cp "$REPO/build/last-good.json" "$PREFIX/last-good.json"

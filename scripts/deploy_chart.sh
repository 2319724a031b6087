#!/usr/bin/env bash
# helm upgrade of the in-cluster releases (the mlcp-platform chart among them), atomically: the add-ons
# root (terraform/addons) owns them through the helm provider, so the upgrade is its apply; each
# release is `atomic` there, so a failed upgrade rolls itself back. The previous revision of the
# platform chart is kept in build/chart-revision for scripts/rollback_deploy.sh.
#
#   ADDONS_BACKEND=addons-backend.hcl PLATFORM_STATE='{bucket=...,key=...,region=...}' REGION=eu-west-1 bash scripts/deploy_chart.sh
#   RENDER_ONLY=1 bash scripts/deploy_chart.sh     # lint + render the chart offline (helm-python-sdk)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CHART=$REPO/terraform/charts/mlcp-platform
mkdir -p "$REPO/build"

if [[ -n "${RENDER_ONLY:-}" ]]; then
  HELM_PYTHON=${HELM_PYTHON:-$REPO/.venv-helm/bin/python}
  "$HELM_PYTHON" - "$CHART" "$REPO/build/mlcp-platform.yaml" <<'PYEOF'
import sys
import helm_python as helm
chart, out = sys.argv[1], sys.argv[2]
values = {"checkpoints": {"volumeHandle": "fs-0::fsap-0"}}
lint = helm.lint(chart, values=values)
if lint.get("errors"):
    sys.exit(f"helm lint: {lint['errors']}")
with helm.Chart.load(chart) as loaded:
    manifests = loaded.template(release_name="mlcp-platform", namespace="kube-system", values=values)
open(out, "w").write("\n---\n".join(manifests.values()))
print(f"rendered {len(manifests)} templates to {out}")
PYEOF
  exit 0
fi

helm history mlcp-platform -n kube-system --max 1 -o json 2>/dev/null \
  | python3 -c 'import json,sys; h=json.load(sys.stdin); print(h[-1]["revision"] if h else "")' >"$REPO/build/chart-revision" || true
cd "$REPO/terraform/addons"
terraform init -input=false -backend-config="${ADDONS_BACKEND:?set ADDONS_BACKEND}"
terraform apply -input=false -auto-approve -lock-timeout=5m \
  -var "region=${REGION:?set REGION}" -var "platform_state=${PLATFORM_STATE:?set PLATFORM_STATE}"

#!/usr/bin/env bash
# Terraform for one environment: `plan` (pull requests: the plan is printed and kept as plan.bin)
# or `apply` (main, behind the environment's approval: applies exactly the plan it makes, with the
# images by digest and the Lambda zip), then records the deploy as the last known good candidate.
#
#   ENV_DIR=terraform/envs/prod BACKEND=backend.hcl VAR_FILE=prod.tfvars bash scripts/terraform_deploy.sh plan|apply
#   OFFLINE=1 ... uses the provider mirror and no backend (what runs on the development machines: plan only)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ACTION=${1:?usage: terraform_deploy.sh plan|apply}
ENV_DIR=${ENV_DIR:-terraform/envs/example}
VAR_FILE=${VAR_FILE:-example.tfvars}
IMAGES=${IMAGES:-$REPO/build/images.json}
PACKAGE=${PACKAGE:-$REPO/build/lambda/mlcp-functions.zip}
cd "$REPO/$ENV_DIR"

if [[ -n "${OFFLINE:-}" ]]; then
  export TF_CLI_CONFIG_FILE=$REPO/terraform/terraformrc.offline.hcl
  terraform init -backend=false -input=false >/dev/null
else
  terraform init -input=false -backend-config="${BACKEND:?set BACKEND to the backend config file}"
fi

variables=(-var-file="$VAR_FILE" -var "lambda_package_path=$PACKAGE")
if [[ -f "$IMAGES" ]]; then
  variables+=(-var "image_digests=$(tr -d '\n ' <"$IMAGES")")
fi

case "$ACTION" in
  plan)
    terraform plan -input=false -lock-timeout=5m "${variables[@]}" -out=plan.bin
    terraform show -no-color plan.bin >plan.txt
    ;;
  apply)
    [[ -z "${OFFLINE:-}" ]] || { echo "apply needs AWS: unset OFFLINE" >&2; exit 2; }
    terraform plan -input=false -lock-timeout=5m "${variables[@]}" -out=plan.bin
    terraform apply -input=false -lock-timeout=5m plan.bin
    terraform output -json >"$REPO/build/terraform-outputs.json"
    ;;
  *)
    echo "unknown action $ACTION (plan|apply)" >&2
    exit 2
    ;;
esac

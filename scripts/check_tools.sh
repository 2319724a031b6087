#!/usr/bin/env bash
# Every tool the tests run, present and runnable; exit 1 naming each one that is missing.
# CI runs this after set-up (.ci/run): a missing tool fails the run by name instead of making
# tests skip (tests/skip_policy.py fails unexplained skips too).
set -uo pipefail
cd "$(dirname "$0")/.."
missing=()
need() {  # need NAME WHERE-IT-COMES-FROM COMMAND...
  local name=$1 from=$2
  shift 2
  if ! "$@" >/dev/null 2>&1; then missing+=("$name ($from)"); fi
}
need terraform "terraform 1.x on the PATH; CI: hashicorp/setup-terraform" terraform version
need prometheus "Debian package prometheus" prometheus --version
need promtool "Debian package prometheus" promtool --version
need prometheus-alertmanager "Debian package prometheus-alertmanager" prometheus-alertmanager --version
need amtool "Debian package prometheus-alertmanager" amtool --version
need node "Node.js on the PATH; CI: actions/setup-node" node --version
need npx "Node.js on the PATH; CI: actions/setup-node" npx --version
need asl-validator "npm ci (scripts/setup.sh)" node_modules/.bin/asl-validator --version
need python ".venv from requirements.txt (scripts/setup.sh)" .venv/bin/python -c "import pytest, moto, torch"
need horovodrun "scripts/install_horovod.sh (scripts/setup.sh)" .venv/bin/horovodrun --version
need check-jsonschema ".venv from requirements.txt (scripts/setup.sh)" .venv/bin/check-jsonschema --version
need checkov ".venv-checkov from requirements/checkov.txt (scripts/setup.sh)" .venv-checkov/bin/checkov --version
need helm-python-sdk ".venv-helm from requirements/helm.txt (scripts/setup.sh)" .venv-helm/bin/python -c "import helm_python"
if [ ${#missing[@]} -gt 0 ]; then
  printf 'check_tools.sh: missing tool: %s\n' "${missing[@]}" >&2
  exit 1
fi
echo "check_tools.sh: every tool the tests need is here" >&2

#!/usr/bin/env bash
# One idempotent set-up for a fresh machine: system packages, a virtualenv with the pinned
# Python dependencies, Horovod built for the installed torch, and the ASL validator.
set -euo pipefail
cd "$(dirname "$0")/.."
need_apt=()
command -v prometheus >/dev/null || need_apt+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need_apt+=(prometheus-alertmanager)
if [ ${#need_apt[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
if [ ! -x .venv/bin/python ]; then python3 -m venv .venv; fi
stamp=.venv/.requirements.sha
want=$(cat requirements.txt requirements-dev.txt scripts/install_horovod.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install --quiet -r requirements-dev.txt
  PYTHON=.venv/bin/python scripts/install_horovod.sh
  echo "$want" > "$stamp"
fi
if [ ! -x node_modules/.bin/asl-validator ]; then npm ci --silent --no-audit --no-fund; fi
# Validators whose own pins clash with the app's: each in a virtualenv of its own.
tool_venv() {  # tool_venv DIR PACKAGE==VERSION
  if [ ! -f "$1/.installed" ] || [ "$(cat "$1/.installed")" != "$2" ]; then
    rm -rf "$1" && python3 -m venv "$1" && "$1/bin/pip" install --quiet "$2" && echo "$2" > "$1/.installed"
  fi
}
tool_venv .venv-checkov checkov==3.3.30
tool_venv .venv-helm helm-python-sdk==0.2.2

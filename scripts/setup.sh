#!/usr/bin/env bash
# Installs everything amctq's build, tests, examples and benchmarks need on Debian 12.
# Idempotent: each step is skipped when what it installs is already there.
set -euo pipefail

need_apt=()
want_apt=(cmake g++ clang libclang-rt-14-dev make libxsimd-dev libeigen3-dev doctest-dev libopenmpi-dev openmpi-bin
          nlohmann-json3-dev libbenchmark-dev libgtest-dev python3-numpy python3-torch
          python3-sklearn python3-torchvision python3-pil dataset-fashion-mnist python3-venv python3-dev chromium)
for p in "${want_apt[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$p")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need_apt[*]}" >&2
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

# Python peers: a venv over Debian's python3 so that torch/sklearn (Debian) and
# onnxruntime/onnx (PyPI) live side by side.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="${AMCTQ_VENV:-$root/.venv}"
if [ ! -x "$venv/bin/python" ]; then
  /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
if ! "$venv/bin/python" -c "import onnxruntime, onnx, numpy" 2>/dev/null; then
  echo "setup: pip install onnxruntime onnx" >&2
  # Keep Debian's numpy: torch and scipy from Debian are built against it. The peers are
  # pinned to the versions the bit-exact tests were last run against, so a new release cannot
  # turn CI red on its own; raise them deliberately (AMCTQ_ORT_VERSION / AMCTQ_ONNX_VERSION).
  np=$(/usr/bin/python3 -c "import numpy; print(numpy.__version__)")
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "onnxruntime==${AMCTQ_ORT_VERSION:-1.32.0}" \
    "onnx==${AMCTQ_ONNX_VERSION:-1.23.2}" "numpy==$np" >&2
fi
# The Python package (python/, pyproject.toml) builds with nanobind through scikit-build-core, and
# its tests run under pytest; pinned like the peers above.
if ! "$venv/bin/python" -c "import nanobind, scikit_build_core, pytest" 2>/dev/null; then
  echo "setup: pip install nanobind scikit-build-core pytest" >&2
  "$venv/bin/python" -m pip install -q --disable-pip-version-check "nanobind==${AMCTQ_NANOBIND_VERSION:-3.1.0}" \
    "scikit-build-core==${AMCTQ_SKBUILD_VERSION:-1.1.2}" "pytest==${AMCTQ_PYTEST_VERSION:-9.2.0}" >&2
fi

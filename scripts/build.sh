#!/usr/bin/env bash
# Configures and builds one build tree: scripts/build.sh <dir> [extra cmake args...]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir=$1; shift
cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DAMCTQ_PYTHON="$root/.venv/bin/python" "$@" >/dev/null
cmake --build "$dir" -j"$(nproc)"

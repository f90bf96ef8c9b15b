#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: the optimised native build, then the
# same tests under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/setup.sh"
jobs=$(nproc)

echo "== build (Release, -march=native, -Werror)"
bash "$root/scripts/build.sh" "$root/build" -DAMCTQ_WERROR=ON
echo "== tests"
# The wide model sweep (label sweep, tests/model_sweep) runs on request: ctest --test-dir build -L sweep
ctest --test-dir "$root/build" --output-on-failure -j"$jobs" -LE sweep

echo "== Python package: pip install . (nanobind, scikit-build-core), then its tests against the CLI"
# Installed into a folder of the build tree, not into the venv: the tests import exactly this build.
rm -rf "$root/build/python-pip"
CMAKE_BUILD_PARALLEL_LEVEL=$jobs "$root/.venv/bin/python" -m pip install -q --disable-pip-version-check --no-deps \
  --no-build-isolation --target "$root/build/python-pip" --config-settings=build-dir="$root/build/python-build" \
  --config-settings=cmake.define.AMCTQ_WERROR=ON "$root"
PYTHONPATH="$root/build/python-pip" AMCTQ_CLI="$root/build/tools/amctq/amctq" \
  "$root/.venv/bin/python" -m pytest -q -p no:cacheprovider "$root/tests/python"

echo "== build (ASan + UBSan, -Og)"
# -Og, not -O2: with the sanitizers' instrumentation GCC takes several times longer per test
# file at -O2, and that build would be most of CI's time, while -Og slows the tests only a little
# (figures: docs/benchmarks.md, "Build times").
bash "$root/scripts/build.sh" "$root/build-asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-Og -g1 -DNDEBUG" -DAMCTQ_SANITIZE=ON -DAMCTQ_BUILD_EXAMPLES=OFF
echo "== tests under sanitizers"
# The install-and-consume test has nothing to sanitize; the peer fixtures run on their own.
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir "$root/build-asan" --output-on-failure -j"$jobs" -E "cmake_consumer"

# 30 s per target keeps CI within its 45 minutes now that the Python package builds too;
# AMCTQ_FUZZ_SECONDS=600 (or more) for a real fuzzing session.
echo "== fuzzing the ONNX, .npy, .npz and JSON config readers (libFuzzer, ASan + UBSan + LSan, ${AMCTQ_FUZZ_SECONDS:-30} s per target)"
bash "$root/fuzz/run_fuzz.sh" "${AMCTQ_FUZZ_SECONDS:-30}" "$root/build-fuzz"
echo "fuzz: 4 passed, 0 failed"

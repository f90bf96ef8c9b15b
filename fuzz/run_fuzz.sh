#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan + UBSan + LeakSanitizer) and runs each for a
# given number of seconds on a seed corpus made from small real models.
#
#   fuzz/run_fuzz.sh [SECONDS_PER_TARGET=60] [BUILD_DIR=<repo>/build-fuzz]
#
# Targets: fuzz_onnx (ONNX reader + writer round trip), fuzz_npy (.npy reader), fuzz_npz (.npz
# archive reader) and fuzz_config_json (the JSON config reader, with fuzz/config_json.dict). Exit status is non-zero if any target finds a crash, leak, timeout or
# sanitizer report; the offending input is left in BUILD_DIR/artifacts/.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
secs=${1:-60}
out=${2:-$root/build-fuzz}
cxx=${AMCTQ_FUZZ_CXX:-clang++}
command -v "$cxx" >/dev/null || { echo "run_fuzz: $cxx not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 2; }
mkdir -p "$out/artifacts"

flags=(-std=c++17 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=all -I"$root/include")

# Seed corpora: small .onnx models and .pb tensors from the onnx pip package's backend test
# data, plus amctq's own serialization of each model (a different but valid wire layout).
data=""
for d in "$root"/.venv/lib/python3*/site-packages/onnx/backend/test/data; do [ -d "$d" ] && data=$d; done
seed_onnx="$out/seed_onnx"
rm -rf "$seed_onnx" && mkdir -p "$seed_onnx"
if [ -n "$data" ]; then
  find "$data" \( -name '*.onnx' -o -name '*.pb' \) -size -64k | while read -r f; do
    cp "$f" "$seed_onnx/$(echo "$f" | md5sum | cut -c1-16)"
  done
fi
# Inputs that once failed stay in the corpus so that a fix is re-checked every run.
for f in "$root"/fuzz/regressions/*.onnx; do [ -f "$f" ] && cp "$f" "$seed_onnx/"; done
if [ -z "$data" ]; then
  echo "run_fuzz: no onnx backend test data (scripts/setup.sh makes the venv); fuzzing from an empty corpus" >&2
fi

targets=(onnx)
if [ -f "$root/include/amctq/io/npy.hpp" ] && [ -f "$root/fuzz/fuzz_npy.cpp" ]; then
  targets+=(npy)
  seed_npy="$out/seed_npy"
  rm -rf "$seed_npy" && mkdir -p "$seed_npy"
  py=${AMCTQ_PYTHON:-$root/.venv/bin/python}
  [ -x "$py" ] || py=python3
  "$py" - "$seed_npy" <<'PY'
import sys, numpy as np
out = sys.argv[1]
rng = np.random.default_rng(0)
i = 0
for dt in ["<f4", ">f4", "<f2", "|i1", "|u1", "<i4", ">i4", "<i8", ">i8"]:
    for shape in [(), (3,), (2, 3), (2, 1, 4)]:
        for order in "CF":
            a = np.asarray(rng.standard_normal(shape) * 10).astype(dt)
            a = np.asfortranarray(a) if order == "F" else np.ascontiguousarray(a)
            np.save(f"{out}/{i}.npy", a)
            i += 1
# Versions 2 and 3 headers.
from numpy.lib import format as npf
for v in [(2, 0), (3, 0)]:
    with open(f"{out}/v{v[0]}.npy", "wb") as f:
        a = np.arange(6, dtype="<f4").reshape(2, 3)
        npf.write_array(f, a, version=v)
PY
fi

targets+=(npz)
seed_npz="$out/seed_npz"
rm -rf "$seed_npz" && mkdir -p "$seed_npz"
"${py:-${AMCTQ_PYTHON:-$root/.venv/bin/python}}" - "$seed_npz" <<'PY'
import sys, numpy as np
out = sys.argv[1]
np.savez(f"{out}/two.npz", ids=np.arange(12, dtype=np.int64).reshape(3, 4), x=np.ones((3, 2), np.float32))
np.savez(f"{out}/one.npz", np.zeros((2, 2), np.float16))
np.savez(f"{out}/empty.npz")
PY

targets+=(config_json)
seed_config_json="$out/seed_config_json"
rm -rf "$seed_config_json" && mkdir -p "$seed_config_json"
# Seeds: configs as amctq writes them and as users edit them, plus nesting and duplicate keys.
cat >"$seed_config_json/default.json" <<'JSON'
{"version": 1, "batch_num": 1, "activation_offset": true, "skip_layers": [],
 "global": {"include_cle": false, "include_bias_corr": false, "convert_relu6_to_relu": false,
            "keep_first_last_layer_accuracy": false, "target": "onnxruntime"},
 "overall": {"num_bits": 8},
 "weights": {"num_bits": 8, "channel_wise": true, "wts_algo": "arq", "num_steps": 32, "num_of_iteration": 1, "preset": "amct"},
 "activation": {"num_bits": 8, "asymmetric": true, "act_algo": "ifmr", "max_percentile": 0.999999,
                "min_percentile": 0.999999, "search_range": [0.7, 1.3], "search_step": 0.01, "num_of_bins": 4096,
                "hist_bins": 2048, "percentile": 99.999},
 "bias": {"num_bits": 32},
 "layer_type": {"Gemm": {"activation": {"act_algo": "hfmg"}}},
 "layers": {"/conv1/Conv": {"op_type": "Conv", "dmq_balancer_param": 0.5},
            "/fc/Gemm": {"op_type": "Gemm", "quant_enable": false, "weights": {"wts_algo": "nuq", "num_steps": 16}}}}
JSON
printf '%s' '{"skip_layers": ["a"], "layers": {"a": {"op_type": "MatMul"}, "b": {"op_type": "AveragePool"}}}' >"$seed_config_json/skip.json"
printf '%s' '{"activation": {"act_algo": "percentile", "percentile": 99.9}, "overall": {"num_bits": 4}, "weights": {"num_bits": 8}}' >"$seed_config_json/bits.json"
printf '%s' '{"layers": {"a": {"op_type": "Conv"}, "a": {"op_type": "Gemm"}}}' >"$seed_config_json/duplicate.json"
printf '%s' '{"x": [[[[[[[[[[[[[[[[{"a": [1, {"b": null}]}]]]]]]]]]]]]]]]]}' >"$seed_config_json/nested.json"

status=0
for t in "${targets[@]}"; do
  echo "run_fuzz: building fuzz_$t" >&2
  "$cxx" "${flags[@]}" "$root/fuzz/fuzz_$t.cpp" -o "$out/fuzz_$t"
  work="$out/corpus_$t"
  mkdir -p "$work"
  echo "run_fuzz: running fuzz_$t for ${secs}s" >&2
  extra=()
  [ -f "$root/fuzz/$t.dict" ] && extra+=(-dict="$root/fuzz/$t.dict")
  if ! ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      "$out/fuzz_$t" "$work" "$out/seed_$t" "${extra[@]}" -max_total_time="$secs" -max_len=131072 -timeout=20 \
      -rss_limit_mb=2560 -print_final_stats=1 -artifact_prefix="$out/artifacts/$t-" 2>"$out/fuzz_$t.log"; then
    echo "run_fuzz: fuzz_$t FAILED; see $out/fuzz_$t.log and $out/artifacts/" >&2
    tail -60 "$out/fuzz_$t.log" >&2
    status=1
  else
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$out/fuzz_$t.log" | sed "s/^/run_fuzz: fuzz_$t /" >&2
    { grep -E "^#[0-9]+[[:space:]]+DONE" "$out/fuzz_$t.log" || true; } | tail -1 | sed "s/^/run_fuzz: fuzz_$t /" >&2
  fi
done
exit $status

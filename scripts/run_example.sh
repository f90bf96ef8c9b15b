#!/usr/bin/env bash
# The main job: install what is missing, build, quantize the bundled Fashion-MNIST CNN end to end
# with `amctq quantize` (fake-quant and deploy ONNX models + record.json), and print float vs
# quantized accuracy on the 10k test set; then the kernel-level error table on real tensors.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/setup.sh"
bash "$root/scripts/build.sh" "$root/build" >/dev/null
echo "== amctq quantize models/fmnist_cnn.onnx (outputs in build/fmnist_quantized/)"
"$root/.venv/bin/python" "$root/scripts/quantize_fmnist.py" --amctq "$root/build/tools/amctq/amctq" \
  --out "$root/build/fmnist_quantized"
images="$root/build/data/t10k-images-idx3-ubyte"
if [ ! -f "$images" ]; then
  mkdir -p "$(dirname "$images")"
  gzip -dc /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz > "$images.tmp" && mv "$images.tmp" "$images"
fi
echo
echo "== kernels on real tensors: the same images quantized with each preset, width and granularity"
"$root/build/examples/example_01_quantize_real_tensors" "$images"

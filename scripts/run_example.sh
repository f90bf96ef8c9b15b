#!/usr/bin/env bash
# The main job: install what is missing, build, and quantize real tensors end to end.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/setup.sh"
bash "$root/scripts/build.sh" "$root/build" >/dev/null
images="$root/build/data/t10k-images-idx3-ubyte"
if [ ! -f "$images" ]; then
  mkdir -p "$(dirname "$images")"
  gzip -dc /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz > "$images.tmp" && mv "$images.tmp" "$images"
fi
"$root/build/examples/example_01_quantize_real_tensors" "$images"

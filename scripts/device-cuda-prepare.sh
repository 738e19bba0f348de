#!/usr/bin/env bash
# Fills .device/ (git-ignored) with what the one-call GPU run (scripts/device-cuda.sh) needs beyond the
# working tree: this machine's Node (xz), the four Node-API headers, the runtime part of node_modules (tsx
# and its esbuild), the fixture models and the HF baseline scripts from ../shared. Run it here, then call
# the device tool with carry [".device"] and command "bash scripts/device-cuda.sh". Keeps under 64 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."
shared=${ALPACA_SHARED_DIR:-../shared}
node_bin=$(command -v node)
headers=$(dirname "$(readlink -f "$node_bin")")/../include/node
[ -f "$headers/node_api.h" ] || headers=/usr/include/node

mkdir -p .device/node-api .device/node_modules/@esbuild .device/shared/fixtures/models .device/bench
if [ ! -f .device/node.xz ] || [ "$node_bin" -nt .device/node.xz ]; then
  cp "$node_bin" .device/node && strip .device/node && xz -T2 -6 -f .device/node
fi
cp "$headers"/{node_api.h,node_api_types.h,js_native_api.h,js_native_api_types.h} .device/node-api/
rm -rf .device/node_modules/tsx .device/node_modules/esbuild .device/node_modules/@esbuild/linux-x64
cp -r node_modules/tsx node_modules/esbuild .device/node_modules/
cp -r node_modules/@esbuild/linux-x64 .device/node_modules/@esbuild/
rm -f .device/node_modules/esbuild/bin/esbuild # a copy of @esbuild/linux-x64's binary, which esbuild finds first
for model in llama-mha llama-gqa llama3-rope; do
  rm -rf ".device/shared/fixtures/models/$model"
  cp -r "$shared/fixtures/models/$model" .device/shared/fixtures/models/
done
cp "$shared"/bench/{hf_peft_baseline.py,hf_generate_baseline.py} .device/bench/

size=$(du -sm .device | cut -f1)
echo "device-cuda-prepare: .device holds ${size} MiB (the carry limit is 64 MiB)"
[ "$size" -lt 60 ] || { echo "device-cuda-prepare: .device is too large to carry" >&2; exit 1; }

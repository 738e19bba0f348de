#!/usr/bin/env bash
# The CUDA backend's one-call run on the GPU machine (../shared/DEVICE.md): build with the machine's nvcc,
# the cuda parity tests, the golden suites on cuda (f32 tight, bf16 loose), then bench/cuda-train.ts beside
# the HF baselines (hf_peft_baseline.py eager and compiled, hf_generate_baseline.py), a table last. Logs
# and JSON lines go to $OUT. Prepare .device/ first (scripts/device-cuda-prepare.sh) and carry it.
#   bash scripts/device-cuda.sh [build] [parity] [golden] [bench] [hf]     (no arguments: all of them)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/out/device-cuda}
mkdir -p "$OUT"
stages=${*:-build parity golden bench hf}
started=$(date +%s)
budget=570 # seconds: the tool stops a command at 600

xz -dkf .device/node.xz && chmod +x .device/node
export PATH=$PWD/.device:$PATH:/usr/local/cuda/bin
[ -e node_modules ] || ln -s .device/node_modules node_modules
export ALPACA_SHARED_DIR=$PWD/.device/shared NODE_API_HEADERS=$PWD/.device/node-api ALPACA_REQUIRE_CUDA=1
export CUDA_ARCHS=${CUDA_ARCHS:-90a}
export LD_LIBRARY_PATH=/usr/local/cuda/lib64:/usr/local/cuda/targets/x86_64-linux/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
: > "$OUT/stages.txt"
{ nvidia-smi; node --version; nvcc --version; } > "$OUT/machine.txt" 2>&1

wants() { [[ " $stages " == *" $1 "* ]]; }
left() { echo $((budget - ($(date +%s) - started))); }

# stage NAME SECONDS COMMAND...: runs with a time limit (never past the budget), output to $OUT/NAME.log.
stage() {
  local name=$1 limit=$2 t0 rc
  shift 2
  [ "$(left)" -lt "$limit" ] && limit=$(left)
  if [ "$limit" -lt 20 ]; then
    echo "$name: skipped, out of time" | tee -a "$OUT/stages.txt"
    return 1
  fi
  t0=$(date +%s)
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  rc=$?
  echo "$name: exit $rc in $(($(date +%s) - t0)) s$([ $rc = 124 ] && echo ' (timed out)')" | tee -a "$OUT/stages.txt"
  return $rc
}

# node --test summary lines of a log
counts() { grep -E '^# (tests|pass|fail|skipped) ' "$OUT/$1.log" | tr '\n' ' '; echo; }

if wants build; then
  if ! stage build 200 node native/cuda/build.mjs --strict --force; then
    tail -n 40 "$OUT/build.log"
    exit 1
  fi
fi
if wants parity; then
  stage parity 150 node --import tsx --test --test-reporter=tap test/backend/cuda-parity.test.ts
  echo "parity: $(counts parity)" | tee -a "$OUT/stages.txt"
  grep -E '^\s*(not ok|error:)' "$OUT/parity.log" | head -n 30
fi
if wants golden; then
  stage golden 150 node --import tsx --test --test-reporter=tap test/golden/llama-engine.test.ts test/backend/cuda-golden-bf16.test.ts
  echo "golden: $(counts golden)" | tee -a "$OUT/stages.txt"
  grep -E '^\s*(not ok|error:)' "$OUT/golden.log" | head -n 30
fi
# Benchmarks in order of importance, ours beside its reference, so a run out of time loses the least.
for f in cuda hf_eager hf_compile hf_generate; do : > "$OUT/$f.jsonl"; done
ours() {
  wants bench || return 0
  stage "ours-$1" 100 node --import tsx bench/cuda-train.ts --only "$1"
  grep "^{" "$OUT/ours-$1.log" 2>/dev/null >> "$OUT/cuda.jsonl"
}
hf() { # hf NAME JSONL SECONDS SCRIPT ARGS...
  wants hf || return 0
  local name=$1 file=$2 limit=$3
  shift 3
  stage "$name" "$limit" python3 "$@"
  grep "^{" "$OUT/$name.log" 2>/dev/null >> "$OUT/$file.jsonl"
}
ours 7b-qv-r8-mb8-s256
hf hf-eager-qv hf_eager 90 .device/bench/hf_peft_baseline.py --only 7b-qv-r8-mb8-s256
hf hf-compile-qv hf_compile 180 .device/bench/hf_peft_baseline.py --only 7b-qv-r8-mb8-s256 --compile
ours 7b-all-r16-mb4-s512
hf hf-eager-all hf_eager 90 .device/bench/hf_peft_baseline.py --only 7b-all-r16-mb4-s512
ours decode-7b
hf hf-generate hf_generate 90 .device/bench/hf_generate_baseline.py

echo
cat "$OUT/stages.txt"
echo
node --import tsx bench/cuda-table.ts "$OUT/cuda.jsonl" "$OUT/hf_eager.jsonl" "$OUT/hf_compile.jsonl" "$OUT/hf_generate.jsonl" | tee "$OUT/table.md"

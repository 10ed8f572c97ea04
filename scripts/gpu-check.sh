#!/usr/bin/env bash
# GPU check for karl-backend-cubecl on a CUDA machine (budget: under 8 minutes in total).
#   1. builds the crate with --features cuda (tests + the benchmark example, release profile
#      for the example);
#   2. runs the differential conformance suite and the golden model forward on the GPU;
#   3. runs the karl_small encode/decode benchmark (256×256, batch 1 and 32, f32 and bf16) and prints
#      its table.
# Usage: scripts/gpu-check.sh [--no-bench]. Logs go to target/gpu-check/. It builds on the GPU
# machine (needs crates.io there); for a machine without network use scripts/gpu-pack.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

LOG=target/gpu-check
mkdir -p "$LOG"
START=$(date +%s)
step() { printf '\n== %s (t+%ds)\n' "$1" "$(( $(date +%s) - START ))"; }

step "environment"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
if ! ldconfig -p | grep -q 'libcuda\.so'; then echo "libcuda.so not found: no NVIDIA driver" >&2; exit 2; fi
if ! ldconfig -p | grep -q 'libnvrtc'; then
  # NVRTC often lives under the CUDA toolkit without an ldconfig entry.
  for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do
    if ls "$d"/libnvrtc.so* >/dev/null 2>&1; then export LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"; break; fi
  done
fi
ls ${LD_LIBRARY_PATH//:/ } 2>/dev/null | grep -q nvrtc || ldconfig -p | grep -q libnvrtc || { echo "libnvrtc not found (CUDA NVRTC runtime)" >&2; exit 2; }

step "build (cuda): tests and bench example"
timeout 300 cargo build -p karl-backend-cubecl --features cuda --tests 2>&1 | tail -3
timeout 300 cargo build -p karl-backend-cubecl --features cuda --release --example bench_model 2>&1 | tail -3

step "conformance suite + golden forward on CUDA"
# --nocapture keeps the golden test's per-tensor max |diff| lines and the skip messages.
timeout 240 cargo test -p karl-backend-cubecl --features cuda -- --test-threads 4 --nocapture 2>&1 | tee "$LOG/tests.log" | grep -E '^(test |test result|skipped|cuda: )|panicked|max \|diff\|' | tail -80
if grep -q 'skipped:' "$LOG/tests.log"; then echo "some tests were SKIPPED (runtime unavailable): see $LOG/tests.log" >&2; exit 3; fi
grep -q 'test result: FAILED' "$LOG/tests.log" && { echo "tests FAILED: see $LOG/tests.log" >&2; exit 1; }

if [[ "${1:-}" != "--no-bench" ]]; then
  step "benchmark (karl_small, 256x256, batch 1 and 32, f32 and bf16)"
  timeout 180 cargo run -q --release -p karl-backend-cubecl --features cuda --example bench_model -- --device cuda --precision f32,bf16 --batch 1,32 --iters 5 2>"$LOG/bench.err" | tee "$LOG/bench.md" || { tail -20 "$LOG/bench.err"; exit 1; }
fi

step "done"

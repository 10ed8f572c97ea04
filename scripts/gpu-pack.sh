#!/usr/bin/env bash
# Packs the CUDA checks for a GPU machine that has no network (no crates.io, no cargo build
# there): builds, here, the cubecl conformance tests, the golden forward / training-step tests,
# bench_model and `karl` with --features cuda (release, stripped), adds the golden mini files
# they read and a runner, and writes DIR/pack.tar.zst plus DIR/run.sh. The zstd binary (and
# its liblz4) goes along in DIR/z, since a bare CUDA image may lack zstd.
# On the GPU machine, from the repo root: `bash DIR/run.sh` (logs under /tmp/gpu-logs, summary
# on stdout, exit 1 naming any failed step; OUT=dir also gets logs.tar.gz). About 52 MB packed; the
# same checks took about 95 s on an H200.
# Usage: scripts/gpu-pack.sh DIR   (KARL_SHARED: where golden/ is; default ../shared)
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:?usage: scripts/gpu-pack.sh DIR}"
shared="${KARL_SHARED:-../shared}"
mini="$shared/golden/mini"
[ -f "$mini/weights.safetensors" ] || { echo "no golden mini files under $mini (set KARL_SHARED)" >&2; exit 2; }
for tool in zstd python3 strip; do
  command -v "$tool" >/dev/null || { echo "$tool is needed here (zstd: apt-get install zstd)" >&2; exit 2; }
done

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/shared/golden/mini" "$dir/z"

# test and example executables, found from cargo's own artifact messages
trap 'rm -rf "$stage"; [ -f "$dir/build.log" ] && tail -20 "$dir/build.log" >&2' ERR
cargo test --release --no-run -p karl-backend-cubecl --features cuda --message-format=json 2>"$dir/build.log" |
  python3 -c '
import json, sys
for line in sys.stdin:
    try:
        m = json.loads(line)
    except ValueError:
        continue
    if m.get("reason") == "compiler-artifact" and m.get("executable"):
        name = m["target"]["name"]
        if name in ("karl_backend_cubecl", "golden_forward", "golden_train_step", "bench_model"):
            print(name, m["executable"])' |
  while read -r name exe; do strip -o "$stage/bin/$name" "$exe"; done
cargo build --release -p karl-cli --features cuda 2>>"$dir/build.log"
strip -o "$stage/bin/karl" target/release/karl
for b in karl_backend_cubecl golden_forward golden_train_step bench_model karl; do
  [ -x "$stage/bin/$b" ] || { echo "missing executable $b" >&2; exit 1; }
done
# the golden files the tests read (forward_flat_square is left out to stay under 64 MiB;
# run.sh runs only the astronaut forward)
cp "$mini"/{config.json,weights.safetensors,train_step.json,train_step.safetensors,forward_astronaut.safetensors} \
  "$stage/shared/golden/mini/"

tar -C "$stage" -cf - bin shared | zstd -19 -T0 -q -f -o "$dir/pack.tar.zst"
cp "$(command -v zstd)" "$dir/z/"
lz4=$(ldd "$(command -v zstd)" | awk '/liblz4/ {print $3}')
[ -n "$lz4" ] && cp -L "$lz4" "$dir/z/"

cat > "$dir/run.sh" <<'RUN'
#!/bin/bash
# CUDA checks from a pack made by scripts/gpu-pack.sh (no build on this machine). Exits 1,
# naming the failed steps, if any step fails, times out, or a test skips (no CUDA device).
G=$(cd "$(dirname "$0")" && pwd); L=/tmp/gpu-logs; mkdir -p "$L"
S=$(date +%s); failed=()
(cd "$G" && LD_LIBRARY_PATH="$G/z" "$G/z/zstd" -d -q -c pack.tar.zst | tar -xf -) || { echo "unpack of $G/pack.tar.zst failed"; exit 1; }
export KARL_SHARED="$G/shared"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || failed+=("nvidia-smi")
step() { # name log timeout command...
  local name=$1 log=$2 t=$3; shift 3
  timeout "$t" "$@" > "$L/$log" 2>&1; local rc=$?
  echo "$name: rc=$rc at $(( $(date +%s) - S ))s (log $L/$log)"
  if [ $rc -ne 0 ]; then failed+=("$name (rc $rc)"); elif grep -qE "skipped:|unavailable" "$L/$log"; then failed+=("$name (skipped: no CUDA device)"); fi
}
step conformance conformance.log 120 "$G/bin/karl_backend_cubecl" --test-threads 4 --nocapture
step "golden train step" golden_train_step.log 60 "$G/bin/golden_train_step" --nocapture
step "golden forward" golden_forward.log 60 "$G/bin/golden_forward" astronaut --nocapture
step "karl train" train.log 60 "$G/bin/karl" train --device cuda --preset karl_pixel_tiny --data synthetic \
  --batch 32 --steps 200 --checkpoint-every 0 --out /tmp/gpu-train
step bench bench.md 120 "$G/bin/bench_model" --device cuda --precision f32,bf16 --batch 1,32 --iters 3
grep -hE "^test result|FAILED|panicked|checked in|worst|skipped" "$L"/conformance.log "$L"/golden_*.log | head -30
python3 -c "
import json; v = [json.loads(l) for l in open('/tmp/gpu-train/metrics.jsonl')]
s = [x['seconds'] for x in v[50:]]; print('karl_pixel_tiny batch 32: %.1f ms per step (steps 51-%d)' % (1e3 * sum(s) / len(s), len(v)))" 2>/dev/null
grep -v "^cuda" "$L/bench.md"
[ -n "${OUT:-}" ] && tar -czf "$OUT/logs.tar.gz" -C /tmp gpu-logs
if [ ${#failed[@]} -gt 0 ]; then printf 'FAILED: %s\n' "${failed[@]}"; exit 1; fi
echo "all CUDA checks passed"
RUN
chmod +x "$dir/run.sh"
ls -la "$dir" "$dir/z"

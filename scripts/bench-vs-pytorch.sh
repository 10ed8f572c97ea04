#!/usr/bin/env bash
# Times karl-rs's CPU backend and the official PyTorch code on the same work in one run,
# alternating the two (PyTorch, karl-rs, PyTorch, karl-rs, …) at each thread count, and prints
# one table of medians and ratios: karl_small inference (one 256² image, T = 256) by stage,
# the golden-mini training step at batch 1 and 8, and the built-in model's training images/s
# (karl-rs only; the official code has no pixel base).
#
#   scripts/bench-vs-pytorch.sh [options] OFFICIAL_TREE
#
# OFFICIAL_TREE is a checkout of github ShivamDuggal4/karl (commit 5c1a569, "minor cleanup");
# it is run in place, never edited or copied. The Python side (scripts/bench_vs_pytorch.py)
# patches at run time what keeps the official code off a CPU-only machine without its
# checkpoints (get_device() on the CPU, .cuda(), the base-weight load: random weights).
#
# Options:
#   -r, --rounds N      alternations per work and thread count (default 3)
#   -n, --reps N        timed repetitions in each process, after one untimed warm-up
#                       (default: karl_small 1, golden batch 1: 3, batch 8: 1, built-in: 3)
#   -t, --threads LIST  thread counts, comma-separated (default 1,2)
#   -p, --parts LIST    from model, golden1, golden8, pixel (default all four)
#   -b, --budget-a T    phase-(a) budget of the golden-mini step on both sides (default 192,
#                       the mean of the official draw 16…368, for steady medians from few
#                       steps); "draw" keeps each side's own random draw
#   -o, --results FILE  keep the raw times here (default: a temporary file, path printed)
#   -h, --help
# Environment: KARL_BENCH_VENV (the venv, default .venv-bench in the repository; made with
# `pip install torch numpy omegaconf einops` from PyPI on first use: about 5 GB, several
# minutes), KARL_BENCH_PYTHON (the Python that makes it, default python3), KARL_SHARED (the
# folder with golden/, default ../shared), CARGO_TARGET_DIR (honoured).
#
# Quick check (a few minutes on a quiet machine):
#   scripts/bench-vs-pytorch.sh -r 1 -t 1 -p golden1 /path/to/karl
set -euo pipefail
# The whole script is one block, so that bash has read all of it before it starts: editing
# the file during a run cannot change the run.
{

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OFFICIAL_COMMIT=5c1a5693edf87228f988f363b2acdb7eb826a889
ROUNDS=3
REPS=""
THREADS=1,2
PARTS=model,golden1,golden8,pixel
BUDGET_A=192
RESULTS=""
VENV="${KARL_BENCH_VENV:-$ROOT/.venv-bench}"
BASE_PY="${KARL_BENCH_PYTHON:-python3}"
export KARL_SHARED="${KARL_SHARED:-$(cd "$ROOT/.." && pwd)/shared}"

die() { echo "bench-vs-pytorch: $*" >&2; exit 2; }
usage() {
    if [ "${1:-0}" = 0 ]; then sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
    else sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; fi
    exit "${1:-0}"
}

OFFICIAL=""
while [ $# -gt 0 ]; do
    case "$1" in
        -r|--rounds) ROUNDS="$2"; shift 2 ;;
        -n|--reps) REPS="$2"; shift 2 ;;
        -t|--threads) THREADS="$2"; shift 2 ;;
        -p|--parts) PARTS="$2"; shift 2 ;;
        -b|--budget-a) BUDGET_A="$2"; shift 2 ;;
        -o|--results) RESULTS="$2"; shift 2 ;;
        -h|--help) usage 0 ;;
        -*) echo "unknown option $1" >&2; usage 2 ;;
        *) [ -z "$OFFICIAL" ] || die "one OFFICIAL_TREE only (got $OFFICIAL and $1)"; OFFICIAL="$1"; shift ;;
    esac
done
[ -n "$OFFICIAL" ] || { echo "bench-vs-pytorch: OFFICIAL_TREE missing" >&2; usage 2; }
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "--rounds takes a positive number, got $ROUNDS"
[ -z "$REPS" ] || [[ "$REPS" =~ ^[1-9][0-9]*$ ]] || die "--reps takes a positive number, got $REPS"
[[ "$THREADS" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "--threads takes e.g. 1,2, got $THREADS"
for p in ${PARTS//,/ }; do
    case "$p" in model|golden1|golden8|pixel) ;; *) die "unknown part $p (model, golden1, golden8, pixel)" ;; esac
done
if [ "$BUDGET_A" = draw ]; then BUDGET_A=0
elif ! [[ "$BUDGET_A" =~ ^[1-9][0-9]*$ ]] || [ "$BUDGET_A" -gt 512 ]; then
    die "--budget-a takes 1…512 or draw, got $BUDGET_A"
fi

# ---- the official tree
[ -d "$OFFICIAL" ] || die "OFFICIAL_TREE $OFFICIAL is not a directory (a checkout of github ShivamDuggal4/karl at ${OFFICIAL_COMMIT:0:7})"
OFFICIAL="$(cd "$OFFICIAL" && pwd)"
for f in kolmogorov_tokenizers/__init__.py kolmogorov_tokenizers/karl_vqgan.py modules/base_tokenizers.py \
         modules/latent_distillation_modules.py base_tokenizers/configs/vqgan.yaml \
         base_tokenizers/taming/models/vqgan.py utils/misc.py; do
    [ -f "$OFFICIAL/$f" ] || die "$OFFICIAL is not the official KARL code: $f is missing (want github ShivamDuggal4/karl at ${OFFICIAL_COMMIT:0:7})"
done
grep -q "class KARLTokenizer" "$OFFICIAL/kolmogorov_tokenizers/karl_vqgan.py" \
    || die "$OFFICIAL/kolmogorov_tokenizers/karl_vqgan.py has no KARLTokenizer: not the official KARL code"
OFFICIAL_REV="$(git -C "$OFFICIAL" rev-parse HEAD 2>/dev/null || echo unknown)"
if [ "$OFFICIAL_REV" != "$OFFICIAL_COMMIT" ]; then
    echo "bench-vs-pytorch: warning: $OFFICIAL is at $OFFICIAL_REV, not ${OFFICIAL_COMMIT:0:7}" >&2
fi
if [[ ",$PARTS," == *,golden* ]] && [ ! -f "$KARL_SHARED/golden/mini/config.json" ]; then
    die "golden mini config not found: $KARL_SHARED/golden/mini/config.json (set KARL_SHARED)"
fi

# ---- the Python venv
PY="$VENV/bin/python"
check_venv() { "$PY" -c 'import torch, numpy, omegaconf, einops' >/dev/null 2>&1; }
if ! check_venv; then
    echo "== setting up $VENV: pip install torch numpy omegaconf einops (PyPI; about 5 GB, several minutes)" >&2
    t0=$SECONDS
    if [ ! -x "$PY" ]; then
        "$BASE_PY" -m venv "$VENV" || die "could not make a venv at $VENV with $BASE_PY -m venv"
    fi
    if ! "$PY" -m pip install --disable-pip-version-check torch numpy omegaconf einops >"$VENV/pip-install.log" 2>&1; then
        tail -n 20 "$VENV/pip-install.log" >&2
        die "pip install failed (full log: $VENV/pip-install.log)"
    fi
    check_venv || die "$VENV: torch does not import after pip install: $("$PY" -c 'import torch' 2>&1 | tail -n 1)"
    echo "== venv ready in $((SECONDS - t0)) s" >&2
fi
TORCH_VERSION="$("$PY" -c 'import torch; print(torch.__version__)')"

# ---- karl-rs benches
echo "== building karl-core benches (cargo bench --no-run)" >&2
BINS="$(cd "$ROOT" && cargo bench -p karl-core --bench model --bench train --no-run --message-format=json \
    | python3 -c '
import json, sys
for line in sys.stdin:
    try: m = json.loads(line)
    except ValueError: continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and "bench" in m["target"]["kind"]:
        print(m["target"]["name"], m["executable"])')" || die "cargo bench --no-run failed (run it by hand to see why)"
MODEL_BIN="$(awk '$1 == "model" {print $2}' <<<"$BINS")"
TRAIN_BIN="$(awk '$1 == "train" {print $2}' <<<"$BINS")"
[ -x "$MODEL_BIN" ] && [ -x "$TRAIN_BIN" ] || die "bench executables not found (cargo said: $BINS)"
KARL_REV="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
git -C "$ROOT" diff --quiet HEAD -- karl-core 2>/dev/null || KARL_REV="$KARL_REV + uncommitted changes in karl-core"

# ---- the runs
[ -n "$RESULTS" ] || RESULTS="$(mktemp /tmp/bench-vs-pytorch.XXXXXX)"
: >"$RESULTS"
LOG="$RESULTS.log"
: >"$LOG"
reps_for() {
    if [ -n "$REPS" ]; then echo "$REPS"; return; fi
    case "$1" in model) echo 1 ;; golden1) echo 3 ;; golden8) echo 1 ;; pixel) echo 3 ;; esac
}
# run IMPL THREADS LABEL CMD…: runs CMD with THREADS threads, keeps its `times`/`peak RSS` lines
run() {
    local impl="$1" t="$2" label="$3"; shift 3
    local t0=$SECONDS out
    printf '   %-8s %-34s' "$impl" "$label" >&2
    echo "### $impl $t $label: $*" >>"$LOG"
    if ! out="$(OMP_NUM_THREADS=$t MKL_NUM_THREADS=$t RAYON_NUM_THREADS=$t "$@" 2>>"$LOG")"; then
        echo "$out" >>"$LOG"
        echo >&2
        tail -n 15 "$LOG" >&2
        die "$impl $label failed (log: $LOG)"
    fi
    echo "$out" >>"$LOG"
    grep -E '^(times |peak RSS )' <<<"$out" | sed "s/^/$impl $t /" >>"$RESULTS"
    echo " $((SECONDS - t0)) s" >&2
}
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
START="$(date -u '+%Y-%m-%d %H:%M UTC')"
for round in $(seq 1 "$ROUNDS"); do
    for t in ${THREADS//,/ }; do
        echo "== round $round/$ROUNDS, $t thread(s) (load $(cut -d' ' -f1 /proc/loadavg))" >&2
        for part in ${PARTS//,/ }; do
            n="$(reps_for "$part")"
            case "$part" in
                model)
                    run torch "$t" "karl_small inference" \
                        "$PY" "$ROOT/scripts/bench_vs_pytorch.py" run --official "$OFFICIAL" --work model \
                        --threads "$t" --reps "$n" --warmup 1
                    run karl "$t" "karl_small inference" "$MODEL_BIN" --bench karl_small --warmup 1 --runs "$n" --times ;;
                golden1|golden8)
                    run torch "$t" "golden-mini step, batch ${part#golden}" \
                        "$PY" "$ROOT/scripts/bench_vs_pytorch.py" run --official "$OFFICIAL" --work "$part" \
                        --threads "$t" --reps "$n" --warmup 1 --budget-a "$BUDGET_A"
                    budget=(); [ "$BUDGET_A" = 0 ] || budget=(--budget-a "$BUDGET_A")
                    run karl "$t" "golden-mini step, batch ${part#golden}" \
                        "$TRAIN_BIN" --bench --parts "$part" --steps "$n" "${budget[@]}" --times ;;
                pixel)
                    run karl "$t" "built-in model step, batch 16" "$TRAIN_BIN" --bench --parts pixel16 --steps "$n" --times ;;
            esac
        done
    done
done

echo
echo "karl-rs $KARL_REV (as built at the start) vs official ${OFFICIAL_REV:0:7} with torch $TORCH_VERSION (float32, CPU)"
echo "$START; $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) cores; load average $LOAD_BEFORE at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo "rounds $ROUNDS (PyTorch and karl-rs alternating), parts $PARTS, golden phase-(a) budget $([ "$BUDGET_A" = 0 ] && echo 'drawn' || echo "$BUDGET_A"); medians of all timed runs"
echo
python3 "$ROOT/scripts/bench_vs_pytorch.py" report "$RESULTS"
echo
echo "raw times: $RESULTS (log: $LOG)"
exit 0
}

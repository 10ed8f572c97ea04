#!/bin/sh
# Runs one fuzz target's libFuzzer binary (built with `cargo fuzz build -a`) on its corpus.
# Usage: fuzz/run-target.sh TARGET SECONDS   (from any directory; log in fuzz/logs/TARGET.log)
set -eu
cd "$(dirname "$0")"
t=$1
secs=${2:-600}
. ./max-len.sh
mkdir -p logs artifacts/"$t"
exec target/x86_64-unknown-linux-gnu/release/"$t" corpus/"$t" \
    -artifact_prefix=artifacts/"$t"/ -max_total_time="$secs" -rss_limit_mb=2048 -max_len="$max_len" \
    -timeout=30 -print_final_stats=1 >> logs/"$t".log 2>&1

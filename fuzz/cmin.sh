#!/bin/sh
# Minimises corpus/TARGET in place (what `cargo fuzz cmin` does): libFuzzer -merge=1 of the old
# corpus into an empty one keeps the smallest set of inputs with the same coverage.
set -eu
cd "$(dirname "$0")"
t=$1
. ./max-len.sh
old=corpus/$t.old
rm -rf "$old" && mv corpus/"$t" "$old" && mkdir corpus/"$t"
target/x86_64-unknown-linux-gnu/release/"$t" -merge=1 -rss_limit_mb=2048 -max_len="$max_len" -timeout=30 \
    corpus/"$t" "$old" >> logs/"$t"-cmin.log 2>&1
rm -rf "$old"
echo "$t: $(ls corpus/"$t" | wc -l) files, $(du -sb corpus/"$t" | cut -f1) bytes"

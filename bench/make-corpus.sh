#!/bin/sh
# make-corpus.sh OUT [MB] - the tokenizer benchmark's text: English prose (the shared docs and
# the perplexity text), Chinese (bench/data/zh.txt) and C code (this repository's sources),
# interleaved in blocks of about 4 KB until OUT holds MB megabytes (default 8).
set -e
out=$1
mb=${2:-8}
root=$(cd "$(dirname "$0")/.." && pwd)
shared=${DS_SHARED:-$root/../shared}
tmp=$(mktemp -d)
cat "$shared"/docs/*.md "$shared"/testdata/text/ppl.txt > "$tmp/en" 2>/dev/null || cat "$root"/docs/*.md > "$tmp/en"
cat "$root"/src/*/*.c "$root"/src/*/*/*.c "$root"/include/ds/*.h 2>/dev/null > "$tmp/code"
cp "$root/bench/data/zh.txt" "$tmp/zh"
: > "$out"
i=0
while [ "$(wc -c < "$out")" -lt $((mb * 1024 * 1024)) ]; do
    for kind in en zh code; do
        size=$(wc -c < "$tmp/$kind")
        blocks=$(( (size + 4095) / 4096 ))
        dd if="$tmp/$kind" bs=4096 skip=$((i % blocks)) count=1 status=none >> "$out"
    done
    i=$((i + 1))
done
rm -rf "$tmp"

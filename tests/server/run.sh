#!/bin/sh
# run.sh DEEPSEEK_BIN - the openai-client suite (tests/server/openai.test.mjs) under node's test
# runner. Exit 77 (skipped) when node or the pinned openai package is missing
# (scripts/install-npm.sh installs it).
dir=$(cd "$(dirname "$0")" && pwd)
if ! command -v node >/dev/null 2>&1 || [ ! -f "$dir/node_modules/openai/package.json" ]; then
    echo "skipped: node or tests/server/node_modules/openai missing (run scripts/install-npm.sh)"
    exit 77
fi
DS_BIN=$1 DS_SHARED=${DS_SHARED:-$dir/../../../shared} exec node --test "$dir/openai.test.mjs"

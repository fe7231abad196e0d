#!/bin/sh
# run-difftest.sh DEEPSEEK_BIN TOKENIZE_BATCH_BIN WORKDIR - the tokenizer differential test.
# Skips (exit 77) when node or the npm packages are missing (scripts/install-npm.sh installs
# them), unless DS_REQUIRE_SHARED=1, which makes a missing dependency a failure.
here=$(dirname "$0")
missing=""
command -v node >/dev/null 2>&1 || missing="node"
[ -d "$here/node_modules/@lenml/tokenizers" ] || missing="$missing tests/js/node_modules (run scripts/install-npm.sh)"
if [ -n "$missing" ]; then
    if [ "$DS_REQUIRE_SHARED" = "1" ]; then
        echo "tokenizer_js: missing: $missing" >&2
        exit 1
    fi
    echo "skipping: tokenizer_js: missing: $missing" >&2
    exit 77
fi
exec node "$here/difftest.mjs" "$@"

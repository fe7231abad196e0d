#!/bin/sh
# Fails when a module or a public header includes the header of a higher layer
# (docs/ARCHITECTURE.md), or when a module or header is missing from the table below.
layer() {
    case "$1" in
        err|alloc|log|buf|core) echo 0 ;;
        pool) echo 1 ;;
        types|quant|tensor|kernels|matmul|cpu|gguf) echo 2 ;;
        tokenizer|kv|sampler) echo 3 ;;
        model|hparams|quantize|synth|hub) echo 4 ;;
        train) echo 4 ;;
        chat) echo 5 ;;
        engine) echo 6 ;;
        server|cli) echo 7 ;;
        *) echo unknown ;;
    esac
}
status=0
check() { # $1 = what, $2 = its layer, $3.. = files to scan
    what=$1 ml=$2
    shift 2
    for inc in $(grep -hoE '#include "ds/[a-z_0-9]+\.h"' "$@" | sed -E 's/.*ds\/([a-z_0-9]+)\.h.*/\1/' | sort -u); do
        il=$(layer "$inc")
        if [ "$il" = unknown ]; then
            echo "$what includes ds/$inc.h, which has no layer in scripts/check-layers.sh"
            status=1
        elif [ "$il" -gt "$ml" ]; then
            echo "$what (layer $ml) includes ds/$inc.h (layer $il)"
            status=1
        fi
    done
}
for dir in src/*/; do
    mod=$(basename "$dir")
    ml=$(layer "$mod")
    if [ "$ml" = unknown ]; then
        echo "src/$mod has no layer in scripts/check-layers.sh"
        status=1
        continue
    fi
    check "src/$mod" "$ml" $(find "$dir" -name '*.[ch]')
done
for h in include/ds/*.h; do
    name=$(basename "$h" .h)
    hl=$(layer "$name")
    if [ "$hl" = unknown ]; then
        echo "$h has no layer in scripts/check-layers.sh"
        status=1
        continue
    fi
    check "$h" "$hl" "$h"
done
exit $status

#!/bin/sh
# Fails when a module includes the header of a higher layer (docs/ARCHITECTURE.md).
# Layer of each public header / source folder; lower layers never include higher ones.
layer() {
    case "$1" in
        err|alloc|log|buf|core|utf8|json) echo 0 ;;
        gguf|pool) echo 1 ;;
        types|quant|tensor|kernels) echo 2 ;;
        tokenizer|kv|sampler) echo 3 ;;
        model|hparams|quantize) echo 4 ;;
        chat) echo 5 ;;
        engine) echo 6 ;;
        server|http|cli) echo 7 ;;
        *) echo 99 ;;
    esac
}
status=0
for dir in src/*/; do
    mod=$(basename "$dir")
    ml=$(layer "$mod")
    for inc in $(grep -rhoE '#include "ds/[a-z_0-9]+\.h"' "$dir" | sed -E 's/.*ds\/([a-z_0-9]+)\.h.*/\1/' | sort -u); do
        il=$(layer "$inc")
        if [ "$il" -gt "$ml" ]; then
            echo "src/$mod (layer $ml) includes ds/$inc.h (layer $il)"
            status=1
        fi
    done
done
exit $status

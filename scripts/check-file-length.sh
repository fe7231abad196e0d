#!/bin/sh
# Fails when a hand-written C file is longer than the budget (default 800 lines).
# Generated files (*_data.c) are exempt.
limit=${1:-800}
status=0
for f in $(find include src tools tests bench -name '*.[ch]' ! -name '*_data.c' 2>/dev/null); do
    n=$(wc -l < "$f")
    if [ "$n" -gt "$limit" ]; then
        echo "$f: $n lines (budget $limit): split it by noun"
        status=1
    fi
done
exit $status

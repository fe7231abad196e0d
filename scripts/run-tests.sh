#!/bin/sh
# Runs every test: a warnings-as-errors build and its tests, the same tests again under
# AddressSanitizer + UndefinedBehaviorSanitizer, and the GGUF fuzzer for 60 s when clang is there.
set -e
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)

echo "== build (warnings are errors) =="
cmake -S . -B build-test -G Ninja -DCMAKE_BUILD_TYPE=Release -DDS_WERROR=ON >/dev/null
cmake --build build-test
(cd build-test && ctest --output-on-failure -j "$jobs")

echo "== sanitizers (ASan + UBSan) =="
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DDS_WERROR=ON -DDS_SANITIZE=ON >/dev/null
cmake --build build-asan
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ctest --output-on-failure -j "$jobs")

if command -v clang >/dev/null 2>&1 && [ -f tests/fuzz/fuzz_gguf.c ]; then
    echo "== fuzz: GGUF reader, 60 s =="
    CC=clang cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug -DDS_FUZZ=ON -DDS_SANITIZE=ON >/dev/null
    cmake --build build-fuzz --target fuzz_gguf
    sh scripts/run-fuzz.sh build-fuzz 60
fi
echo "all tests passed"

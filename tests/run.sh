#!/usr/bin/env bash
# The whole test suite, as `make test` and CI run it: build (normal and ASan+UBSan),
# start the local stack, prepare it (migrations, topics), run ctest on both builds,
# stop the stack. Exits non-zero when any step or test fails.
#   SB_KEEP_STACK=1  leave the stack running afterwards
#   SB_SKIP_ASAN=1   skip the sanitizer build (faster local iterations)
#   SB_SKIP_FUZZ=1   skip the libFuzzer runs (SB_FUZZ_SECONDS each, default 30)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
jobs="$(nproc)"

build() { # dir type [extra cmake args…]
    local dir="$1" type="$2"
    shift 2
    cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" "$@" >/dev/null
    cmake --build "$dir" -j "$jobs"
}

echo "== build (RelWithDebInfo)"
build build RelWithDebInfo
if [[ "${SB_SKIP_ASAN:-0}" != 1 ]]; then
    echo "== build (Asan: AddressSanitizer + UBSan)"
    build build-asan Asan -DSB_SANITIZE=ON
fi

if [[ "${SB_SKIP_FUZZ:-0}" != 1 ]]; then
    echo "== build (libFuzzer targets, clang)"
    CC=clang cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSB_FUZZ=ON >/dev/null
    cmake --build build-fuzz -j "$jobs"
fi

cleanup() {
    if [[ "${SB_KEEP_STACK:-0}" != 1 ]]; then
        bash deploy/local/stack.sh down || true
    fi
}
trap cleanup EXIT

echo "== local stack"
bash deploy/local/stack.sh up
# shellcheck source=/dev/null
source deploy/local/env
build/bin/sbctl migrate
build/bin/sbctl topics create

status=0
if [[ "${SB_SKIP_ASAN:-0}" != 1 ]]; then
    echo "== ctest under ASan/UBSan (unit, integration)"
    (cd build-asan && ctest -L 'unit|integration' --output-on-failure -j 2 --timeout 600) || status=1
fi
if [[ "${SB_SKIP_FUZZ:-0}" != 1 ]]; then
    echo "== fuzzing every parser for ${SB_FUZZ_SECONDS:-30}s each"
    (cd build-fuzz && ctest -L fuzz --output-on-failure) || status=1
fi
echo "== ctest (all tests)"
(cd build && ctest --output-on-failure --timeout 900) || status=1
exit "$status"

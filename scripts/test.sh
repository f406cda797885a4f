#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what is missing,
# builds goroscope and the Go fixture matrix, runs every test (the BPF ones
# as root), then a short libFuzzer run of each parser.
#   scripts/test.sh            everything
#   FUZZ_SECONDS=0 scripts/test.sh   skip the fuzzing step
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)"
cmake --build build --target fixtures

(cd build && ctest --output-on-failure -j"$(nproc)")

fuzz_seconds=${FUZZ_SECONDS:-45}
if ((fuzz_seconds > 0)); then
  scripts/fuzz.sh "$fuzz_seconds"
fi

#!/usr/bin/env bash
# The main job on the bundled demo, from a fresh machine: installs what is
# missing, builds goroscope, builds the leaky demo service (tests/fixtures/
# leakdemo) with the machine's Go, starts it, and points goroscope at it.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target goroscope

demo=build/leakdemo
(cd tests/fixtures && GOFLAGS=-buildvcs=false go build -o "../../$demo" ./leakdemo)
"$demo" -rate 50 -duration 60s &
demo_pid=$!
trap 'kill $demo_pid 2>/dev/null || true' EXIT
sleep 0.5

echo "== goroscope inspect --pid $demo_pid (the bundled leaky demo)"
build/goroscope inspect --pid "$demo_pid"

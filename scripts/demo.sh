#!/usr/bin/env bash
# The main job on the bundled demo, from a fresh machine: installs what is
# missing, builds goroscope, builds the leaky demo service (tests/fixtures/
# leakdemo) with the machine's Go, starts it, and attaches goroscope to it for
# DEMO_SECONDS (default 20): a live view on a terminal, periodic text
# otherwise, then the final report naming the leaking `go` statement.
# Needs root (BPF uprobes).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" --target goroscope

demo=build/leakdemo
(cd tests/fixtures && GOFLAGS=-buildvcs=false go build -o "../../$demo" ./leakdemo)
seconds=${DEMO_SECONDS:-20}
"$demo" -rate 50 -duration $((seconds + 30))s 2>/dev/null &
demo_pid=$!
trap 'kill $demo_pid 2>/dev/null || true' EXIT
sleep 0.5

echo "== goroscope attach --pid $demo_pid --duration ${seconds}s (the bundled leaky demo)"
build/goroscope attach --pid "$demo_pid" --duration "${seconds}s" --leak-window 10s

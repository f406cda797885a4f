#!/usr/bin/env bash
# scrape_bench.sh [BUILD_DIR] [-- scrape_bench.py options]: the daemon at
# scale (issue 5). Builds goroscope (if stale) and the manysites fixture
# (cached), then starts 50 copies of the fixture and `goroscope daemon`
# following them, and measures scrape latency, exposition size, memory and
# CPU (tests/bench/scrape/scrape_bench.py says how). Needs root.
# Example: tests/bench/scrape_bench.sh build -- --runs 5 --json /tmp/scrape.json
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../../build}
shift || true
[[ ${1:-} == -- ]] && shift
[[ -f $build/build.ninja || -f $build/Makefile ]] \
  || { echo "scrape_bench: no configured build in $build (cmake -S . -B build -G Ninja)" >&2; exit 1; }
cmake --build "$build" --target goroscope >&2
fixture=$("$here/scrape/build-manysites.sh")
exec python3 "$here/scrape/scrape_bench.py" --goroscope "$build/goroscope" --fixture "$fixture" "$@"

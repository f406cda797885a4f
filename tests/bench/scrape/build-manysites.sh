#!/usr/bin/env bash
# build-manysites.sh -> prints the path of the manysites fixture binary,
# built with the machine's `go` (or $GOROSCOPE_BENCH_GO) into
# ~/.cache/goroscope/bench (or $GOROSCOPE_CACHE/bench). The folder is keyed by
# the Go version and a hash of the sources and of this recipe, so a rerun
# reuses the build and an edited source or another toolchain never does.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$here/manysites
cache=${GOROSCOPE_CACHE:-$HOME/.cache/goroscope}
go=${GOROSCOPE_BENCH_GO:-go}
command -v "$go" > /dev/null || { echo "build-manysites: no '$go' on PATH (scripts/install-deps.sh)" >&2; exit 1; }

# GOTOOLCHAIN=local: the go line must not make `go` fetch another release.
export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false CGO_ENABLED=0
version=$("$go" env GOVERSION)
key=$({ echo "$version"; sed -n '/^set -euo/,$p' "$0"; cat "$src/go.mod" "$src/main.go"; } | sha256sum | cut -c1-16)
bin=$cache/bench/manysites-$version-$key/manysites
if [[ ! -x $bin ]]; then
  mkdir -p "$(dirname "$bin")"
  echo "build-manysites: building with $version into $(dirname "$bin")" >&2
  (cd "$src" && "$go" build -o "$bin.tmp" .)
  mv "$bin.tmp" "$bin"
fi
echo "$bin"

#!/usr/bin/env bash
# Installs what goroscope needs to build and test, from Debian's archive and
# the Go module proxy only. Idempotent: does nothing when all is present.
set -euo pipefail

packages=(
  build-essential cmake pkg-config git
  clang llvm libclang-rt-14-dev        # BPF objects (-target bpf) and libFuzzer
  libbpf-dev bpftool                   # loader library and skeleton generator
  libelf-dev libdw-dev                 # ELF and DWARF readers
  libzydis-dev                         # amd64 disassembly (RET sites)
  prometheus-cpp-dev libcli11-dev nlohmann-json3-dev
  libcurl4-openssl-dev                 # pushing alerts to Alertmanager
  prometheus prometheus-alertmanager   # promtool (metrics lint, rule tests); the real Alertmanager of the push tests
  googletest libgtest-dev libgmock-dev libbenchmark-dev
  golang-1.19-go                       # the oldest Go in the fixture matrix
  bpftrace wrk                         # overhead suite: the naive-probe baseline and HTTP load
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}" >&2
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v go >/dev/null; then
  echo "install-deps: no 'go' on PATH; goroscope's fixtures need a Go >= 1.21 to fetch the other toolchains" >&2
  exit 1
fi

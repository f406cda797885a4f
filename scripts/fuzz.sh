#!/usr/bin/env bash
# fuzz.sh [SECONDS]: builds the libFuzzer targets (clang, ASan+UBSan) and runs
# each for SECONDS (default 45) on a seed corpus taken from the fixture
# matrix. Any crash fails the script and leaves the reproducer in build-fuzz/.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-45}
cache=${GOROSCOPE_CACHE:-$HOME/.cache/goroscope}
manifest=$cache/fixtures/manifest.tsv
[[ -f $manifest ]] || { echo "fuzz: no fixture matrix ($manifest); run scripts/test.sh" >&2; exit 1; }

cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DGOROSCOPE_FUZZ=ON -DGOROSCOPE_BENCH=OFF >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target elf_front_fuzz buildinfo_fuzz pclntab_fuzz

# Seeds: the real sections of one build per Go version and variant.
seeds=build-fuzz/seeds
rm -rf "$seeds"; mkdir -p "$seeds"/{elf_front,buildinfo,pclntab}
while IFS=$'\t' read -r fixture go variant arch bin gobin; do
  [[ $fixture == leakdemo ]] || continue
  tag=$go-$variant
  objcopy -O binary --only-section=.go.buildinfo "$bin" "$seeds/buildinfo/$tag" 2>/dev/null || true
  for s in .gopclntab .data.rel.ro.gopclntab; do
    objcopy -O binary --only-section=$s "$bin" "$seeds/pclntab/$tag" 2>/dev/null || true
    [[ -s $seeds/pclntab/$tag ]] && break
  done
  [[ $variant == stripped ]] && cp "$bin" "$seeds/elf_front/$tag"
done < "$manifest"
find "$seeds" -type f -empty -delete

status=0
for target in elf_front buildinfo pclntab; do
  echo "fuzz: $target for ${seconds}s ($(ls "$seeds/$target" | wc -l) seeds)"
  corpus=build-fuzz/corpus/$target; mkdir -p "$corpus"
  if ! (cd build-fuzz && ./tests/${target}_fuzz -max_total_time="$seconds" -rss_limit_mb=4096 \
        -max_len=4000000 -print_final_stats=1 "../$corpus" "../$seeds/$target" 2> "$target.log"); then
    echo "fuzz: $target FOUND A CRASH:"; tail -40 "build-fuzz/$target.log"; status=1
  else
    grep -E "^stat::number_of_executed_units|Done" "build-fuzz/$target.log" | tail -2
  fi
done
exit $status

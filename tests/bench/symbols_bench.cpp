// Cost of naming code with the pclntab, on a large Go binary: the Go
// toolchain's own compiler (`$(go env GOTOOLDIR)/compile`, ~25 MB, ~20k
// functions). Targets: opening and loading < 150 ms, pc_to_line < 300 ns.
#include <benchmark/benchmark.h>

#include <random>

#include "symbols/build_info.h"
#include "symbols/elf_image.h"
#include "symbols/pclntab.h"
#include "tests/support/fixture_matrix.h"

namespace goroscope {
namespace {

const std::string& compile_path() {
  static const std::string path = [] {
    std::string dir = testing::run_command({"go", "env", "GOTOOLDIR"});
    while (!dir.empty() && (dir.back() == '\n' || dir.back() == '\r')) dir.pop_back();
    return dir + "/compile";
  }();
  return path;
}

struct Loaded {
  std::shared_ptr<ElfImage> elf;
  std::unique_ptr<Pclntab> table;
};

std::optional<Loaded> open_and_load(const std::string& path) {
  auto elf = ElfImage::open(path);
  if (!elf) return std::nullopt;
  auto bi = read_build_info(**elf);
  if (!bi) return std::nullopt;
  auto table = Pclntab::load(**elf, bi->go_version);
  if (!table) return std::nullopt;
  return Loaded{std::move(elf.value()), std::move(table.value())};
}

const Loaded& compile_binary() {
  static const Loaded loaded = [] {
    auto l = open_and_load(compile_path());
    if (!l) throw std::runtime_error("cannot load " + compile_path());
    return std::move(*l);
  }();
  return loaded;
}

// PCs spread uniformly over functions (not over bytes, which would favour
// the few huge ones), each at a uniform offset inside its function.
std::vector<uint64_t> pcs_inside_functions(const Pclntab& t, size_t count) {
  std::mt19937_64 rng(1);
  std::vector<uint64_t> pcs;
  while (pcs.size() < count) {
    FuncInfo f = t.func(rng() % t.num_funcs());
    if (f.end > f.entry) pcs.push_back(f.entry + rng() % (f.end - f.entry));
  }
  return pcs;
}

// Everything a first lookup needs: map the file, read the Go version from
// .go.buildinfo, find and validate the table and moduledata, look up a PC.
void BM_OpenLoadAndFirstLookup(benchmark::State& state) {
  const std::string& path = compile_path();
  for (auto _ : state) {
    auto loaded = open_and_load(path);
    if (!loaded) {
      state.SkipWithError("cannot load the compile binary");
      return;
    }
    benchmark::DoNotOptimize(loaded->table->find_func(loaded->table->text_start() + 0x1000));
  }
}
BENCHMARK(BM_OpenLoadAndFirstLookup)->Unit(benchmark::kMillisecond);

// The lazily built name index, paid by the first func_by_name.
void BM_OpenLoadAndFirstFuncByName(benchmark::State& state) {
  const std::string& path = compile_path();
  for (auto _ : state) {
    auto loaded = open_and_load(path);
    if (!loaded) {
      state.SkipWithError("cannot load the compile binary");
      return;
    }
    benchmark::DoNotOptimize(loaded->table->func_by_name("runtime.newproc1"));
  }
}
BENCHMARK(BM_OpenLoadAndFirstFuncByName)->Unit(benchmark::kMillisecond);

void BM_FindFunc(benchmark::State& state) {
  const Pclntab& t = *compile_binary().table;
  std::vector<uint64_t> pcs = pcs_inside_functions(t, 4096);
  size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(t.find_func(pcs[i++ % pcs.size()]));
}
BENCHMARK(BM_FindFunc);

void BM_PcToLine(benchmark::State& state) {
  const Pclntab& t = *compile_binary().table;
  std::vector<uint64_t> pcs = pcs_inside_functions(t, 4096);
  size_t i = 0;
  for (auto _ : state) {
    FuncInfo f;
    std::string_view file;
    int line = 0;
    benchmark::DoNotOptimize(t.pc_to_line(pcs[i++ % pcs.size()], &f, &file, &line));
    benchmark::DoNotOptimize(line);
  }
}
BENCHMARK(BM_PcToLine);

void BM_Frames(benchmark::State& state) {
  const Pclntab& t = *compile_binary().table;
  std::vector<uint64_t> pcs = pcs_inside_functions(t, 4096);
  size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(t.frames(pcs[i++ % pcs.size()]));
}
BENCHMARK(BM_Frames);

}  // namespace
}  // namespace goroscope

BENCHMARK_MAIN();

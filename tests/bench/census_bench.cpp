// Cost of one goroutine census at scale: the startupleak fixture (Go 1.26,
// default build) holding 100,000 leaked goroutines — 90,000 blocked on a
// channel send, 10,000 in a select — each read from allgs, decoded and
// walked to its blocking frame. Target: < 100 ms per snapshot.
// Needs root (process_vm_readv on another process).
#include <benchmark/benchmark.h>

#include <chrono>
#include <memory>
#include <optional>
#include <thread>

#include "daemon/goroutine_census.h"
#include "symbols/go_binary.h"
#include "tests/support/fixture_matrix.h"
#include "tests/support/privileges.h"
#include "tests/support/running_fixture.h"

namespace goroscope {
namespace {

constexpr int kSenders = 90'000;
constexpr int kSelects = 10'000;

struct Target {
  std::unique_ptr<testing::RunningFixture> process;
  std::unique_ptr<GoroutineCensus> census;
  std::string error;
};

// Started once, on first use; killed when the benchmark binary exits.
Target& target() {
  static Target t = [] {
    Target t;
    if (std::string missing = testing::missing_privileges(); !missing.empty()) {
      t.error = "needs root: " + missing;
      return t;
    }
    std::optional<testing::FixtureBinary> fx;
    for (const auto& b : testing::fixtures("startupleak", "default"))
      if (b.go.starts_with("go1.26")) fx = b;
    if (!fx) {
      t.error = "no go1.26 build of startupleak in the fixture matrix";
      return t;
    }
    auto bin = GoBinary::open(fx->path);
    if (!bin) {
      t.error = bin.error().message;
      return t;
    }
    t.process = std::make_unique<testing::RunningFixture>(
        fx->path, std::vector<std::string>{"-senders", std::to_string(kSenders), "-selects", std::to_string(kSelects)});
    if (!t.process->wait_for_line("ready", std::chrono::seconds(120))) {
      t.error = fx->label() + " never printed ready";
      return t;
    }
    auto census = GoroutineCensus::open(t.process->pid(), *bin);
    if (!census) {
      t.error = census.error().message;
      return t;
    }
    t.census = std::move(census.value());
    // Measure the steady state: every leaked goroutine parked.
    for (int i = 0; i < 500; i++) {
      auto snap = t.census->snapshot();
      if (!snap) {
        t.error = snap.error().message;
        return t;
      }
      size_t waiting = 0;
      for (const auto& r : *snap) waiting += r.status == uint32_t(GStatus::Waiting) && r.block_pc != 0;
      if (waiting >= kSenders + kSelects) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return t;
  }();
  return t;
}

void BM_CensusSnapshot100k(benchmark::State& state) {
  Target& t = target();
  if (!t.census) {
    state.SkipWithError(t.error.c_str());
    return;
  }
  CensusStats stats;
  size_t blocked = 0;
  for (auto _ : state) {
    auto snap = t.census->snapshot(&stats);
    if (!snap) {
      // Older Google Benchmark keeps the pointer, not a copy.
      t.error = snap.error().message;
      state.SkipWithError(t.error.c_str());
      return;
    }
    blocked = 0;
    for (const auto& r : *snap) blocked += r.block_pc != 0;
    benchmark::DoNotOptimize(snap->data());
  }
  state.counters["goroutines"] = static_cast<double>(stats.live);
  state.counters["allglen"] = static_cast<double>(stats.allglen);
  state.counters["with_block_pc"] = static_cast<double>(blocked);
}
BENCHMARK(BM_CensusSnapshot100k)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);

}  // namespace
}  // namespace goroscope

BENCHMARK_MAIN();

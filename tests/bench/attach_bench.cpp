// Attach cost, as a user meets it, and the engine's memory per goroutine.
//  - BM_AttachToFirstReport: `goroscope attach --format json` from exec to a
//    complete report (binary parsed, probes loaded and attached, census
//    taken, report printed) on startupleak holding 10,000 goroutines.
//  - BM_TrackerBytesPerGoroutine: heap growth of GoroutineTracker per tracked
//    goroutine, for a goroutine bomb of 1,000,000.
// Needs root for the first; the fixture matrix must be built.
#include <benchmark/benchmark.h>
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>

#include "daemon/goroutine_tracker.h"
#include "tests/support/fixture_matrix.h"
#include "tests/support/goroscope_cli.h"
#include "tests/support/running_fixture.h"

namespace goroscope {
namespace {

void BM_AttachToFirstReport(benchmark::State& state) {
  testing::FixtureBinary fx;
  for (const auto& b : testing::fixtures("startupleak", "default"))
    if (b.go.rfind("go1.26.", 0) == 0) fx = b;
  testing::RunningFixture target(fx.path, {"-senders", "9000", "-selects", "1000"});
  if (!target.wait_for_line("ready", std::chrono::seconds(20))) {
    state.SkipWithError("fixture did not start");
    return;
  }
  std::string pid = std::to_string(target.pid());
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    testing::CliOutcome o =
        testing::run_goroscope({"attach", "--pid", pid, "--format", "json", "--duration", "1ms"});
    auto t1 = std::chrono::steady_clock::now();
    if (o.status != 0) {
      state.SkipWithError("goroscope attach failed (root needed)");
      return;
    }
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
  }
}
BENCHMARK(BM_AttachToFirstReport)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(10);

void BM_TrackerBytesPerGoroutine(benchmark::State& state) {
  const uint64_t n = state.range(0);
  std::vector<GoroutineRecord> census(n);
  for (uint64_t i = 0; i < n; i++) {
    census[i].goid = i + 1;
    census[i].gopc = 0x401000 + (i % 64) * 16;  // 64 sites
    census[i].status = static_cast<uint32_t>(GStatus::Waiting);
    census[i].wait_reason = 1;
    census[i].block_pc = 0x402000;
  }
  double bytes_per = 0;
  for (auto _ : state) {
    size_t before = mallinfo2().uordblks;
    auto tracker = std::make_unique<GoroutineTracker>(std::vector<std::string>{"", "chan send"});
    tracker->on_census(census, 1, 2);
    size_t after = mallinfo2().uordblks;
    bytes_per = double(after - before) / double(n);
    benchmark::DoNotOptimize(tracker->live());
  }
  state.counters["bytes_per_goroutine"] = bytes_per;
}
BENCHMARK(BM_TrackerBytesPerGoroutine)->Arg(1'000'000)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace
}  // namespace goroscope

BENCHMARK_MAIN();

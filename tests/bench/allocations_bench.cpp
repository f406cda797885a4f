// Overhead of allocation tracking on an allocation-heavy workload: allochot
// -burn N (4 KiB + 512 B allocation per round, 64 KiB every 200 rounds, as
// fast as it can: ~3 GB/s) timed bare and under AllocationProfiler, as a
// slowdown ratio, for each scheme:
//  - BM_AllocDutyCycled: the default (refill + allocLarge + growslice,
//    duty-cycled to a 1% budget);
//  - BM_AllocRefillAlwaysOn: the same probes, never detached;
//  - BM_AllocEveryMallocgc: a probe on every mallocgc (--alloc-every, and
//    what a naive bpftrace script does), on fewer rounds.
// and the same three on -small (four 64-byte objects per round: the common
// case in real programs, where a mallocgc probe hurts most and a refill
// stands for 128 objects).
// Counters: slowdown (monitored / bare CPU time of the workload, user +
// system: a uprobe trap is charged to the target thread as system time, and
// CPU time is steadier than wall time on a shared 2-CPU machine),
// wall_slowdown, top_site_ok (1 if the top site is main.hot), bytes_ratio
// (estimated / true bytes at the top site).
// Needs root; the fixture matrix must be built.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>

#include "daemon/allocation_profiler.h"
#include "symbols/go_binary.h"
#include "symbols/probe_points.h"
#include "tests/support/fixture_matrix.h"
#include "tests/support/running_fixture.h"

namespace goroscope {
namespace {

using Clock = std::chrono::steady_clock;

testing::FixtureBinary workload() {
  testing::FixtureBinary fx;
  for (const auto& b : testing::fixtures("allochot", "default"))
    if (b.go.rfind("go1.22.", 0) == 0) fx = b;
  return fx;
}

struct Run {
  double seconds = -1;  // CPU
  double wall = -1;
  bool top_ok = false;
  double bytes_ratio = 0;
};

// One run of `rounds`; monitored when options is set.
Run run(const testing::FixtureBinary& fx, int rounds, const AllocationProfilerOptions* options, bool small) {
  Run r;
  const std::string report = "/tmp/goroscope-allocbench-" + std::to_string(getpid()) + ".txt";
  std::remove(report.c_str());
  std::vector<std::string> args = {"-burn", std::to_string(rounds), "-report", report};
  if (small) args.push_back("-small");
  testing::RunningFixture child(fx.path, args);
  if (!child.wait_for_line("ready", std::chrono::seconds(10))) return r;
  std::unique_ptr<AllocationProfiler> prof;
  if (options) {
    auto bin = GoBinary::open(fx.path);
    if (!bin) return r;
    auto p = AllocationProfiler::attach(*bin, resolve_probe_points(**bin),
                                        "/proc/" + std::to_string(child.pid()) + "/exe", child.pid(), *options);
    if (!p) return r;
    prof = std::move(*p);
  }
  auto t0 = Clock::now();
  child.send("go");
  for (;;) {
    if (prof) prof->poll(2);
    if (child.wait_exit(std::chrono::milliseconds(1)) != -1) break;
    if (Clock::now() - t0 > std::chrono::minutes(5)) return r;
  }
  {
    std::ifstream in(report);
    double wall_ns = 0, cpu_ns = 0;
    if (!(in >> wall_ns >> cpu_ns)) return r;
    r.wall = wall_ns / 1e9;
    r.seconds = cpu_ns / 1e9;
    std::remove(report.c_str());
  }
  if (prof) {
    while (prof->poll(50) > 0) {
    }
    auto sites = prof->sites(monotonic_ns());
    if (!sites.empty()) {
      r.top_ok = sites.front().function == (small ? "main.small" : "main.hot");
      r.bytes_ratio = sites.front().bytes_total / ((small ? 4 * 64.0 : 4096.0) * rounds);
    }
  }
  return r;
}

void measure(benchmark::State& state, int rounds, const AllocationProfilerOptions& options, bool small = false) {
  const auto fx = workload();
  double bare = 0, monitored = 0, top = 0, bytes = 0, bare_wall = 0, monitored_wall = 0;
  int n = 0;
  for (auto _ : state) {
    Run b = run(fx, rounds, nullptr, small);
    Run m = run(fx, rounds, &options, small);
    if (b.seconds <= 0 || m.seconds <= 0) {
      state.SkipWithError("run failed (root needed, fixture matrix built?)");
      return;
    }
    bare += b.seconds;
    monitored += m.seconds;
    bare_wall += b.wall;
    monitored_wall += m.wall;
    top += m.top_ok;
    bytes += m.bytes_ratio;
    n++;
    state.SetIterationTime(m.seconds);
  }
  state.counters["bare_s"] = bare / n;
  state.counters["monitored_s"] = monitored / n;
  state.counters["slowdown"] = monitored / bare;
  state.counters["wall_slowdown"] = monitored_wall / bare_wall;
  state.counters["top_site_ok"] = top / n;
  state.counters["bytes_ratio"] = bytes / n;
}

void BM_AllocDutyCycled(benchmark::State& state) { measure(state, 2000000, AllocationProfilerOptions{}); }
BENCHMARK(BM_AllocDutyCycled)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_AllocRefillAlwaysOn(benchmark::State& state) {
  AllocationProfilerOptions o;
  o.always_on = true;
  measure(state, 2000000, o);
}
BENCHMARK(BM_AllocRefillAlwaysOn)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_AllocEveryMallocgc(benchmark::State& state) {
  AllocationProfilerOptions o;
  o.probes.every_allocation = true;
  o.every_window_ms = 600000;  // the whole run
  measure(state, 100000, o);
}
BENCHMARK(BM_AllocEveryMallocgc)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(2);

void BM_SmallDutyCycled(benchmark::State& state) { measure(state, 10000000, AllocationProfilerOptions{}, true); }
BENCHMARK(BM_SmallDutyCycled)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_SmallRefillAlwaysOn(benchmark::State& state) {
  AllocationProfilerOptions o;
  o.always_on = true;
  measure(state, 10000000, o, true);
}
BENCHMARK(BM_SmallRefillAlwaysOn)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_SmallEveryMallocgc(benchmark::State& state) {
  AllocationProfilerOptions o;
  o.probes.every_allocation = true;
  o.every_window_ms = 600000;
  measure(state, 250000, o, true);
}
BENCHMARK(BM_SmallEveryMallocgc)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(2);

}  // namespace
}  // namespace goroscope

BENCHMARK_MAIN();

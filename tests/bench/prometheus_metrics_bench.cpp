// The daemon's scrape path in-process, without HTTP or probes: the
// exposition of 50 processes x 200 goroutine creation sites (issue 5), from
// snapshots shaped like those of tests/bench/scrape/manysites (per site:
// three goroutines parked in one state, creations, exits and lifetimes; ten
// timer sites; a pre-attach ticker leak; a few allocation sites). Sites are
// real return addresses in the newest symbolzoo build, so naming them costs
// what it costs on a real binary. The end-to-end figure, with the real
// daemon, is tests/bench/scrape_bench.sh.
//  - BM_MetricFamilies: metric_families() alone.
//  - BM_TextSerializer: prometheus-cpp's TextSerializer on its result.
// Arguments: processes, sites per process. The fixture matrix must be built.
#include <benchmark/benchmark.h>
#include <prometheus/text_serializer.h>

#include <set>

#include "exporters/prometheus_metrics.h"
#include "tests/support/fixture_matrix.h"

namespace goroscope {
namespace {

std::shared_ptr<const GoBinary> newest_symbolzoo() {
  static std::shared_ptr<const GoBinary> binary = [] {
    std::string newest;  // the manifest lists Go versions in ascending order
    for (const auto& b : testing::fixtures("symbolzoo", "default"))
      if (b.runnable()) newest = b.path;
    auto b = GoBinary::open_cached(newest);
    if (!b) throw std::runtime_error(b.error().message);
    return *b;
  }();
  return binary;
}

// gopcs of `n` functions with distinct names: one past each entry, as a
// return address after a CALL would be.
std::vector<uint64_t> distinct_gopcs(const Pclntab& p, size_t n) {
  std::vector<uint64_t> out;
  std::set<std::string> seen;
  for (size_t i = 0; i < p.num_funcs() && out.size() < n; i++) {
    FuncInfo f = p.func(i);
    auto frames = p.frames(f.entry);
    if (frames.empty() || f.entry + 1 >= f.end || frames.front().function == "runtime.main") continue;
    if (seen.insert(std::string(frames.front().function)).second) out.push_back(f.entry + 1);
  }
  if (out.size() < n) throw std::runtime_error("symbolzoo has too few functions");
  return out;
}

std::vector<ScrapeTarget> manysites_like(size_t processes, size_t sites) {
  auto binary = newest_symbolzoo();
  const auto gopcs = distinct_gopcs(binary->pclntab(), sites + 6);
  const char* parked[] = {"chan receive", "chan send", "select"};
  const char* runtime_states[] = {"GC scavenge wait", "GC sweep wait", "finalizer wait",
                                  "force gc (idle)",  "select",        "syscall"};
  std::vector<ScrapeTarget> targets;
  for (size_t proc = 0; proc < processes; proc++) {
    auto s = std::make_shared<AttachSnapshot>();
    s->pid = int(200000 + proc);
    // As long as the fixture's path in the benchmark's cache.
    s->exe = "/root/.cache/goroscope/bench/manysites-go1.26.8-8e4c59ff6887e04d/manysites";
    s->go_version = binary->go_version().raw;
    s->timer_regime = "old";
    for (size_t i = 0; i < sites + 6; i++) {
      SiteStats st;
      st.gopc = gopcs[i];
      st.start_pc = gopcs[i] - 1;
      if (i < sites) {
        st.live = 3;
        st.states[parked[i % 3]] = 3;
        st.created_total = 3 + 20 + i % 7;
        st.exited_total = st.created_total - 3;
        for (uint64_t k = 0; k < st.exited_total; k++) st.lifetimes.add(2e-6 * double(1 + k % 40));
        st.max_blocked_seconds = 30 + double(i) / 10;
      } else {
        st.live = 1;
        st.states[runtime_states[i - sites]] = 1;
      }
      s->sites.push_back(st);
    }
    for (int t = 0; t < 10; t++) {
      TimerSiteStats ts;
      ts.function = "main.site" + std::to_string(t * 20);
      ts.file = "/work/goroscope/tests/bench/scrape/manysites/main.go";
      ts.line = 31 + t * 200;
      ts.kind = TimerKind::Timer;
      ts.created_total = ts.stopped_total = 20;
      s->timer_sites.push_back(ts);
    }
    TimerSiteStats before;
    before.kind = TimerKind::Ticker;
    before.active = 30;
    s->timer_sites.push_back(before);
    s->timer_verdicts = {{"", "", 0, TimerKind::Ticker, "leak", 30, "unstopped tickers"}};
    AllocationSnapshot a;
    a.sites.push_back({"main.main", "/work/goroscope/tests/bench/scrape/manysites/main.go", 2090, 1.5e6, 2e4});
    a.gc.cycles = 3;
    s->allocations = a;
    s->events_received = 123456;
    s->probe_hits = {{"newproc1", 9000},  {"gdestroy", 8900},   {"timer_new", 200},
                     {"timer_stop", 200}, {"alloc_refill", 40}, {"gc_start", 3}};
    s->probe_duty = {{"goroutines", 1}, {"timers", 1}, {"allocations", 0.05}};
    s->estimated_overhead_seconds = 0.09;
    s->overhead_budget = 0.01;
    s->census_available = true;
    s->census_seconds = 0.0004;
    targets.push_back({s, binary, {}});
  }
  return targets;
}

PrometheusOptions options_for(size_t sites) {
  PrometheusOptions o;
  o.max_sites_per_process = sites;
  return o;
}

void BM_MetricFamilies(benchmark::State& state) {
  auto targets = manysites_like(state.range(0), state.range(1));
  const auto options = options_for(state.range(1));
  size_t series = 0;
  for (auto _ : state) {
    auto families = metric_families(targets, {}, options);
    series = 0;
    for (const auto& f : families) series += f.metric.size();
    benchmark::DoNotOptimize(families.data());
  }
  state.counters["metrics"] = double(series);
}
BENCHMARK(BM_MetricFamilies)->Args({50, 200})->Unit(benchmark::kMillisecond)->MinTime(2);

void BM_TextSerializer(benchmark::State& state) {
  auto targets = manysites_like(state.range(0), state.range(1));
  const auto families = metric_families(targets, {}, options_for(state.range(1)));
  size_t bytes = 0;
  for (auto _ : state) {
    std::string text = prometheus::TextSerializer().Serialize(families);
    bytes = text.size();
    benchmark::DoNotOptimize(text.data());
  }
  state.counters["bytes"] = double(bytes);
}
BENCHMARK(BM_TextSerializer)->Args({50, 200})->Unit(benchmark::kMillisecond)->MinTime(2);

}  // namespace
}  // namespace goroscope

BENCHMARK_MAIN();

// The Prometheus exposition of the daemon, built from snapshots whose
// goroutine sites are real return addresses in a real fixture binary (the
// newest symbolzoo build: generic shapes, nested closures, a non-ASCII
// runtime symbol), serialized by prometheus-cpp's TextSerializer and read
// back with the test's own reader of the text format. promtool lints a
// large, awkward exposition.
#include "exporters/prometheus_metrics.h"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <set>

#include "tests/support/fixture_matrix.h"
#include "tests/support/prometheus_text.h"

namespace goroscope {
namespace {

using testing::PromExposition;
using testing::PromSample;

// A real `go` statement stand-in: gopc is one past a PC whose innermost
// (inline-expanded) frame is `function` at `file`:`line`, which is how
// site_of_return_address reads a return address.
struct RealSite {
  uint64_t gopc = 0, start_pc = 0;
  std::string function, file;
  int line = 0;
};

class PrometheusMetricsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string newest;  // the manifest lists Go versions in ascending order
    for (const auto& b : testing::fixtures("symbolzoo", "default"))
      if (b.runnable()) newest = b.path;
    ASSERT_FALSE(newest.empty());
    auto b = GoBinary::open_cached(newest);
    ASSERT_TRUE(b) << b.error().message;
    binary_ = *b;
  }

  static const Pclntab& pclntab() { return binary_->pclntab(); }

  // The first PC, in functions whose name passes `in`, whose innermost frame
  // names a function that passes `want`.
  static std::optional<RealSite> find_site(const std::function<bool(std::string_view)>& in,
                                           const std::function<bool(std::string_view)>& want) {
    const Pclntab& p = pclntab();
    for (size_t i = 0; i < p.num_funcs(); i++) {
      FuncInfo f = p.func(i);
      if (!in(f.name)) continue;
      for (uint64_t pc = f.entry; pc < f.end; pc++) {
        auto frames = p.frames(pc);
        if (frames.empty() || !want(frames.front().function)) continue;
        return RealSite{pc + 1, f.entry, std::string(frames.front().function), std::string(frames.front().file),
                        frames.front().line};
      }
    }
    return std::nullopt;
  }
  static RealSite site_named(std::string_view exact) {
    auto s = find_site([](std::string_view) { return true; }, [&](std::string_view n) { return n == exact; });
    if (!s) throw std::runtime_error("no PC of " + std::string(exact));
    return *s;
  }
  // `n` distinct sites: function entries, each naming its own function.
  static std::vector<RealSite> distinct_sites(size_t n) {
    std::vector<RealSite> out;
    std::set<std::tuple<std::string, std::string, int>> seen;
    const Pclntab& p = pclntab();
    for (size_t i = 0; i < p.num_funcs() && out.size() < n; i++) {
      FuncInfo f = p.func(i);
      auto frames = p.frames(f.entry);
      if (frames.empty() || f.entry + 1 >= f.end) continue;
      RealSite s{f.entry + 1, f.entry, std::string(frames.front().function), std::string(frames.front().file),
                 frames.front().line};
      if (s.function == "runtime.main") continue;  // named by start_pc instead; see MainGoroutine
      if (seen.insert({s.function, s.file, s.line}).second) out.push_back(s);
    }
    if (out.size() < n) throw std::runtime_error("not enough functions");
    return out;
  }

  // The awkward names symbolzoo really has: a generic shape instantiation,
  // a closure in a closure, and (Go 1.26) a compiler symbol with U+00B7.
  static std::vector<RealSite> awkward_sites() {
    auto in_main = [](std::string_view f) { return f.starts_with("main."); };
    std::vector<RealSite> out;
    // Go 1.21+ names instantiations by shape; older releases write [...].
    if (auto s = find_site(in_main, [](std::string_view n) { return n.starts_with("main.Sum["); })) out.push_back(*s);
    if (auto s = find_site(in_main, [](std::string_view n) { return n == "main.goroutines.func1.1"; }))
      out.push_back(*s);
    auto dot = [](std::string_view n) { return n.find("\xC2\xB7") != std::string_view::npos; };
    if (auto s = find_site(dot, dot)) out.push_back(*s);
    return out;
  }

  static SiteStats stats(const RealSite& r, uint64_t live, uint64_t created = 0, uint64_t exited = 0) {
    SiteStats s;
    s.gopc = r.gopc;
    s.start_pc = r.start_pc;
    s.live = live;
    s.created_total = created;
    s.exited_total = exited;
    if (live) s.states["chan receive"] = live;
    return s;
  }
  static std::shared_ptr<AttachSnapshot> snapshot(int pid = 4242, std::string exe = "/srv/shop/bin/orders") {
    auto s = std::make_shared<AttachSnapshot>();
    s->pid = pid;
    s->exe = std::move(exe);
    s->go_version = binary_->go_version().raw;
    return s;
  }
  static PromExposition expose(const std::vector<ScrapeTarget>& targets, const DaemonStatus& daemon = {},
                               PrometheusOptions options = {}) {
    text_ = prometheus::TextSerializer().Serialize(metric_families(targets, daemon, options));
    return testing::parse_prometheus_text(text_);
  }
  static PromExposition expose(std::shared_ptr<AttachSnapshot> snap, PrometheusOptions options = {}) {
    return expose({{snap, binary_, {}}}, {}, options);
  }
  static std::string line_label(const RealSite& s) { return std::to_string(s.line); }

  static inline std::shared_ptr<const GoBinary> binary_;
  static inline std::string text_;  // the last exposition, for failure messages
};

TEST_F(PrometheusMetricsTest, GoroutineSitesAreNamedFromPclntab) {
  auto awkward = awkward_sites();
  ASSERT_GE(awkward.size(), 2u);
  const RealSite& generic = awkward[0];
  const RealSite& closure = awkward[1];
  const RealSite* unicode = awkward.size() > 2 ? &awkward[2] : nullptr;
  ASSERT_EQ(closure.function, "main.goroutines.func1.1");
  auto snap = snapshot();
  snap->sites = {stats(generic, 3), stats(closure, 5)};
  if (unicode) snap->sites.push_back(stats(*unicode, 7));
  auto e = expose(snap);

  for (const auto& [site, live] : std::vector<std::pair<RealSite, double>>{{generic, 3}, {closure, 5}}) {
    EXPECT_TRUE(site.file.ends_with("symbolzoo/main.go")) << site.file;
    EXPECT_EQ(e.value("goroscope_goroutines", {{"exe", "/srv/shop/bin/orders"},
                                               {"pid", "4242"},
                                               {"function", site.function},
                                               {"file", site.file},
                                               {"line", line_label(site)},
                                               {"state", "chan receive"}}),
              live)
        << text_;
  }
  EXPECT_NE(generic.function.find('['), std::string::npos);
  if (unicode) {
    EXPECT_EQ(e.value("goroscope_goroutines", {{"function", unicode->function}, {"state", "chan receive"}}), 7);
    EXPECT_NE(text_.find("function=\"" + unicode->function + "\""), std::string::npos) << "UTF-8 passes unchanged";
  }
}

TEST_F(PrometheusMetricsTest, MainGoroutineIsNamedByRuntimeMain) {
  // Its gopc lies in the runtime's startup code; attach reports name it by
  // what it runs, and so must the metrics.
  auto main_fn = pclntab().func_by_name("runtime.main");
  ASSERT_TRUE(main_fn);
  RealSite startup = distinct_sites(1).front();
  startup.start_pc = main_fn->entry;
  auto snap = snapshot();
  snap->sites = {stats(startup, 1)};
  auto e = expose(snap);
  auto found = e.find("goroscope_goroutines", {{"function", "runtime.main"}});
  ASSERT_EQ(found.size(), 1u) << text_;
  EXPECT_TRUE(found[0].labels.at("file").ends_with("runtime/proc.go")) << found[0].labels.at("file");
}

TEST_F(PrometheusMetricsTest, AwkwardLabelValuesSurviveTheTextFormat) {
  // A path may hold any byte but NUL; a generic instantiated with a tagged
  // struct carries quotes and backslashes in its name; a broken string
  // table yields invalid UTF-8.
  const std::string exe = "/opt/we\"ird\\dir/new\nline/Größe-svc";
  const std::string generic = "main.Handle[struct { Name string \"json:\\\"name\\\"\" }]";
  const std::string file = "C:\\src\\svc\\main.go";
  auto snap = snapshot(77, exe);
  snap->timer_regime = "new";
  TimerSiteStats t;
  t.function = generic;
  t.file = file;
  t.line = 12;
  t.kind = TimerKind::Ticker;
  t.active = 2;
  snap->timer_sites = {t};
  AllocationSnapshot a;
  AllocationSite bad;
  bad.function = "main.f\xFF\xFE";
  bad.file = "/src/a\nb.go";
  bad.line = 3;
  bad.bytes_total = 1024;
  a.sites = {bad};
  snap->allocations = a;
  auto e = expose(snap);

  EXPECT_EQ(e.value("goroscope_timers_active",
                    {{"exe", exe}, {"function", generic}, {"file", file}, {"line", "12"}, {"kind", "ticker"}}),
            2)
      << text_;
  // Exactly the escapes of the exposition format: \\ \" \n.
  EXPECT_NE(text_.find("function=\"main.Handle[struct { Name string \\\"json:\\\\\\\"name\\\\\\\"\\\" }]\""),
            std::string::npos)
      << text_;
  EXPECT_NE(text_.find("exe=\"/opt/we\\\"ird\\\\dir/new\\nline/Größe-svc\""), std::string::npos) << text_;
  // Invalid bytes become U+FFFD, one each.
  EXPECT_EQ(e.value("goroscope_allocated_bytes_total",
                    {{"function", "main.f\xEF\xBF\xBD\xEF\xBF\xBD"}, {"file", "/src/a\nb.go"}}),
            1024);
}

TEST(PrometheusLabels, ValidUtf8ReplacesEveryInvalidByte) {
  EXPECT_EQ(valid_utf8("plain · Größe 😀"), "plain · Größe 😀");
  EXPECT_EQ(valid_utf8("\xC0\xAF"), "\xEF\xBF\xBD\xEF\xBF\xBD");                                  // overlong '/'
  EXPECT_EQ(valid_utf8("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");                  // a UTF-16 surrogate
  EXPECT_EQ(valid_utf8("a\xE2\x82"), "a\xEF\xBF\xBD\xEF\xBF\xBD");                                // truncated
  EXPECT_EQ(valid_utf8("\xF4\x90\x80\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // past U+10FFFF
  EXPECT_EQ(valid_utf8(std::string("a\0b", 3)), std::string("a\0b", 3));                          // NUL is valid UTF-8
}

TEST_F(PrometheusMetricsTest, TopSitesKeepTheirLabelsTheRestFoldIntoOther) {
  auto real = distinct_sites(8);
  auto snap = snapshot();
  // live 8..1; sites 3 and 4 tie on live 5 and are told apart by created.
  const uint64_t live[] = {8, 7, 6, 5, 5, 3, 2, 1};
  const uint64_t created[] = {10, 10, 10, 1, 9, 4, 3, 2};
  for (size_t i = 0; i < real.size(); i++) {
    SiteStats s = stats(real[i], live[i], created[i], created[i] / 2);
    s.states = {{"chan receive", live[i] - 1}, {"running", 1}};
    s.max_blocked_seconds = 10.0 * double(i);
    s.lifetimes.add(1e-6 * double(i + 1));
    s.lifetimes.add(100);
    snap->sites.push_back(s);
  }
  PrometheusOptions cap;
  cap.max_sites_per_process = 4;
  auto e = expose(snap, cap);

  std::set<std::string> named;
  for (const auto& s : e.find("goroscope_goroutines_created_total")) named.insert(s.labels.at("function"));
  std::set<std::string> want = {real[0].function, real[1].function, real[2].function, real[4].function, "other"};
  EXPECT_EQ(named, want) << "the top 4 by live count, the tie broken by created total\n" << text_;

  auto other = e.find("goroscope_goroutines_created_total", {{"function", "other"}});
  ASSERT_EQ(other.size(), 1u);
  EXPECT_EQ(other[0].labels.count("file"), 0u) << "file and line are empty for other";
  EXPECT_EQ(other[0].labels.count("line"), 0u);
  // Folded: real[3], real[5], real[6], real[7].
  EXPECT_EQ(other[0].value, 1 + 4 + 3 + 2);
  EXPECT_EQ(e.value("goroscope_goroutines_exited_total", {{"function", "other"}}), 0 + 2 + 1 + 1);
  EXPECT_EQ(e.value("goroscope_goroutines", {{"function", "other"}, {"state", "running"}}), 4);
  EXPECT_EQ(e.value("goroscope_goroutines", {{"function", "other"}, {"state", "chan receive"}}), 4 + 2 + 1 + 0);
  EXPECT_EQ(e.value("goroscope_goroutine_longest_block_seconds", {{"function", "other"}}), 70);
  EXPECT_EQ(e.value("goroscope_goroutine_lifetime_seconds_count", {{"function", "other"}}), 8);
  EXPECT_EQ(e.value("goroscope_goroutine_lifetime_seconds_bucket", {{"function", "other"}, {"le", "6.4e-05"}}), 4);
  EXPECT_NEAR(e.value("goroscope_goroutine_lifetime_seconds_sum", {{"function", "other"}}),
              400 + 1e-6 * (4 + 6 + 7 + 8), 1e-9);
  // Nothing is lost or counted twice.
  double live_sum = 0;
  for (const auto& s : e.find("goroscope_goroutines")) live_sum += s.value;
  EXPECT_EQ(live_sum, 8 + 7 + 6 + 5 + 5 + 3 + 2 + 1);
}

TEST_F(PrometheusMetricsTest, LeakingSitesKeepTheirNamesWhateverTheirRank) {
  auto real = distinct_sites(5);
  auto snap = snapshot();
  for (size_t i = 0; i < real.size(); i++) snap->sites.push_back(stats(real[i], 100 - i));
  snap->leaks = {{real[4].gopc, "growing", 96, 2.5, "rising"}};
  PrometheusOptions cap;
  cap.max_sites_per_process = 2;
  auto e = expose(snap, cap);
  EXPECT_EQ(e.value("goroscope_leak_suspected", {{"function", real[4].function},
                                                 {"file", real[4].file},
                                                 {"line", line_label(real[4])},
                                                 {"kind", "goroutine"},
                                                 {"verdict", "growing"}}),
            1)
      << text_;
  EXPECT_EQ(e.find("goroscope_leak_suspected").size(), 1u);
  EXPECT_EQ(e.value("goroscope_goroutines", {{"function", real[4].function}}), 96);
  EXPECT_EQ(e.value("goroscope_goroutines", {{"function", real[0].function}}), 100);
  EXPECT_EQ(e.value("goroscope_goroutines", {{"function", "other"}}), 99 + 98 + 97);
}

TEST_F(PrometheusMetricsTest, GopcsOfOneSourceLineAreOneSeries) {
  // Two return addresses on one line of one function (a line with two
  // calls, or one `go` statement's code duplicated by the compiler).
  const Pclntab& p = pclntab();
  std::optional<std::pair<RealSite, RealSite>> pair;
  for (size_t i = 0; i < p.num_funcs() && !pair; i++) {
    FuncInfo f = p.func(i);
    if (!f.name.starts_with("main.")) continue;
    auto first = p.frames(f.entry);
    for (uint64_t pc = f.entry + 1; pc < f.end && !first.empty(); pc++) {
      auto fr = p.frames(pc);
      if (fr.empty() || fr.front().function != first.front().function || fr.front().line != first.front().line)
        continue;
      RealSite a{f.entry + 1, f.entry, std::string(first.front().function), std::string(first.front().file),
                 first.front().line};
      RealSite b = a;
      b.gopc = pc + 1;
      pair = {a, b};
      break;
    }
  }
  ASSERT_TRUE(pair);
  auto snap = snapshot();
  SiteStats a = stats(pair->first, 2, 10, 8), b = stats(pair->second, 3, 20, 17);
  a.lifetimes.add(0.5);
  b.lifetimes.add(2);
  b.max_blocked_seconds = 9;
  snap->sites = {a, b};
  auto e = expose(snap);
  ASSERT_EQ(e.find("goroscope_goroutines_created_total").size(), 1u) << text_;
  EXPECT_EQ(e.value("goroscope_goroutines_created_total", {{"function", pair->first.function}}), 30);
  EXPECT_EQ(e.value("goroscope_goroutines_exited_total"), 25);
  EXPECT_EQ(e.value("goroscope_goroutines", {{"state", "chan receive"}}), 5);
  EXPECT_EQ(e.value("goroscope_goroutine_longest_block_seconds"), 9);
  EXPECT_EQ(e.value("goroscope_goroutine_lifetime_seconds_count"), 2);
  EXPECT_EQ(e.value("goroscope_goroutine_lifetime_seconds_bucket", {{"le", "0.262144"}}), 0);
  EXPECT_EQ(e.value("goroscope_goroutine_lifetime_seconds_bucket", {{"le", "4.194304"}}), 2);
}

TEST_F(PrometheusMetricsTest, LifetimeHistogramIsCumulativeOnTheTrackersBounds) {
  auto site = distinct_sites(1).front();
  auto snap = snapshot();
  SiteStats s = stats(site, 0, 7, 7);
  for (double seconds : {0.5e-6, 3e-6, 5e-6, 1e-3, 2.0, 100.0, 3000.0}) s.lifetimes.add(seconds);
  snap->sites = {s};
  auto e = expose(snap);
  // Bounds are the tracker's own, 1 µs * 2^k for k = 2, 6, ..., 30;
  // counts worked out by hand from the durations above.
  const std::vector<std::pair<std::string, double>> want = {{"4e-06", 2},     {"6.4e-05", 3},     {"0.001024", 4},
                                                            {"0.016384", 4},  {"0.262144", 4},    {"4.194304", 5},
                                                            {"67.108864", 5}, {"1073.741824", 6}, {"+Inf", 7}};
  auto buckets = e.find("goroscope_goroutine_lifetime_seconds_bucket");
  ASSERT_EQ(buckets.size(), want.size()) << text_;
  for (size_t i = 0; i < want.size(); i++) {
    EXPECT_EQ(buckets[i].labels.at("le"), want[i].first);
    EXPECT_EQ(buckets[i].value, want[i].second) << "le=" << want[i].first;
    if (i) {
      EXPECT_GE(buckets[i].value, buckets[i - 1].value);
    }
  }
  EXPECT_EQ(e.value("goroscope_goroutine_lifetime_seconds_count"), 7);
  EXPECT_NEAR(e.value("goroscope_goroutine_lifetime_seconds_sum"), 3102.0010085, 1e-9);
  EXPECT_EQ(e.type.at("goroscope_goroutine_lifetime_seconds"), "histogram");
  // No live goroutines: no state and no block series, but the counters stay.
  EXPECT_TRUE(e.find("goroscope_goroutines").empty());
  EXPECT_TRUE(e.find("goroscope_goroutine_longest_block_seconds").empty());
  EXPECT_EQ(e.value("goroscope_goroutines_exited_total"), 7);
}

TEST_F(PrometheusMetricsTest, GoroutinesBeyondTheTrackingLimitHaveStateUnknown) {
  auto site = distinct_sites(1).front();
  auto snap = snapshot();
  SiteStats s = stats(site, 10);
  s.states = {{"running", 1}, {"chan send", 6}};
  snap->sites = {s};
  auto e = expose(snap);
  EXPECT_EQ(e.value("goroscope_goroutines", {{"state", "unknown"}}), 3);
  EXPECT_EQ(e.value("goroscope_goroutines", {{"state", "chan send"}}), 6);
}

TEST_F(PrometheusMetricsTest, TimersBySiteAndKindWithVerdicts) {
  auto snap = snapshot();
  snap->timer_regime = "old";
  auto timer = [](std::string fn, int line, TimerKind kind, uint64_t active, uint64_t created) {
    TimerSiteStats t;
    t.file = fn.empty() ? "" : "/src/app/poll.go";
    t.function = std::move(fn);
    t.line = line;
    t.kind = kind;
    t.active = active;
    t.created_total = created;
    t.stopped_total = created / 2;
    t.reset_total = 1;
    t.fired_total = created / 4;
    return t;
  };
  snap->timer_sites = {
      timer("main.poll", 10, TimerKind::Timer, 40, 100), timer("main.poll", 10, TimerKind::Ticker, 12, 12),
      timer("main.retry", 20, TimerKind::Timer, 30, 60), timer("main.retry2", 21, TimerKind::Timer, 1, 1000),
      timer("main.tick", 30, TimerKind::Ticker, 2, 2),   timer("", 0, TimerKind::AfterFunc, 5, 0)};
  snap->timer_verdicts = {{"main.poll", "/src/app/poll.go", 10, TimerKind::Timer, "leak", 40, "unstopped"},
                          {"main.poll", "/src/app/poll.go", 10, TimerKind::Ticker, "leak", 12, "unstopped"},
                          {"main.retry2", "/src/app/poll.go", 21, TimerKind::Timer, "churn", 1000, "garbage"}};
  PrometheusOptions cap;
  cap.max_sites_per_process = 3;
  auto e = expose(snap, cap);
  // Kept: the three with verdicts. Folded per kind: retry (timer), tick
  // (ticker), the before-attach afterfunc.
  EXPECT_EQ(e.value("goroscope_timers_active", {{"function", "main.poll"}, {"kind", "timer"}}), 40) << text_;
  EXPECT_EQ(e.value("goroscope_timers_active", {{"function", "main.poll"}, {"kind", "ticker"}}), 12);
  EXPECT_EQ(e.value("goroscope_timers_created_total", {{"function", "main.retry2"}, {"line", "21"}}), 1000);
  EXPECT_EQ(e.value("goroscope_timers_active", {{"function", "other"}, {"kind", "timer"}}), 30);
  EXPECT_EQ(e.value("goroscope_timers_active", {{"function", "other"}, {"kind", "ticker"}}), 2);
  EXPECT_EQ(e.value("goroscope_timers_active", {{"function", "other"}, {"kind", "afterfunc"}}), 5);
  EXPECT_EQ(e.value("goroscope_timers_stopped_total", {{"function", "other"}, {"kind", "timer"}}), 30);
  EXPECT_EQ(e.find("goroscope_timers_active").size(), 6u);
  // One leak series for main.poll although two of its kinds leak.
  EXPECT_EQ(e.value("goroscope_leak_suspected", {{"function", "main.poll"}, {"kind", "timer"}, {"verdict", "leak"}}),
            1);
  EXPECT_EQ(e.value("goroscope_leak_suspected", {{"function", "main.retry2"}, {"verdict", "churn"}}), 1);
  EXPECT_EQ(e.find("goroscope_leak_suspected").size(), 2u);

  // Uncapped, a timer created before attach is named as such.
  auto all = expose(snap);
  EXPECT_EQ(all.value("goroscope_timers_active", {{"function", "(created before attach)"}, {"kind", "afterfunc"}}), 5);
}

TEST_F(PrometheusMetricsTest, AllocationsAreEstimatesCappedByBytes) {
  auto snap = snapshot();
  AllocationSnapshot a;
  auto site = [](std::string fn, double bytes, double objects) {
    AllocationSite s;
    s.function = std::move(fn);
    s.file = "/src/app/alloc.go";
    s.line = 7;
    s.bytes_total = bytes;
    s.objects_total = objects;
    return s;
  };
  a.sites = {site("main.big", 1e9, 10), site("main.mid", 5e6, 1e5), site("main.small", 4096, 64),
             site(kUnattributedSite, 100, 2)};
  a.gc.cycles = 17;
  snap->allocations = a;
  PrometheusOptions cap;
  cap.max_sites_per_process = 2;
  auto e = expose(snap, cap);
  EXPECT_EQ(e.value("goroscope_allocated_bytes_total", {{"function", "main.big"}}), 1e9);
  EXPECT_EQ(e.value("goroscope_allocated_bytes_total", {{"function", "main.mid"}}), 5e6);
  EXPECT_EQ(e.value("goroscope_allocated_bytes_total", {{"function", "other"}}), 4096 + 100);
  EXPECT_EQ(e.value("goroscope_allocated_objects_total", {{"function", "other"}}), 66);
  EXPECT_EQ(e.find("goroscope_allocated_bytes_total").size(), 3u);
  EXPECT_NE(e.help.at("goroscope_allocated_bytes_total").find("estimate"), std::string::npos);
  EXPECT_NE(e.help.at("goroscope_allocated_objects_total").find("estimate"), std::string::npos);
  EXPECT_EQ(e.value("goroscope_gc_cycles_total", {{"pid", "4242"}}), 17);
}

TEST_F(PrometheusMetricsTest, ProcessAndDaemonFamilies) {
  auto snap = snapshot(100, "/usr/bin/api");
  snap->timer_regime = "new";
  snap->events_received = 5000;
  snap->lost_events = 12;
  snap->probe_hits = {{"newproc1", 4000}, {"alloc_refill", 900}};
  snap->probe_duty = {{"goroutines", 1.0}, {"allocations", 0.25}};
  ProbeGroupStatus sampled, exact;
  sampled.name = "timers";
  sampled.estimated = true;
  exact.name = "goroutines";
  snap->probe_groups = {sampled, exact};
  snap->estimated_overhead_seconds = 0.75;
  snap->overhead_budget = 0.01;
  snap->census_available = true;
  snap->census_seconds = 0.003;
  auto no_census = snapshot(101, "/usr/bin/worker");
  auto same_pid = snapshot(100, "/usr/bin/impostor");
  DaemonStatus d;
  d.revision = "abc123";
  d.attach_errors_total = {{"permission", 3}, {"not_go", 1}};
  d.failing = {{200, "/usr/bin/legacy", "permission", {"shop", "legacy-7d9", "app"}},
               {200, "/usr/bin/legacy", "permission", {"shop", "legacy-7d9", "app"}}};
  ScrapeTarget in_pod{snap, binary_, {"shop", "api-5f6", "api"}};
  auto e = expose({in_pod, {no_census, binary_, {}}, {same_pid, binary_, {}}, {nullptr, binary_, {}}}, d);

  const std::map<std::string, std::string> api = {
      {"exe", "/usr/bin/api"}, {"pid", "100"}, {"namespace", "shop"}, {"pod", "api-5f6"}, {"container", "api"}};
  auto with = [&](std::map<std::string, std::string> more) {
    more.insert(api.begin(), api.end());
    return more;
  };
  EXPECT_EQ(
      e.value("goroscope_target_info", with({{"go_version", binary_->go_version().raw}, {"timer_regime", "new"}})), 1);
  EXPECT_EQ(e.find("goroscope_target_info").size(), 2u) << "the second pid 100 and the null snapshot are skipped";
  EXPECT_TRUE(e.find("goroscope_target_info", {{"exe", "/usr/bin/impostor"}}).empty());
  EXPECT_EQ(e.value("goroscope_events_received_total", api), 5000);
  EXPECT_EQ(e.value("goroscope_events_lost_total", api), 12);
  EXPECT_EQ(e.value("goroscope_probe_hits_total", with({{"probe", "newproc1"}})), 4000);
  EXPECT_EQ(e.value("goroscope_probe_hits_total", with({{"probe", "alloc_refill"}})), 900);
  EXPECT_EQ(e.value("goroscope_probe_duty_ratio", with({{"probe_group", "allocations"}})), 0.25);
  EXPECT_EQ(e.value("goroscope_probe_duty_ratio", with({{"probe_group", "goroutines"}})), 1);
  EXPECT_EQ(e.value("goroscope_probe_group_estimated", with({{"probe_group", "timers"}})), 1);
  EXPECT_EQ(e.value("goroscope_probe_group_estimated", with({{"probe_group", "goroutines"}})), 0);
  EXPECT_EQ(e.value("goroscope_estimated_overhead_seconds_total", api), 0.75);
  EXPECT_EQ(e.value("goroscope_overhead_budget_ratio", api), 0.01);
  EXPECT_EQ(e.value("goroscope_census_duration_seconds", api), 0.003);
  EXPECT_EQ(e.find("goroscope_census_duration_seconds").size(), 1u) << "no census, no duration";
  EXPECT_EQ(e.value("goroscope_events_lost_total", {{"pid", "101"}}), 0);
  EXPECT_TRUE(e.find("goroscope_gc_cycles_total").empty()) << "allocations not followed";

  EXPECT_EQ(e.value("goroscope_attach_errors_total", {{"reason", "permission"}}), 3);
  EXPECT_EQ(e.value("goroscope_attach_errors_total", {{"reason", "not_go"}}), 1);
  EXPECT_EQ(e.value("goroscope_target_attach_failed", {{"pid", "200"},
                                                       {"exe", "/usr/bin/legacy"},
                                                       {"reason", "permission"},
                                                       {"namespace", "shop"},
                                                       {"pod", "legacy-7d9"},
                                                       {"container", "app"}}),
            1);
  EXPECT_EQ(e.value("goroscope_build_info", {{"version", GOROSCOPE_VERSION}, {"revision", "abc123"}}), 1);
  for (const auto& [family, type] : e.type) {
    bool counter = family.ends_with("_total");
    EXPECT_EQ(type == "counter", counter) << family << " is a " << type;
  }
}

// One exposition as a busy node would serve it: several processes, hundreds
// of real sites each (every function of the binary as a creation site),
// timers and allocations with awkward names, verdicts, pod labels.
std::vector<ScrapeTarget> busy_node(const std::shared_ptr<const GoBinary>& binary, const std::vector<RealSite>& real) {
  std::vector<ScrapeTarget> targets;
  for (int proc = 0; proc < 3; proc++) {
    auto s = std::make_shared<AttachSnapshot>();
    s->pid = 1000 + proc;
    s->exe = proc == 2 ? "/opt/we\"ird\\dir/new\nline/Größe-svc" : "/srv/bin/svc" + std::to_string(proc);
    s->go_version = binary->go_version().raw;
    s->timer_regime = proc ? "new" : "old";
    for (size_t i = 0; i < real.size(); i++) {
      SiteStats st;
      st.gopc = real[i].gopc;
      st.start_pc = real[i].start_pc;
      st.live = i % 17;
      st.created_total = i * 3 + st.live;
      st.exited_total = i * 3;
      if (st.live) st.states = {{"chan receive", st.live - 1}, {"sync.Mutex.Lock", 1}};
      st.max_blocked_seconds = double(i);
      for (size_t k = 0; k < i % 5; k++) st.lifetimes.add(1e-6 * double(1u << (k * 5)));
      s->sites.push_back(st);
      if (i % 97 == 5) s->leaks.push_back({st.gopc, i % 2 ? "growing" : "stuck", st.live, 1, "test"});
    }
    for (int t = 0; t < 80; t++) {
      TimerSiteStats ts;
      ts.function = t % 9 == 0 ? "main.Handle[struct { Name string \"json:\\\"name\\\"\" }].func" + std::to_string(t)
                               : "main.timer" + std::to_string(t);
      ts.file = "/src/app/timers.go";
      ts.line = t;
      ts.kind = static_cast<TimerKind>(t % 4);
      ts.active = t % 13;
      ts.created_total = t * 2 + ts.active;
      s->timer_sites.push_back(ts);
    }
    s->timer_verdicts = {{"main.timer4", "/src/app/timers.go", 4, TimerKind::Timer, "leak", 4, "x"}};
    AllocationSnapshot a;
    for (int k = 0; k < 120; k++) {
      AllocationSite as;
      as.function = k == 119 ? "main.bad\xFF" : "main.alloc" + std::to_string(k);
      as.file = "/src/app/alloc.go";
      as.line = k + 1;
      as.bytes_total = 1e3 * k + 0.5;
      as.objects_total = k * 1.25;
      a.sites.push_back(as);
    }
    a.gc.cycles = 40 + proc;
    s->allocations = a;
    s->events_received = 123456;
    s->lost_events = proc;
    s->probe_hits = {{"newproc1", 99}, {"gdestroy", 98}, {"alloc_refill", 7}};
    s->probe_duty = {{"goroutines", 1}, {"allocations", 0.1}};
    s->estimated_overhead_seconds = 1.5;
    s->overhead_budget = 0.02;
    s->census_available = true;
    s->census_seconds = 0.0125;
    targets.push_back({s, binary, {"ns" + std::to_string(proc), "pod-" + std::to_string(proc), "c"}});
  }
  return targets;
}

// The awkward sites among the busiest: busy_node gives site i i % 17 live.
std::vector<RealSite> busy_sites(std::vector<RealSite> real, const std::vector<RealSite>& awkward) {
  for (size_t k = 0; k < awkward.size(); k++) real.insert(real.begin() + 16 + 17 * k, awkward[k]);
  return real;
}

TEST_F(PrometheusMetricsTest, BusyNodeHasNoDuplicateSeriesAndBoundedCardinality) {
  auto targets = busy_node(binary_, busy_sites(distinct_sites(297), awkward_sites()));
  // prometheus-cpp 1.0.1 writes HELP as given, but the format wants \\ and
  // \n escaped there: the texts must not need it.
  for (const auto& f : metric_families(targets, {})) {
    EXPECT_EQ(f.help.find_first_of("\\\n"), std::string::npos) << f.name;
    EXPECT_FALSE(f.metric.empty()) << f.name;
  }
  auto e = expose(targets);
  std::set<std::pair<std::string, std::map<std::string, std::string>>> series;
  for (const auto& s : e.samples) EXPECT_TRUE(series.insert({s.name, s.labels}).second) << "duplicate " << s.name;
  for (int pid = 1000; pid < 1003; pid++) {
    // 300 sites: the top 50 and "other".
    EXPECT_EQ(e.find("goroscope_goroutines_created_total", {{"pid", std::to_string(pid)}}).size(), 51u);
    EXPECT_EQ(e.find("goroscope_allocated_bytes_total", {{"pid", std::to_string(pid)}}).size(), 51u);
    // The folded totals are exact: other = everything minus the named sites.
    double all_created = 0;
    for (const auto& site : targets[pid - 1000].snapshot->sites) all_created += double(site.created_total);
    double exported = 0;
    for (const auto& s : e.find("goroscope_goroutines_created_total", {{"pid", std::to_string(pid)}}))
      exported += s.value;
    EXPECT_EQ(exported, all_created);
  }
}

// promtool's linter is what Prometheus users run; its verdict must be clean:
// exit 0 and nothing printed.
TEST_F(PrometheusMetricsTest, BusyNodeExpositionPassesPromtoolLint) {
  DaemonStatus d;
  d.revision = "0123abc";
  d.attach_errors_total = {{"permission", 2}};
  d.failing = {{5, "/usr/bin/old\"one", "unsupported_go_version", {}}};
  auto awkward = awkward_sites();
  auto targets = busy_node(binary_, busy_sites(distinct_sites(297), awkward));
  const std::string text = prometheus::TextSerializer().Serialize(metric_families(targets, d));
  ASSERT_GT(text.size(), 10000u);
  for (const auto& site : awkward)  // kept under their own names (live 16 % 17 is the most)
    EXPECT_NE(text.find("function=\"" + site.function + "\""), std::string::npos) << site.function;
  const std::string path = ::testing::TempDir() + "goroscope_exposition_" + std::to_string(getpid()) + ".prom";
  std::ofstream(path) << text;
  const std::string cmd = "promtool check metrics < '" + path + "' 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  int status = pclose(p);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_NE(WEXITSTATUS(status), 127) << "promtool not found: run scripts/install-deps.sh (Debian package prometheus)";
  EXPECT_EQ(WEXITSTATUS(status), 0) << out;
  EXPECT_EQ(out, "");
  std::remove(path.c_str());
}

}  // namespace
}  // namespace goroscope

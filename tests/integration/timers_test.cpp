// `goroscope attach` end to end on the timer fixture (tests/fixtures/timerzoo,
// built in the go 1.19 module and, as timerzoo@go123, in a go 1.23 module):
// every timer mistake is found at its exact creation line (file:line from
// the fixture's marker comments) with the right kind, counts and the
// verdict of the process's timer regime — old (Go <= 1.22, or a go 1.19
// module built by a newer toolchain, whose DefaultGODEBUG has
// asynctimerchan=1, or GODEBUG=asynctimerchan=1) or new (Go 1.23 timers);
// the Stop/Reset control raises nothing. Across Go 1.19, 1.22, 1.23, 1.26,
// default, stripped and PIE. Root only; with CI=true a missing privilege
// fails.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/background_attach.h"
#include "tests/support/fixture_matrix.h"
#include "tests/support/goroscope_cli.h"
#include "tests/support/privileges.h"
#include "tests/support/running_fixture.h"

namespace goroscope {
namespace {

using testing::BackgroundAttach;

using nlohmann::json;
using testing::FixtureBinary;
using testing::RunningFixture;

bool go123_module(const FixtureBinary& fx) { return fx.fixture == "timerzoo@go123"; }
int go_minor(const FixtureBinary& fx) { return std::stoi(fx.go.substr(4)); }  // "go1.22.12" -> 22
// Which regime the build runs without a GODEBUG override.
bool old_regime(const FixtureBinary& fx) { return go_minor(fx) <= 22 || !go123_module(fx); }

int marker_line(const std::string& marker) {
  std::ifstream in(std::string(GOROSCOPE_SOURCE_DIR) + "/tests/fixtures/timerzoo/main.go");
  std::string line;
  for (int n = 1; std::getline(in, line); n++)
    if (line.find("// " + marker) != std::string::npos) return n;
  throw std::runtime_error("no marker " + marker + " in timerzoo");
}

// The fixture source as the binary records it: module-relative under
// -trimpath, else absolute in whichever checkout the cached build came from
// (so matched by its tail). The go 1.23 module builds the same file through
// a symlink in tests/fixtures/go123/.
struct FixtureFile {
  bool go123, trimmed;
  bool matches(const json& file) const {
    if (!file.is_string()) return false;
    const std::string f = file.get<std::string>();
    if (trimmed)
      return f == (go123 ? "goroscope.test/go123/timerzoo/main.go" : "goroscope.test/fixtures/timerzoo/main.go");
    const std::string tail = go123 ? "/tests/fixtures/go123/timerzoo/main.go" : "/tests/fixtures/timerzoo/main.go";
    return f.size() > tail.size() && f[0] == '/' && f.compare(f.size() - tail.size(), tail.size(), tail) == 0;
  }
};
FixtureFile fixture_file(const FixtureBinary& fx) { return {go123_module(fx), fx.variant == "stripped"}; }

json attach(pid_t pid, const std::vector<std::string>& args) {
  std::vector<std::string> all = {"attach", "--pid", std::to_string(pid), "--format", "json"};
  all.insert(all.end(), args.begin(), args.end());
  testing::CliOutcome o = testing::run_goroscope(all);
  if (o.status != 0) throw std::runtime_error("goroscope attach failed (" + std::to_string(o.status) + "): " + o.err);
  return json::parse(o.out);
}

// `timers`: the report's "timers" section.
const json* timer_site(const json& timers, const FixtureFile& file, int line) {
  for (const auto& s : timers["sites"])
    if (file.matches(s["file"]) && s["line"] == line) return &s;
  return nullptr;
}

const json* leak_at(const json& r, const FixtureFile& file, int line) {
  for (const auto& l : r["leaks"])
    if (l["kind"] == "timer" && file.matches(l["file"]) && l["line"] == line) return &l;
  return nullptr;
}

uint64_t n(const json& site, const char* field) { return site[field].get<uint64_t>(); }

std::vector<FixtureBinary> builds() {
  std::vector<FixtureBinary> out = testing::runnable_builds("timerzoo", {"go1.19", "go1.22", "go1.23", "go1.26"});
  for (const auto& b : testing::runnable_builds("timerzoo@go123", {"go1.23", "go1.26"})) out.push_back(b);
  return out;
}

std::string name(const ::testing::TestParamInfo<FixtureBinary>& info) {
  return (go123_module(info.param) ? "mod123_" : "mod119_") + testing::build_name(info);
}

class Timers : public ::testing::TestWithParam<FixtureBinary> {
 protected:
  void SetUp() override { GOROSCOPE_REQUIRE_PRIVILEGES(); }
};

// All scenarios at once for 3 s. Rates (fixture defaults): time.After ~400/s
// (one per message, every 2 ms), a ticker task every 50 ms, a time.Tick
// every 20 ms, an AfterFunc every 10 ms, a control round every ~25 ms.
// Tolerances: counts over the ~3 s window are bounded loosely from below
// (uprobes slow the target) and from above by the fixture's own pace over
// the report's duration plus one second (the probes attach before the
// clock starts); "in flight" allows the operation under way when the report
// is taken.
TEST_P(Timers, SitesKindsCountsAndVerdictsFollowTheRegime) {
  const FixtureBinary& fx = GetParam();
  const bool old = old_regime(fx);
  RunningFixture target(fx.path, {});
  ASSERT_TRUE(target.wait_for_line("ready", std::chrono::seconds(10)));
  // Let AfterFuncs pile up before attach, for the census.
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  json r = attach(target.pid(), {"--duration", "3s", "--interval", "500ms", "--ticker-firing", "1s"});
  const FixtureFile file = fixture_file(fx);
  const json& timers = r["timers"];
  SCOPED_TRACE(timers.dump(1));

  ASSERT_EQ(timers["probed"], true);
  EXPECT_EQ(timers["regime"], old ? "old" : "new");
  const std::string why = timers["regime_reason"];
  if (go_minor(fx) <= 22)
    EXPECT_NE(why.find("predates"), std::string::npos) << why;
  else if (old)
    EXPECT_NE(why.find("DefaultGODEBUG asynctimerchan=1"), std::string::npos) << why;
  else
    EXPECT_NE(why.find("asynctimerchan=0"), std::string::npos) << why;
  EXPECT_EQ(r["events"]["lost"], 0);
  const int in_flight = 2;
  const double window = r["duration_seconds"].get<double>() + 1;
  auto at_most = [&](double per_second) { return uint64_t(per_second * window); };

  // time.After in a select loop: created once per message, never fired or
  // stopped. A leak while every one sits in a timer heap for a minute; churn
  // with the Go 1.23 collectable timers.
  const json* after = timer_site(timers, file, marker_line("AFTER_SITE"));
  ASSERT_TRUE(after);
  EXPECT_EQ((*after)["function"], "main.afterConsumer");
  EXPECT_EQ((*after)["kind"], "timer");
  EXPECT_GE(n(*after, "created_total"), 300u);
  EXPECT_LE(n(*after, "created_total"), at_most(500));
  EXPECT_EQ(n(*after, "fired_total"), 0u);
  EXPECT_EQ(n(*after, "stopped_total"), 0u);
  EXPECT_EQ((*after)["verdict"], old ? "leak" : "churn");
  EXPECT_EQ(leak_at(r, file, marker_line("AFTER_SITE")) != nullptr, old);
  if (old) {
    EXPECT_GE(n(*after, "active_long"), n(*after, "created_total") - in_flight);
  }

  // Tickers created per task, two ticks taken, never stopped: retained and
  // still firing in the old regime; collected once dropped in the new one.
  const json* ticker = timer_site(timers, file, marker_line("TICKER_SITE"));
  ASSERT_TRUE(ticker);
  EXPECT_EQ((*ticker)["function"], "main.pollWithTicker");
  EXPECT_EQ((*ticker)["kind"], "ticker");
  EXPECT_GE(n(*ticker, "created_total"), 40u);
  EXPECT_LE(n(*ticker, "created_total"), at_most(20));
  EXPECT_EQ(n(*ticker, "stopped_total"), 0u);
  EXPECT_GE(n(*ticker, "fired_total"), 2 * (n(*ticker, "created_total") - 3));
  EXPECT_EQ((*ticker)["verdict"], old ? "leak" : "churn");
  EXPECT_EQ(leak_at(r, file, marker_line("TICKER_SITE")) != nullptr, old);

  // time.Tick in a select loop: a new ticker per iteration.
  const json* tick = timer_site(timers, file, marker_line("TICK_SITE"));
  ASSERT_TRUE(tick);
  EXPECT_EQ((*tick)["function"], "main.tickLoop");
  EXPECT_EQ((*tick)["kind"], "ticker");
  EXPECT_GE(n(*tick, "created_total"), 60u);
  EXPECT_LE(n(*tick, "created_total"), at_most(50));
  EXPECT_EQ(n(*tick, "stopped_total"), 0u);
  if (!old) {
    EXPECT_EQ(n(*tick, "fired_total"), 0u);
  }
  EXPECT_EQ((*tick)["verdict"], old ? "leak" : "churn");
  EXPECT_EQ(leak_at(r, file, marker_line("TICK_SITE")) != nullptr, old);

  // An hour-long AfterFunc per request: pending in a timer heap, with its
  // closure, in both regimes.
  const json* afterfunc = timer_site(timers, file, marker_line("AFTERFUNC_SITE"));
  ASSERT_TRUE(afterfunc);
  EXPECT_EQ((*afterfunc)["function"], "main.handleRequest");
  EXPECT_EQ((*afterfunc)["kind"], "afterfunc");
  EXPECT_GE(n(*afterfunc, "created_total"), 150u);
  EXPECT_LE(n(*afterfunc, "created_total"), at_most(100));
  EXPECT_EQ(n(*afterfunc, "fired_total"), 0u);
  EXPECT_EQ(n(*afterfunc, "stopped_total"), 0u);
  EXPECT_EQ(n(*afterfunc, "active"), n(*afterfunc, "created_total"));
  EXPECT_EQ((*afterfunc)["verdict"], "leak");
  const json* afterfunc_leak = leak_at(r, file, marker_line("AFTERFUNC_SITE"));
  ASSERT_TRUE(afterfunc_leak);
  EXPECT_EQ((*afterfunc_leak)["timer_kind"], "afterfunc");
  EXPECT_EQ((*afterfunc_leak)["function"], "main.handleRequest");

  // The control: every timer reset once and stopped, every ticker stopped.
  const json* control = timer_site(timers, file, marker_line("CONTROL_TIMER_SITE"));
  const json* control_ticker = timer_site(timers, file, marker_line("CONTROL_TICKER_SITE"));
  ASSERT_TRUE(control && control_ticker);
  EXPECT_EQ((*control)["function"], "main.controlRound");
  EXPECT_EQ((*control)["kind"], "timer");
  EXPECT_GE(n(*control, "created_total"), 40u);
  EXPECT_NEAR(double(n(*control, "stopped_total")), double(n(*control, "created_total")), in_flight);
  EXPECT_NEAR(double(n(*control, "reset_total")), double(n(*control, "created_total")), in_flight);
  EXPECT_LE(n(*control, "active"), 1u);
  EXPECT_EQ((*control)["verdict"], "");
  EXPECT_EQ((*control_ticker)["kind"], "ticker");
  EXPECT_NEAR(double(n(*control_ticker, "stopped_total")), double(n(*control_ticker, "created_total")), in_flight);
  EXPECT_GE(n(*control_ticker, "fired_total") + in_flight, n(*control_ticker, "created_total"));
  EXPECT_LE(n(*control_ticker, "active"), 1u);
  EXPECT_EQ((*control_ticker)["verdict"], "");
  EXPECT_FALSE(leak_at(r, file, marker_line("CONTROL_TIMER_SITE")));
  EXPECT_FALSE(leak_at(r, file, marker_line("CONTROL_TICKER_SITE")));

  // The census saw the AfterFuncs armed before attach (about 100 a second
  // for the second before): pending, kind known, site unknown.
  EXPECT_EQ(timers["census"]["available"], true);
  uint64_t census_afterfuncs = 0;
  for (const auto& s : timers["sites"])
    if (s["file"] == "" && s["kind"] == "afterfunc") census_afterfuncs += n(s, "from_census");
  EXPECT_GE(census_afterfuncs, 50u);
}
INSTANTIATE_TEST_SUITE_P(Matrix, Timers, ::testing::ValuesIn(builds()), name);

// Exact counts: 200 control rounds (NewTimer, Reset, Stop) and 100 timers
// received from, driven over stdin while attached. No tolerance.
TEST_P(Timers, CreatedStoppedResetAndFiredAreExact) {
  const FixtureBinary& fx = GetParam();
  RunningFixture target(fx.path, {"-scenarios", "none"});
  ASSERT_TRUE(target.wait_for_line("ready", std::chrono::seconds(10)));
  BackgroundAttach attach(target.pid());
  ASSERT_TRUE(attach.wait_attached());
  ASSERT_TRUE(target.send("control 200"));
  ASSERT_TRUE(target.wait_for_line("done control 200", std::chrono::seconds(30)));
  ASSERT_TRUE(target.send("fire 100"));
  ASSERT_TRUE(target.wait_for_line("done fire 100", std::chrono::seconds(30)));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  json r = attach.stop();
  const FixtureFile file = fixture_file(fx);
  SCOPED_TRACE(r["timers"].dump(1));

  const json* control = timer_site(r["timers"], file, marker_line("CONTROL_TIMER_SITE"));
  ASSERT_TRUE(control);
  EXPECT_EQ((*control)["kind"], "timer");
  EXPECT_EQ(n(*control, "created_total"), 200u);
  EXPECT_EQ(n(*control, "reset_total"), 200u);
  EXPECT_EQ(n(*control, "stopped_total"), 200u);
  EXPECT_EQ(n(*control, "fired_total"), 0u);
  EXPECT_EQ(n(*control, "active"), 0u);

  const json* fire = timer_site(r["timers"], file, marker_line("FIRE_SITE"));
  ASSERT_TRUE(fire);
  EXPECT_EQ((*fire)["function"], "main.fireRound");
  EXPECT_EQ((*fire)["kind"], "timer");
  EXPECT_EQ(n(*fire, "created_total"), 100u);
  EXPECT_EQ(n(*fire, "fired_total"), 100u);
  EXPECT_EQ(n(*fire, "stopped_total"), 0u);
  EXPECT_EQ(n(*fire, "active"), 0u);
  EXPECT_TRUE(r["leaks"].empty()) << r["leaks"].dump(1);
  EXPECT_EQ(r["events"]["lost"], 0);
  // The target is unharmed after detach.
  ASSERT_TRUE(target.send("fire 3"));
  EXPECT_TRUE(target.wait_for_line("done fire 3", std::chrono::seconds(10)));
}

// GODEBUG=asynctimerchan=1 in the process environment overrides a go 1.23
// module's default: the old regime, and time.After in a loop is a leak again.
TEST(TimerRegime, ProcessGodebugOverridesTheBinaryDefault) {
  GOROSCOPE_REQUIRE_PRIVILEGES();
  FixtureBinary fx;
  for (const auto& b : testing::fixtures("timerzoo@go123", "default"))
    if (b.go.rfind("go1.26.", 0) == 0) fx = b;
  ASSERT_FALSE(fx.path.empty());
  setenv("GODEBUG", "asynctimerchan=1", 1);
  RunningFixture target(fx.path, {"-scenarios", "after"});
  unsetenv("GODEBUG");
  ASSERT_TRUE(target.wait_for_line("ready", std::chrono::seconds(10)));
  json r = attach(target.pid(), {"--duration", "2s", "--interval", "500ms"});
  EXPECT_EQ(r["timers"]["regime"], "old");
  EXPECT_NE(r["timers"]["regime_reason"].get<std::string>().find("GODEBUG=asynctimerchan=1"), std::string::npos);
  const FixtureFile file = fixture_file(fx);
  const json* after = timer_site(r["timers"], file, marker_line("AFTER_SITE"));
  ASSERT_TRUE(after) << r["timers"].dump(1);
  EXPECT_EQ((*after)["verdict"], "leak");
  EXPECT_TRUE(leak_at(r, file, marker_line("AFTER_SITE")));
}

}  // namespace
}  // namespace goroscope

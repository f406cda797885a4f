// `goroscope attach` end to end on the goroutine fixtures: each classic leak
// is found at the exact `go` statement (file:line, read from the fixture
// source by its marker comment), with the right wait state and blocking line;
// the healthy controls raise no leak; counts are exact where the fixture
// makes them exact. Across Go 1.19, 1.21, 1.23 and 1.26, default, stripped
// and PIE builds. Root only; with CI=true a missing privilege fails.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
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

const std::string& kGoroscope = testing::goroscope_path();

// The line of `marker` in tests/fixtures/<fixture>/main.go.
int marker_line(const std::string& fixture, const std::string& marker) {
  std::ifstream in(std::string(GOROSCOPE_SOURCE_DIR) + "/tests/fixtures/" + fixture + "/main.go");
  std::string line;
  for (int n = 1; std::getline(in, line); n++)
    if (line.find("// " + marker) != std::string::npos) return n;
  throw std::runtime_error("no marker " + marker + " in " + fixture);
}

// A fixture's main.go as its build records it: absolute, in whichever
// checkout the (cached) fixture was built from — so matched by its tail — or
// module-relative under -trimpath.
struct FixtureFile {
  std::string fixture;
  bool trimmed;
  bool matches(const json& file) const {
    if (!file.is_string()) return false;
    const std::string f = file.get<std::string>();
    if (trimmed) return f == "goroscope.test/fixtures/" + fixture + "/main.go";
    const std::string tail = "/tests/fixtures/" + fixture + "/main.go";
    return f.size() > tail.size() && f[0] == '/' && f.compare(f.size() - tail.size(), tail.size(), tail) == 0;
  }
};

FixtureFile fixture_file(const FixtureBinary& fx) { return {fx.fixture, fx.variant == "stripped"}; }

// Runs `goroscope attach --pid PID --format json ARGS...` to completion.
json attach(pid_t pid, const std::vector<std::string>& args) {
  std::vector<std::string> all = {"attach", "--pid", std::to_string(pid), "--format", "json"};
  all.insert(all.end(), args.begin(), args.end());
  testing::CliOutcome o = testing::run_goroscope(all);
  if (o.status != 0) throw std::runtime_error("goroscope attach failed (" + std::to_string(o.status) + "): " + o.err);
  return json::parse(o.out);
}

const json* find_site(const json& report, const FixtureFile& file, int line) {
  for (const auto& s : report["goroutines"]["sites"])
    if (file.matches(s["file"]) && s["line"] == line) return &s;
  return nullptr;
}

std::vector<json> leaks_in(const json& report, const FixtureFile& file) {
  std::vector<json> out;
  for (const auto& l : report["leaks"])
    if (file.matches(l["file"])) out.push_back(l);
  return out;
}

// Every scenario runs against Go 1.19, 1.21, 1.23 and 1.26, default,
// stripped and PIE.
std::vector<FixtureBinary> scenario_builds(const std::string& fixture) {
  return testing::runnable_builds(fixture, {"go1.19", "go1.21", "go1.23", "go1.26"});
}

// Short windows so a test takes seconds; the fixtures leak tens per second.
const std::vector<std::string> kFastLeakArgs = {"--duration", "3s", "--interval", "250ms", "--leak-window", "1500ms"};

struct LeakCase {
  std::string fixture, first_line, state, function;
  bool site_in_fixture = true;  // false: the `go` statement is in the standard library
};

void expect_leak(const FixtureBinary& fx, const LeakCase& c) {
  RunningFixture target(fx.path, {"-every", "20ms"});
  ASSERT_TRUE(target.wait_for_line(c.first_line, std::chrono::seconds(10)));
  json r = attach(target.pid(), kFastLeakArgs);
  const FixtureFile file = fixture_file(fx);
  int block_line = marker_line(fx.fixture, "LEAK_BLOCK");

  const json* site = nullptr;
  if (c.site_in_fixture) {
    site = find_site(r, file, marker_line(fx.fixture, "LEAK_SITE"));
  } else {
    for (const auto& s : r["goroutines"]["sites"])
      if (s["function"] == c.function) site = &s;
  }
  ASSERT_TRUE(site) << r.dump(1);
  EXPECT_EQ((*site)["function"], c.function);
  const int live = (*site)["live"].get<int>();
  EXPECT_GE(live, 50);
  // Every goroutine of the site is parked in the leak's wait state at the
  // leaking line — but for the newest round's (at most 3), which the final
  // census may catch before they block.
  const int in_flight = 3;
  for (const auto& [state, n] : (*site)["states"].items())
    if (state != c.state) EXPECT_TRUE(state == "runnable" || state == "running") << state;
  EXPECT_GE((*site)["states"].value(c.state, 0), live - in_flight) << (*site)["states"].dump();
  int blocked_at_line = 0;
  for (const auto& b : (*site)["blocking_sites"]) {
    if (file.matches(b["file"]) && b["line"] == block_line) blocked_at_line = b["count"];
  }
  EXPECT_GE(blocked_at_line, live - in_flight) << (*site)["blocking_sites"].dump();

  ASSERT_EQ(r["leaks"].size(), 1u) << r["leaks"].dump(1);
  const json& leak = r["leaks"][0];
  EXPECT_EQ(leak["kind"], "goroutine");
  EXPECT_EQ(leak["verdict"], "growing");
  EXPECT_EQ(leak["function"], (*site)["function"]);
  EXPECT_EQ(leak["file"], (*site)["file"]);
  EXPECT_EQ(leak["line"], (*site)["line"]);
  EXPECT_NE(leak["reason"].get<std::string>().find(c.state), std::string::npos) << leak["reason"];
  EXPECT_EQ(r["events"]["lost"], 0);
}

class Scenario : public ::testing::TestWithParam<FixtureBinary> {
 protected:
  void SetUp() override { GOROSCOPE_REQUIRE_PRIVILEGES(); }
};

class FanOutLeak : public Scenario {};
TEST_P(FanOutLeak, AbandonedSendersAreALeakAtTheGoStatement) {
  expect_leak(GetParam(), {"fanoutleak", "round 1 leaked 2", "chan send", "main.firstAnswer"});
}
INSTANTIATE_TEST_SUITE_P(Matrix, FanOutLeak, ::testing::ValuesIn(scenario_builds("fanoutleak")), testing::build_name);

class ReceiverLeak : public Scenario {};
TEST_P(ReceiverLeak, ReceiversOnANeverClosedChannelAreALeak) {
  expect_leak(GetParam(), {"receiverleak", "round 1 leaked 2", "chan receive", "main.main"});
}
INSTANTIATE_TEST_SUITE_P(Matrix, ReceiverLeak, ::testing::ValuesIn(scenario_builds("receiverleak")), testing::build_name);

class SelectLeak : public Scenario {};
TEST_P(SelectLeak, SelectWithNoReadyCaseIsALeak) {
  expect_leak(GetParam(), {"selectleak", "round 1 leaked 1", "select", "main.main"});
}
INSTANTIATE_TEST_SUITE_P(Matrix, SelectLeak, ::testing::ValuesIn(scenario_builds("selectleak")), testing::build_name);

class ContextLeak : public Scenario {};
TEST_P(ContextLeak, WatchersOnANeverCancelledContextAreALeak) {
  expect_leak(GetParam(), {"contextleak", "round 1 leaked 1", "chan receive", "main.main"});
}
INSTANTIATE_TEST_SUITE_P(Matrix, ContextLeak, ::testing::ValuesIn(scenario_builds("contextleak")), testing::build_name);

class AfterFuncLeak : public Scenario {};
TEST_P(AfterFuncLeak, BlockedAfterFuncCallbacksAreALeakOfTimeGoFunc) {
  // The runtime starts AfterFunc callbacks with `go f()` in time.goFunc.
  expect_leak(GetParam(), {"afterfuncleak", "round 1 armed 1", "chan send", "time.goFunc", false});
}
INSTANTIATE_TEST_SUITE_P(Matrix, AfterFuncLeak, ::testing::ValuesIn(scenario_builds("afterfuncleak")), testing::build_name);

class HealthyControls : public Scenario {};
TEST_P(HealthyControls, IdlePoolContendedMutexAndShortRequestsAreNotLeaks) {
  const FixtureBinary& pool_build = GetParam();
  auto same_build = [&](const std::string& fixture) {
    for (const auto& b : testing::fixtures(fixture, pool_build.variant))
      if (b.go == pool_build.go) return b;
    throw std::runtime_error("no build");
  };
  struct Control {
    std::string fixture;
    std::vector<std::string> args;
    std::string marker;
    int exact_live;  // -1: short-lived goroutines, checked by rate instead
  };
  for (const Control& c : std::vector<Control>{{"workerpool", {"-workers", "16"}, "POOL_SITE", 16},
                                               {"mutexcontention", {"-goroutines", "32"}, "LOCK_SITE", 32},
                                               {"shortlived", {"-rate", "400"}, "REQUEST_SITE", -1}}) {
    SCOPED_TRACE(c.fixture);
    FixtureBinary fx = same_build(c.fixture);
    RunningFixture target(fx.path, c.args);
    ASSERT_TRUE(target.wait_for_line("ready", std::chrono::seconds(10)));
    json r = attach(target.pid(), kFastLeakArgs);
    EXPECT_TRUE(r["leaks"].empty()) << r["leaks"].dump(1);
    const json* site = find_site(r, fixture_file(fx), marker_line(c.fixture, c.marker));
    ASSERT_TRUE(site);
    if (c.fixture == "mutexcontention") {
      // Most of the 32 wait on the lock at any moment; the report names the
      // caller's Lock line, not sync/mutex.go where Lock is inlined. Mutex
      // waits have their own wait reason from Go 1.20 on.
      const std::string reason = fx.go.rfind("go1.19.", 0) == 0 ? "semacquire" : "sync.Mutex.Lock";
      uint64_t at_lock = 0;
      for (const auto& w : r["goroutines"]["blocking_sites"])
        if (fixture_file(fx).matches(w["file"]) && w["line"] == marker_line(c.fixture, "LOCK_BLOCK"))
          at_lock = w["states"].value(reason, uint64_t{0});
      EXPECT_GE(at_lock, 16u) << r["goroutines"]["blocking_sites"].dump(1);
    }
    if (c.exact_live >= 0) {
      EXPECT_EQ((*site)["live"], c.exact_live);
    } else {
      // ~400/s for 3 s; each lives 1-5 ms, so nearly all have exited.
      EXPECT_GT((*site)["created_total"].get<int>(), 600);
      EXPECT_LT((*site)["live"].get<int>(), 40);
      EXPECT_GT((*site)["lifetime"]["count"].get<int>(), 600);
    }
  }
}
INSTANTIATE_TEST_SUITE_P(Matrix, HealthyControls, ::testing::ValuesIn(scenario_builds("workerpool")), testing::build_name);

class SpawnCounts : public Scenario {};
TEST_P(SpawnCounts, CreationsExitsLifetimesAndBlockedAreExact) {
  const FixtureBinary& fx = GetParam();
  RunningFixture target(fx.path, {});
  ASSERT_TRUE(target.wait_for_line("ready", std::chrono::seconds(10)));
  BackgroundAttach attach(target.pid());
  ASSERT_TRUE(attach.wait_attached());
  ASSERT_TRUE(target.send("spawn 1000"));
  ASSERT_TRUE(target.wait_for_line("spawned 1000", std::chrono::seconds(30)));
  ASSERT_TRUE(target.send("block 40"));
  ASSERT_TRUE(target.wait_for_line("blocked 40", std::chrono::seconds(30)));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // let the 40 park
  json r = attach.stop();

  const FixtureFile file = fixture_file(fx);
  const json* spawned = find_site(r, file, marker_line("spawnexit", "SPAWN_SITE"));
  const json* blocked = find_site(r, file, marker_line("spawnexit", "BLOCK_SITE"));
  ASSERT_TRUE(spawned && blocked) << r["goroutines"]["sites"].dump(1);
  EXPECT_EQ((*spawned)["function"], "main.main");
  EXPECT_EQ((*spawned)["created_total"], 1000);
  EXPECT_EQ((*spawned)["exited_total"], 1000);
  EXPECT_EQ((*spawned)["live"], 0);
  EXPECT_EQ((*spawned)["lifetime"]["count"], 1000);
  EXPECT_EQ((*blocked)["created_total"], 40);
  EXPECT_EQ((*blocked)["live"], 40);
  EXPECT_EQ((*blocked)["states"]["chan receive"], 40);
  // The same 40, seen from where they wait.
  bool wait_found = false;
  for (const auto& w : r["goroutines"]["blocking_sites"]) {
    if (!file.matches(w["file"]) || w["line"] != marker_line("spawnexit", "BLOCK_SITE")) continue;
    wait_found = true;
    EXPECT_EQ(w["count"], 40);
    EXPECT_EQ(w["states"]["chan receive"], 40);
    ASSERT_EQ(w["created_at"].size(), 1u);
    EXPECT_EQ(w["created_at"][0]["line"], marker_line("spawnexit", "BLOCK_SITE"));
  }
  EXPECT_TRUE(wait_found) << r["goroutines"]["blocking_sites"].dump(1);
  EXPECT_TRUE(r["leaks"].empty()) << r["leaks"].dump(1);
  EXPECT_EQ(r["stopped_by"], "signal");
  EXPECT_EQ(r["events"]["lost"], 0);
  // The target is unharmed after detach.
  ASSERT_TRUE(target.send("spawn 10"));
  EXPECT_TRUE(target.wait_for_line("spawned 10", std::chrono::seconds(10)));
}
INSTANTIATE_TEST_SUITE_P(Matrix, SpawnCounts, ::testing::ValuesIn(scenario_builds("spawnexit")), testing::build_name);

TEST(AttachErrors, BadTargetsGiveOneLineErrors) {
  GOROSCOPE_REQUIRE_PRIVILEGES();
  struct Case {
    std::vector<std::string> args;
    std::string needle;
  };
  pid_t gone = fork();
  if (gone == 0) _exit(0);
  waitpid(gone, nullptr, 0);
  pid_t not_go = fork();
  if (not_go == 0) {
    execl("/bin/sleep", "sleep", "30", nullptr);
    _exit(127);
  }
  std::vector<Case> cases = {
      {{"--pid", "999999999"}, "no process with PID 999999999"},
      {{"--pid", std::to_string(gone)}, "no process with PID"},
      {{"--pid", std::to_string(not_go)}, "not a Go binary"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> args = {"attach"};
    args.insert(args.end(), c.args.begin(), c.args.end());
    testing::CliOutcome o = testing::run_goroscope(args);
    EXPECT_EQ(o.status, 1) << c.needle;
    EXPECT_EQ(std::count(o.err.begin(), o.err.end(), '\n'), 1) << o.err;
    EXPECT_NE(o.err.find(c.needle), std::string::npos) << o.err;
  }
  kill(not_go, SIGKILL);
  waitpid(not_go, nullptr, 0);
}

TEST(AttachErrors, TargetExitingMidRunEndsTheRunWithAReport) {
  GOROSCOPE_REQUIRE_PRIVILEGES();
  FixtureBinary fx;
  for (const auto& b : testing::fixtures("fanoutleak", "default"))
    if (b.go.rfind("go1.26.", 0) == 0) fx = b;
  RunningFixture target(fx.path, {"-every", "20ms"});
  ASSERT_TRUE(target.wait_for_line("round 1 leaked 2", std::chrono::seconds(10)));
  BackgroundAttach attach(target.pid());
  ASSERT_TRUE(attach.wait_attached());
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  target.kill_and_reap();
  // No SIGINT needed: goroscope notices the exit and reports.
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  json r = attach.stop();  // SIGINT to an exited goroscope is harmless
  EXPECT_EQ(r["stopped_by"], "target exited");
  EXPECT_GT(r["goroutines"]["created_total"].get<int>(), 0);
}

class AllocationsInReport : public Scenario {};
TEST_P(AllocationsInReport, TopAllocationSiteIsNamedInTheAttachReport) {
  const FixtureBinary& fx = GetParam();
  RunningFixture target(fx.path, {});
  ASSERT_TRUE(target.wait_for_line("ready", std::chrono::seconds(10)));
  json r = attach(target.pid(), {"--duration", "3s", "--interval", "500ms"});
  const json& a = r["allocations"];
  ASSERT_FALSE(a["sites"].empty()) << a.dump(1);
  // allochot spends most of its bytes at HOT_SITE (4 KiB per round), then
  // LARGE_SITE and SECONDARY_SITE; sampled figures are estimates.
  const json& top = a["sites"][0];
  EXPECT_TRUE(fixture_file(fx).matches(top["file"])) << top.dump();
  EXPECT_EQ(top["line"], marker_line("allochot", "HOT_SITE"));
  EXPECT_EQ(top["function"], "main.hot");
  EXPECT_TRUE(top["estimated"].get<bool>());
  EXPECT_GT(top["bytes_total"].get<double>(), 1e6);
  EXPECT_TRUE(a["estimated"].get<bool>());
  EXPECT_GT(a["gc"]["cycles"].get<int>(), 0);
  EXPECT_FALSE(r["overhead"]["sampled_probes"].empty());
}
INSTANTIATE_TEST_SUITE_P(Matrix, AllocationsInReport, ::testing::ValuesIn(scenario_builds("allochot")),
                         testing::build_name);

class StartupLeak : public Scenario {};
TEST_P(StartupLeak, CensusSeesGoroutinesLeakedBeforeAttachAndCallsThemStuck) {
  const FixtureBinary& fx = GetParam();
  RunningFixture target(fx.path, {"-senders", "3000", "-selects", "700"});
  ASSERT_TRUE(target.wait_for_line("ready", std::chrono::seconds(10)));
  json r = attach(target.pid(), {"--duration", "2500ms", "--interval", "250ms", "--stuck-min", "500", "--stuck-after", "1s"});
  const FixtureFile file = fixture_file(fx);
  const json* senders = find_site(r, file, marker_line("startupleak", "SEND_SITE"));
  const json* selects = find_site(r, file, marker_line("startupleak", "SELECT_SITE"));
  ASSERT_TRUE(senders && selects) << r["goroutines"]["sites"].dump(1);
  EXPECT_EQ((*senders)["live"], 3000);
  EXPECT_EQ((*senders)["alive_at_attach"], 3000);
  EXPECT_EQ((*senders)["created_total"], 0);
  EXPECT_EQ((*senders)["states"]["chan send"], 3000);
  EXPECT_EQ((*selects)["live"], 700);
  EXPECT_EQ((*selects)["states"]["select"], 700);
  auto leaks = leaks_in(r, file);
  ASSERT_EQ(leaks.size(), 2u) << r["leaks"].dump(1);
  for (const auto& l : leaks) EXPECT_EQ(l["verdict"], "stuck");
}
INSTANTIATE_TEST_SUITE_P(Matrix, StartupLeak, ::testing::ValuesIn(scenario_builds("startupleak")), testing::build_name);

}  // namespace
}  // namespace goroscope

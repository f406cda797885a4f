// The overhead governor on a real hot loop (tests/fixtures/hotloop), through
// `goroscope attach` in its default mode: goroutines spawned as fast as they
// finish, and time.After / NewTimer+Stop loops. The governor must throttle
// the probe group (sampled, duty well below 1), keep the estimated probe
// cost near its budget, and still report the right sites with totals that
// estimate the loop's own exact counts (goroutines: exactly scaled by the
// runtime's goroutine counter; timers: time-scaled, a lower bound). With --overhead-budget 0 the same
// loop is followed exactly (the control that shows the counts are real).
// Go 1.21 and 1.26, default/stripped/PIE. Root only; CI=true makes a missing
// privilege a failure.
#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "tests/support/background_attach.h"
#include "tests/support/fixture_matrix.h"
#include "tests/support/fixture_source.h"
#include "tests/support/privileges.h"
#include "tests/support/running_fixture.h"

namespace goroscope {
namespace {

using nlohmann::json;
using testing::BackgroundAttach;
using testing::FixtureBinary;
using testing::RunningFixture;

int marker_line(const std::string& marker) { return testing::marker_line("hotloop", marker); }

bool is_fixture_file(const json& file) {
  if (!file.is_string()) return false;
  const std::string f = file.get<std::string>();
  const std::string tail = "fixtures/hotloop/main.go";  // absolute, or module-relative under -trimpath
  return f.size() >= tail.size() && f.compare(f.size() - tail.size(), tail.size(), tail) == 0;
}

const json* goroutine_site(const json& r, int line) {
  for (const auto& s : r["goroutines"]["sites"])
    if (is_fixture_file(s["file"]) && s["line"] == line) return &s;
  return nullptr;
}

const json* timer_site(const json& r, int line) {
  for (const auto& s : r["timers"]["sites"])
    if (is_fixture_file(s["file"]) && s["line"] == line) return &s;
  return nullptr;
}

const json* group(const json& r, const std::string& name) {
  for (const auto& g : r["overhead"]["groups"])
    if (g["name"] == name) return &g;
  return nullptr;
}

// "spawn hot=123 cold=45" -> {hot, cold}
std::map<std::string, uint64_t> counts(const std::string& line) {
  std::map<std::string, uint64_t> out;
  std::regex kv("(\\w+)=(\\d+)");
  for (auto it = std::sregex_iterator(line.begin(), line.end(), kv); it != std::sregex_iterator(); ++it)
    out[(*it)[1]] = std::stoull((*it)[2]);
  return out;
}

// Runs one hot phase under goroscope and returns its report and the
// fixture's own counts.
std::pair<json, std::map<std::string, uint64_t>> run_phase(const FixtureBinary& fx, const std::string& phase,
                                                           const std::vector<std::string>& args, double seconds) {
  RunningFixture target(fx.path, {});
  if (!target.wait_for_line("ready", std::chrono::seconds(10))) throw std::runtime_error("hotloop not ready");
  BackgroundAttach attach(target.pid(), args);
  if (!attach.wait_attached()) throw std::runtime_error("goroscope did not attach");
  target.send("start " + phase);
  if (!target.wait_for_line("started", std::chrono::seconds(10))) throw std::runtime_error("hot loop did not start");
  std::this_thread::sleep_for(std::chrono::milliseconds(int(seconds * 1000)));
  target.send("stop");
  std::string line = target.wait_for_prefix(phase + " ", std::chrono::seconds(30));
  // Past the last sampling window (up to a period plus a window).
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  json r = attach.stop();
  target.send("quit");
  return {r, counts(line)};
}

class Governor : public ::testing::TestWithParam<FixtureBinary> {
 protected:
  void SetUp() override { GOROSCOPE_REQUIRE_PRIVILEGES(); }
};

TEST_P(Governor, ThrottlesHotGoroutineProbesAndScalesTheirCounts) {
  auto [r, truth] = run_phase(GetParam(), "spawn", {"--interval", "500ms", "--no-allocations", "--no-timers"}, 6);
  SCOPED_TRACE(r["overhead"].dump(1));
  const json* g = group(r, "goroutines");
  ASSERT_TRUE(g);
  EXPECT_EQ((*g)["estimated"], true);
  EXPECT_LT((*g)["attached_fraction"].get<double>(), 0.5);
  EXPECT_EQ(r["goroutines"]["estimated"], true);
  EXPECT_DOUBLE_EQ(r["overhead"]["budget"].get<double>(), 0.01);
  // The probes' estimated cost over the run: the budget's third for this
  // group, plus the 50 ms burst allowance and the first check's overshoot.
  const double elapsed = r["duration_seconds"];
  const double group_cost = (*g)["estimated_seconds"];
  EXPECT_LT(group_cost, 0.01 / 3 * elapsed * 2 + 0.05 + 0.1) << elapsed << " s";

  const json* hot = goroutine_site(r, marker_line("HOT_SPAWN_SITE"));
  ASSERT_TRUE(hot);
  EXPECT_EQ((*hot)["function"], "main.spawnHot");
  const double hot_created = (*hot)["created_total"].get<double>();
  ASSERT_GT(truth["hot"], 100000u);
  // A sampled estimate of a million-goroutine loop.
  EXPECT_NEAR(hot_created / double(truth["hot"]), 1.0, 0.3) << hot_created << " vs " << truth["hot"];
  EXPECT_NEAR((*hot)["exited_total"].get<double>() / hot_created, 1.0, 0.1);
}

TEST_P(Governor, ExactWithoutBudget) {
  auto [r, truth] = run_phase(GetParam(), "spawn",
                              {"--interval", "500ms", "--no-allocations", "--no-timers", "--overhead-budget", "0"}, 2);
  const json* g = group(r, "goroutines");
  ASSERT_TRUE(g);
  EXPECT_EQ((*g)["estimated"], false);
  EXPECT_EQ(r["goroutines"]["estimated"], false);
  const json* hot = goroutine_site(r, marker_line("HOT_SPAWN_SITE"));
  const json* cold = goroutine_site(r, marker_line("COLD_SPAWN_SITE"));
  ASSERT_TRUE(hot && cold);
  EXPECT_EQ((*hot)["created_total"], truth["hot"]);
  EXPECT_EQ((*cold)["created_total"], truth["cold"]);
  EXPECT_EQ(r["events"]["lost"], 0);
}

TEST_P(Governor, ThrottlesHotTimerProbesAndScalesTheirCounts) {
  auto [r, truth] = run_phase(GetParam(), "timers", {"--interval", "500ms", "--no-allocations"}, 6);
  SCOPED_TRACE(r["timers"].dump(1));
  const json* g = group(r, "timers");
  ASSERT_TRUE(g);
  EXPECT_EQ((*g)["estimated"], true);
  EXPECT_LT((*g)["attached_fraction"].get<double>(), 0.5);
  EXPECT_EQ(r["timers"]["estimated"], true);

  const json* after = timer_site(r, marker_line("AFTER_SITE"));
  const json* stopped = timer_site(r, marker_line("STOP_SITE"));
  ASSERT_TRUE(after && stopped);
  EXPECT_EQ((*after)["function"], "main.afterLoop");
  EXPECT_EQ((*stopped)["function"], "main.stopLoop");
  ASSERT_GT(truth["after"], 50000u);
  ASSERT_GT(truth["stopped"], 50000u);
  // Timers have no exact counter in the runtime: time-scaled windows give a
  // lower bound (this loop runs ~20x slower while its probes are attached),
  // never an overestimate, and far more than the windows saw.
  const double after_created = (*after)["created_total"];
  const double stopped_created = (*stopped)["created_total"];
  EXPECT_LE(after_created, 1.2 * double(truth["after"]));
  EXPECT_LE(stopped_created, 1.2 * double(truth["stopped"]));
  EXPECT_GE(after_created, 1000);
  EXPECT_GE(stopped_created, 1000);
  // time.After in the loop is never stopped; the NewTimer+Stop site is,
  // and its timers are not reported as active (no false leak).
  EXPECT_EQ((*after)["stopped_total"], 0);
  EXPECT_GT((*stopped)["stopped_total"].get<double>(), 0.8 * (*stopped)["created_total"].get<double>());
  EXPECT_EQ((*stopped)["verdict"], "");
  EXPECT_NE((*after)["verdict"], "");
}

std::vector<FixtureBinary> builds() { return testing::runnable_builds("hotloop", {"go1.21", "go1.26"}); }

INSTANTIATE_TEST_SUITE_P(Hotloop, Governor, ::testing::ValuesIn(builds()), testing::build_name);

}  // namespace
}  // namespace goroscope

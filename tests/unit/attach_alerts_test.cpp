// attach_alerts: which alerts an AttachSnapshot raises and with which labels.
// Goroutine sites resolve through a real fixture binary's pclntab (a gopc
// just past a function's entry names that function); timer verdicts carry
// their site already.
#include "exporters/attach_alerts.h"

#include <gtest/gtest.h>

#include <set>

#include "symbols/go_binary.h"
#include "tests/support/fixture_matrix.h"

namespace goroscope {
namespace {

class AttachAlertsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto b = GoBinary::open(testing::fixtures("leakdemo", "default").back().path);
    ASSERT_TRUE(b) << b.error().message;
    binary_ = *b;
  }
  static inline std::shared_ptr<const GoBinary> binary_;

  static AttachSnapshot snapshot() {
    AttachSnapshot s;
    s.pid = 4242;
    s.exe = "/usr/bin/leakdemo";
    s.elapsed_seconds = 100;
    return s;
  }
};

const std::set<std::string> kSiteLabels = {"alertname", "severity", "exe",  "pid",    "function",
                                           "file",      "line",     "kind", "verdict"};

std::set<std::string> keys(const std::map<std::string, std::string>& m) {
  std::set<std::string> k;
  for (const auto& [name, value] : m) k.insert(name);
  return k;
}

TEST_F(AttachAlertsTest, GoroutineLeakNamesItsCreationSite) {
  auto fn = binary_->pclntab().func_by_name("main.(*orderService).handleOrder");
  ASSERT_TRUE(fn);
  AttachSnapshot s = snapshot();
  s.leaks.push_back({fn->entry + 1, "growing", 120, 2.5, "live count rose by 60 in 30 s, 100% blocked"});

  auto alerts = attach_alerts(s, binary_->pclntab(), 0);
  ASSERT_EQ(alerts.size(), 1u);
  const Alert& a = alerts[0];
  EXPECT_EQ(a.alertname, "GoroscopeGoroutineLeak");
  auto labels = a.identity();
  EXPECT_EQ(keys(labels), kSiteLabels);
  EXPECT_EQ(labels["function"], "main.(*orderService).handleOrder");
  EXPECT_TRUE(labels["file"].ends_with("leakdemo/main.go")) << labels["file"];
  EXPECT_GT(std::stoi(labels["line"]), 0);
  EXPECT_EQ(labels["kind"], "goroutine");
  EXPECT_EQ(labels["verdict"], "growing");
  EXPECT_EQ(labels["exe"], "/usr/bin/leakdemo");
  EXPECT_EQ(labels["pid"], "4242");
  EXPECT_EQ(labels["severity"], "warning");
  const std::string& d = a.annotations.at("description");
  EXPECT_NE(d.find("main.(*orderService).handleOrder at " + labels["file"] + ":" + labels["line"]), std::string::npos)
      << d;
  EXPECT_NE(d.find("/usr/bin/leakdemo (PID 4242)"), std::string::npos) << d;
  EXPECT_NE(d.find("120 goroutines"), std::string::npos) << d;
  EXPECT_FALSE(a.annotations.at("summary").empty());
}

TEST_F(AttachAlertsTest, TimerLeaksButNotChurn) {
  AttachSnapshot s = snapshot();
  s.timer_verdicts.push_back({"main.poll", "/src/app/poll.go", 17, TimerKind::Ticker, "leak", 40, "40 unstopped"});
  s.timer_verdicts.push_back({"main.retry", "/src/app/retry.go", 9, TimerKind::Timer, "churn", 900, "churn"});
  auto alerts = attach_alerts(s, binary_->pclntab(), 0);
  ASSERT_EQ(alerts.size(), 1u);
  auto labels = alerts[0].identity();
  EXPECT_EQ(alerts[0].alertname, "GoroscopeTimerLeak");
  EXPECT_EQ(keys(labels), kSiteLabels);
  EXPECT_EQ(labels["function"], "main.poll");
  EXPECT_EQ(labels["file"], "/src/app/poll.go");
  EXPECT_EQ(labels["line"], "17");
  EXPECT_EQ(labels["kind"], "timer");
  EXPECT_EQ(labels["verdict"], "leak");
  EXPECT_NE(alerts[0].annotations.at("description").find("main.poll at /src/app/poll.go:17"), std::string::npos);
}

TEST_F(AttachAlertsTest, EventsLostOnlyWhileBeingLost) {
  AttachSnapshot s = snapshot();
  s.lost_events = 500;
  auto now_losing = attach_alerts(s, binary_->pclntab(), 200);
  ASSERT_EQ(now_losing.size(), 1u);
  EXPECT_EQ(now_losing[0].alertname, "GoroscopeEventsLost");
  EXPECT_EQ(keys(now_losing[0].identity()), (std::set<std::string>{"alertname", "severity", "exe", "pid"}));
  EXPECT_NE(now_losing[0].annotations.at("description").find("300 events lost"), std::string::npos);
  EXPECT_TRUE(attach_alerts(s, binary_->pclntab(), 500).empty());
}

TEST_F(AttachAlertsTest, OverheadAboveBudget) {
  AttachSnapshot s = snapshot();
  s.overhead_budget = 0.01;            // 1% of one CPU
  s.estimated_overhead_seconds = 0.5;  // over 100 s: 0.5%
  EXPECT_TRUE(attach_alerts(s, binary_->pclntab(), 0).empty());
  s.estimated_overhead_seconds = 2;  // 2%
  auto alerts = attach_alerts(s, binary_->pclntab(), 0);
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].alertname, "GoroscopeOverheadAboveBudget");
  EXPECT_NE(alerts[0].annotations.at("description").find("2.00% of one CPU"), std::string::npos);
  s.overhead_budget = 0;  // no governor: no budget to be above
  EXPECT_TRUE(attach_alerts(s, binary_->pclntab(), 0).empty());
}

TEST_F(AttachAlertsTest, NoOverheadAlertRightAfterAttach) {
  // The daemon's first snapshot, published just after attach: 4 hits of
  // 5.2 us over 0.3 ms is "7% of one CPU" but says nothing yet.
  AttachSnapshot s = snapshot();
  s.overhead_budget = 0.01;
  s.elapsed_seconds = 0.0003;
  s.estimated_overhead_seconds = 2.1e-5;
  EXPECT_TRUE(attach_alerts(s, binary_->pclntab(), 0).empty());
  s.elapsed_seconds = 59;  // 8.5% of one CPU, judged only from a minute on
  s.estimated_overhead_seconds = 5;
  EXPECT_TRUE(attach_alerts(s, binary_->pclntab(), 0).empty());
  s.elapsed_seconds = 60;
  EXPECT_EQ(attach_alerts(s, binary_->pclntab(), 0).size(), 1u);
}

TEST(AttachFailedAlert, NamesTargetAndError) {
  Alert a = attach_failed_alert("/usr/bin/orders", 77, "Go 1.17 is not supported");
  EXPECT_EQ(a.alertname, "GoroscopeTargetAttachFailed");
  EXPECT_EQ(a.identity().at("pid"), "77");
  EXPECT_NE(a.annotations.at("description").find("/usr/bin/orders (PID 77)"), std::string::npos);
  EXPECT_NE(a.annotations.at("description").find("Go 1.17 is not supported"), std::string::npos);
}

}  // namespace
}  // namespace goroscope

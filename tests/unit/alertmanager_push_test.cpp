// AlertmanagerPush against a real Alertmanager on loopback, against a port
// where nothing listens, and against a server that never answers. Times are
// shortened through the options (back-off from 100 ms, sub-second timeouts)
// so each test stays within a few seconds; none needs privileges.
#include "exporters/alertmanager_push.h"

#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "tests/support/alertmanager_process.h"
#include "tests/support/silent_tcp_server.h"

namespace goroscope {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::AlertmanagerProcess;

// The log lines the pusher writes, collected from its thread.
class LogLines {
 public:
  std::function<void(const std::string&)> sink() {
    return [this](const std::string& line) {
      std::lock_guard<std::mutex> lock(mu_);
      lines_.push_back(line);
    };
  }
  size_t count(const std::string& part) const {
    std::lock_guard<std::mutex> lock(mu_);
    size_t n = 0;
    for (const auto& l : lines_) n += l.find(part) != std::string::npos;
    return n;
  }
  std::string all() const {
    std::lock_guard<std::mutex> lock(mu_);
    std::string s;
    for (const auto& l : lines_) s += l + "\n";
    return s;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

template <typename F>
bool eventually(F&& condition, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(20ms);
  }
  return condition();
}

std::chrono::microseconds time_of(const std::function<void()>& f) {
  auto t0 = Clock::now();
  f();
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0);
}

AlertmanagerPushOptions fast_options(std::vector<std::string> urls, LogLines& log) {
  AlertmanagerPushOptions o;
  o.urls = std::move(urls);
  o.connect_timeout = 500ms;
  o.request_timeout = 1000ms;
  o.backoff = {100ms, 1600ms, 0.2};
  o.generator_url = "http://goroscope.test/";
  o.log = log.sink();
  return o;
}

Alert leak_alert(const std::string& function, int line) {
  Alert a;
  a.alertname = alert_names::kGoroutineLeak;
  a.labels = {{"severity", "warning"}, {"exe", "/usr/bin/orders"},      {"pid", "4242"},
              {"function", function},  {"file", "/src/orders/main.go"}, {"line", std::to_string(line)},
              {"kind", "goroutine"},   {"verdict", "growing"}};
  a.annotations = {{"summary", "Goroutine leak (growing) at " + function + " in /usr/bin/orders"},
                   {"description", "120 goroutines created by " + function + " at /src/orders/main.go:" +
                                       std::to_string(line) + " in /usr/bin/orders (PID 4242) are growing"}};
  return a;
}

// The alert in an Alertmanager's GET answer with exactly these labels.
std::optional<nlohmann::json> find_alert(const nlohmann::json& alerts, const Alert& a) {
  nlohmann::json labels = a.identity();
  for (const auto& got : alerts)
    if (got["labels"] == labels) return got;
  return std::nullopt;
}

bool holds(const AlertmanagerProcess& am, const Alert& a) { return find_alert(am.active_alerts(), a).has_value(); }

int64_t seconds_until(const std::string& rfc3339) {
  std::tm tm{};
  strptime(rfc3339.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  return static_cast<int64_t>(timegm(&tm)) - static_cast<int64_t>(std::time(nullptr));
}

TEST(AlertmanagerPush, RejectsBadUrls) {
  LogLines log;
  EXPECT_THROW(AlertmanagerPush(fast_options({}, log)), std::invalid_argument);
  EXPECT_THROW(AlertmanagerPush(fast_options({"alertmanager:9093"}, log)), std::invalid_argument);
  EXPECT_THROW(AlertmanagerPush(fast_options({"ftp://alertmanager:9093"}, log)), std::invalid_argument);
}

TEST(AlertmanagerPush, DeliversLabelsAndAnnotationsThenResolves) {
  GOROSCOPE_REQUIRE_ALERTMANAGER();
  AlertmanagerProcess am(testing::free_loopback_port());
  LogLines log;
  auto opts = fast_options({am.url() + "/"}, log);  // a trailing slash is fine
  AlertmanagerPush push(opts);

  Alert a = leak_alert("main.(*orderService).handleOrder", 41), b = leak_alert("main.fastestQuote", 30);
  push.update({a, b});
  ASSERT_TRUE(eventually([&] { return holds(am, a) && holds(am, b); }, 5s)) << log.all() << am.log();

  auto got = *find_alert(am.active_alerts(), a);
  EXPECT_EQ(got["annotations"], nlohmann::json(a.annotations));
  EXPECT_EQ(got["labels"]["alertname"], "GoroscopeGoroutineLeak");
  EXPECT_EQ(got["generatorURL"], "http://goroscope.test/");
  EXPECT_EQ(got["status"]["state"], "active");
  // Valid for four re-send intervals (30 s by default), not the
  // Alertmanager's resolve_timeout (5 min).
  int64_t valid = seconds_until(got["endsAt"].get<std::string>());
  EXPECT_GE(valid, 100);
  EXPECT_LE(valid, 121);

  // `a` leaves the set: resolved at once; `b` stays.
  push.update({b});
  ASSERT_TRUE(eventually([&] { return !holds(am, a); }, 5s)) << log.all();
  EXPECT_TRUE(holds(am, b));
  push.update({});
  ASSERT_TRUE(eventually([&] { return am.active_alerts().empty(); }, 5s)) << log.all();

  // Three pushes: {a, b}; b active + a resolved; b resolved. The last
  // answer may still be on its way to the sender.
  EXPECT_TRUE(eventually([&] { return push.alerts_sent() == 5; }, 1s)) << push.alerts_sent();
  EXPECT_EQ(push.send_failures(), 0u);
  EXPECT_FALSE(push.backing_off());
  EXPECT_EQ(log.count("delivering alerts"), 1u) << log.all();
}

TEST(AlertmanagerPush, ResendsActiveAlertsEachInterval) {
  GOROSCOPE_REQUIRE_ALERTMANAGER();
  AlertmanagerProcess am(testing::free_loopback_port());
  LogLines log;
  auto opts = fast_options({am.url()}, log);
  opts.resend_interval = 300ms;
  AlertmanagerPush push(opts);
  push.update({leak_alert("main.worker", 12)});
  auto t0 = Clock::now();
  ASSERT_TRUE(eventually([&] { return push.alerts_sent() >= 5; }, 5s)) << log.all();
  auto took = Clock::now() - t0;
  // One push at once, then one per interval: four intervals at least.
  EXPECT_GE(took, 4 * 300ms - 50ms);
  EXPECT_EQ(am.active_alerts().size(), 1u);
  EXPECT_EQ(log.count("delivering alerts"), 1u) << log.all();
}

TEST(AlertmanagerPush, UnreachableBacksOffThenDeliversWhenItComesUp) {
  GOROSCOPE_REQUIRE_ALERTMANAGER();
  const int port = testing::free_loopback_port();  // nothing listens there yet
  LogLines log;
  AlertmanagerPush push(fast_options({"http://127.0.0.1:" + std::to_string(port)}, log));
  Alert a = leak_alert("main.leaky", 7);

  auto took = time_of([&] { push.update({a}); });
  RecordProperty("update_us", static_cast<int>(took.count()));
  EXPECT_LT(took, 50ms);

  // Failures at 0, ~0.1, ~0.3, ~0.7 s: the step doubles from 100 ms.
  ASSERT_TRUE(eventually([&] { return push.send_failures() >= 4; }, 5s)) << log.all();
  auto st = push.status().at(0);
  EXPECT_TRUE(st.backing_off);
  EXPECT_TRUE(push.backing_off());
  EXPECT_GE(st.consecutive_failures, 4u);
  EXPECT_GE(st.backoff, 800ms);
  EXPECT_LE(st.backoff, 1600ms);
  EXPECT_NE(st.last_error.find("onnect"), std::string::npos) << st.last_error;
  EXPECT_EQ(push.alerts_sent(), 0u);
  // Capped: after several more failures the step stays at 1.6 s.
  ASSERT_TRUE(eventually([&] { return push.send_failures() >= 6; }, 5s));
  EXPECT_EQ(push.status().at(0).backoff, 1600ms);
  // One line for the outage, not one per retry.
  EXPECT_EQ(log.count("cannot push alerts"), 1u) << log.all();

  AlertmanagerProcess am(port);
  auto up = Clock::now();
  ASSERT_TRUE(eventually([&] { return holds(am, a); }, 5s)) << log.all();
  // Within one capped back-off step of the Alertmanager coming up.
  auto delivered_after = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - up);
  RecordProperty("delivered_after_up_ms", static_cast<int>(delivered_after.count()));
  EXPECT_LT(delivered_after, 1600ms + 500ms);
  // The Alertmanager may hold the alert a moment before the sender has read
  // its answer.
  ASSERT_TRUE(eventually([&] { return !push.backing_off(); }, 1s));
  EXPECT_EQ(push.status().at(0).backoff, 0ms);
  EXPECT_TRUE(push.status().at(0).last_error.empty());
  EXPECT_EQ(log.count("delivering alerts again"), 1u) << log.all();
}

TEST(AlertmanagerPush, ResolutionIsRetriedUntilDelivered) {
  GOROSCOPE_REQUIRE_ALERTMANAGER();
  const int port = testing::free_loopback_port();
  LogLines log;
  AlertmanagerPush push(fast_options({"http://127.0.0.1:" + std::to_string(port)}, log));
  Alert a = leak_alert("main.leaky", 7);
  {
    AlertmanagerProcess am(port);
    push.update({a});
    ASSERT_TRUE(eventually([&] { return holds(am, a); }, 5s)) << log.all();
  }
  // Resolved while the Alertmanager is down: the resolution waits.
  push.update({});
  ASSERT_TRUE(eventually([&] { return push.send_failures() >= 2; }, 5s)) << log.all();
  uint64_t sent = push.alerts_sent();
  AlertmanagerProcess am(port);
  ASSERT_TRUE(eventually([&] { return push.alerts_sent() == sent + 1; }, 5s)) << log.all();
  // Delivered once, then nothing is left to send.
  std::this_thread::sleep_for(500ms);
  EXPECT_EQ(push.alerts_sent(), sent + 1);
  EXPECT_TRUE(am.active_alerts().empty());
}

TEST(AlertmanagerPush, EachAlertmanagerIsServedIndependently) {
  GOROSCOPE_REQUIRE_ALERTMANAGER();
  AlertmanagerProcess am(testing::free_loopback_port());
  const std::string dead = "http://127.0.0.1:" + std::to_string(testing::free_loopback_port());
  LogLines log;
  AlertmanagerPush push(fast_options({dead, am.url()}, log));
  Alert a = leak_alert("main.leaky", 7);
  push.update({a});
  ASSERT_TRUE(eventually([&] { return holds(am, a); }, 5s)) << log.all();
  ASSERT_TRUE(
      eventually([&] { return push.status().at(0).send_failures >= 2 && push.status().at(1).alerts_sent >= 1; }, 5s));
  auto st = push.status();
  EXPECT_EQ(st[0].url, dead);
  EXPECT_TRUE(st[0].backing_off);
  EXPECT_EQ(st[0].alerts_sent, 0u);
  EXPECT_FALSE(st[1].backing_off);
  EXPECT_EQ(st[1].send_failures, 0u);
  EXPECT_GE(st[1].alerts_sent, 1u);
}

TEST(AlertmanagerPush, SilentServerTimesOutAndNeverBlocksTheCaller) {
  testing::SilentTcpServer silent;
  LogLines log;
  auto opts = fast_options({silent.url()}, log);
  opts.request_timeout = 300ms;
  opts.backoff = {100ms, 200ms, 0.2};
  opts.queue_capacity = 4;
  AlertmanagerPush push(opts);

  push.update({leak_alert("main.leaky", 1)});
  ASSERT_TRUE(eventually([&] { return silent.bytes_received() > 0; }, 2s));
  // A request hangs now; the caller must not notice. A call that waited on
  // the request would take the 300 ms timeout; the bound leaves room for
  // scheduling noise on a loaded two-core machine (5 ms seen there).
  std::chrono::microseconds worst{0};
  for (int i = 0; i < 1000; i++) worst = std::max(worst, time_of([&] { push.update({leak_alert("main.leaky", i)}); }));
  RecordProperty("worst_update_us", static_cast<int>(worst.count()));
  EXPECT_LT(worst, 50ms);

  ASSERT_TRUE(eventually([&] { return push.send_failures() >= 2; }, 3s)) << log.all();
  auto st = push.status().at(0);
  EXPECT_NE(st.last_error.find("timed out"), std::string::npos) << st.last_error;
  EXPECT_GE(silent.accepted(), 1);
  EXPECT_EQ(log.count("cannot push alerts"), 1u) << log.all();
}

TEST(AlertmanagerPush, StopsAtOnceMidRequestAndMidBackoff) {
  testing::SilentTcpServer silent;
  LogLines log;
  {
    auto opts = fast_options({silent.url()}, log);
    opts.request_timeout = 30s;
    auto push = std::make_unique<AlertmanagerPush>(opts);
    push->update({leak_alert("main.leaky", 1)});
    ASSERT_TRUE(eventually([&] { return silent.bytes_received() > 0; }, 2s));
    auto took = time_of([&] { push.reset(); });
    RecordProperty("stop_mid_request_us", static_cast<int>(took.count()));
    EXPECT_LT(took, 200ms);
  }
  {
    auto opts = fast_options({"http://127.0.0.1:" + std::to_string(testing::free_loopback_port())}, log);
    opts.backoff = {30s, 60s, 0};
    auto push = std::make_unique<AlertmanagerPush>(opts);
    push->update({leak_alert("main.leaky", 1)});
    ASSERT_TRUE(eventually([&] { return push->backing_off(); }, 2s));
    auto took = time_of([&] { push.reset(); });
    RecordProperty("stop_mid_backoff_us", static_cast<int>(took.count()));
    EXPECT_LT(took, 200ms);
  }
}

}  // namespace
}  // namespace goroscope

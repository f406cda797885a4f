// A real Prometheus server (Debian's prometheus package) for the daemon's
// end-to-end test: on a loopback port, with its own temporary TSDB, scraping
// the given targets and evaluating the given rules every `interval`, and
// sending alerts to an Alertmanager. The test reads it back through its
// HTTP API (/api/v1/targets, /api/v1/query, /api/v1/alerts). Outside CI a
// missing binary skips those tests with a message; with CI=true it fails
// them (scripts/install-deps.sh installs it).
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/support/privileges.h"

namespace goroscope::testing {

// The prometheus / promtool binaries on PATH, or empty.
std::string prometheus_binary();
std::string promtool_binary();

// deploy/prometheus/alerts.yml (or any rule file's text) with every `for:`
// duration replaced by `for_duration`, as deploy/prometheus/README.md
// shows with sed. Throws if the text has no `for:` line.
std::string rules_with_for(const std::string& rules_yaml, const std::string& for_duration);

// The text of a file in this source tree (relative path), or throws.
std::string source_file(const std::string& relative_path);

struct PrometheusSetup {
  std::string job = "goroscope";
  std::vector<std::string> targets;  // host:port scraped at /metrics
  std::string interval = "1s";       // scrape and rule evaluation
  std::string rules;                 // a rule file's text; empty: none
  std::string alertmanager;          // host:port; empty: none
};

class PrometheusProcess {
 public:
  // Starts it and waits until /-/ready answers; throws if it does not
  // within 30 s (the message holds its log).
  PrometheusProcess(int port, const PrometheusSetup& setup);
  ~PrometheusProcess();  // SIGTERM (SIGKILL after 10 s), reap, remove its storage
  PrometheusProcess(const PrometheusProcess&) = delete;
  PrometheusProcess& operator=(const PrometheusProcess&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // GET /api/v1/<path>: the "data" member; throws on a transport error or
  // when the status is not "success".
  nlohmann::json api(const std::string& path) const;
  // GET /api/v1/query?query=<expr>: the result vector.
  nlohmann::json query(const std::string& expr) const;
  std::string log() const;

 private:
  void stop();
  int port_;
  std::string dir_;
  pid_t pid_ = -1;
};

}  // namespace goroscope::testing

#define GOROSCOPE_REQUIRE_PROMETHEUS()                                                                          \
  do {                                                                                                          \
    if (::goroscope::testing::prometheus_binary().empty() || ::goroscope::testing::promtool_binary().empty()) { \
      if (::goroscope::testing::in_ci()) FAIL() << "CI=true but prometheus/promtool are not on PATH";           \
      GTEST_SKIP() << "needs prometheus and promtool (scripts/install-deps.sh installs them)";                  \
    }                                                                                                           \
  } while (0)

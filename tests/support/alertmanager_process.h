// A real Alertmanager (Debian's prometheus-alertmanager) for the push tests:
// on a loopback port, with its own temporary storage, clustering off, and a
// route to a receiver that notifies nobody, so it only stores what it is
// sent. The test reads it back through GET /api/v2/alerts. Outside CI a
// missing binary skips those tests with a message; with CI=true it fails
// them (scripts/install-deps.sh installs it).
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/privileges.h"

namespace goroscope::testing {

// The alertmanager binary on PATH, or empty.
std::string alertmanager_binary();

// A loopback TCP port nothing listens on right now.
int free_loopback_port();

// GET `url` with libcurl: the body, or throws on a transport error or a
// non-2xx status.
std::string http_get(const std::string& url);

class AlertmanagerProcess {
 public:
  // Starts it and waits until /-/ready answers; throws if it does not
  // within 10 s (the message holds its log).
  explicit AlertmanagerProcess(int port);
  ~AlertmanagerProcess();  // SIGTERM, reap, remove its storage
  AlertmanagerProcess(const AlertmanagerProcess&) = delete;
  AlertmanagerProcess& operator=(const AlertmanagerProcess&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  // The alerts it holds as active (resolved ones are not listed).
  nlohmann::json active_alerts() const;
  std::string log() const;

 private:
  void stop();
  int port_;
  std::string dir_;
  pid_t pid_ = -1;
};

}  // namespace goroscope::testing

#define GOROSCOPE_REQUIRE_ALERTMANAGER()                                                                 \
  do {                                                                                                   \
    if (::goroscope::testing::alertmanager_binary().empty()) {                                           \
      if (::goroscope::testing::in_ci()) FAIL() << "CI=true but prometheus-alertmanager is not on PATH"; \
      GTEST_SKIP() << "needs prometheus-alertmanager (scripts/install-deps.sh installs it)";             \
    }                                                                                                    \
  } while (0)

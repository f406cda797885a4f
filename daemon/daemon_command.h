// `goroscope daemon`: a long-lived service that monitors the Go processes
// named by --pid and by --exe patterns (attaching to matching processes that
// start later, detaching from those that exit), serves their state as
// Prometheus metrics, and optionally pushes its leak verdicts to an
// Alertmanager. One TargetSession per process, each driven by its own
// engine thread; the scrape path reads published snapshots only.
#pragma once

#include <string>
#include <vector>

#include "daemon/target_session.h"

namespace goroscope {

struct DaemonOptions {
  std::vector<int> pids;
  std::vector<std::string> exe_patterns;
  std::string listen_address;  // default: ":" kDefaultMetricsPort
  std::string telemetry_path = "/metrics";
  std::string log_level = "info", log_format = "logfmt";
  double interval_seconds = 5;   // census, leak check and snapshot publication per target
  double discovery_seconds = 2;  // how often --exe patterns are matched against /proc
  size_t max_sites = 50;         // per process and domain in the metrics; the rest is function="other"
  std::vector<std::string> alertmanager_urls;
  double alert_resend_seconds = 30;
  EngineOptions engine;
};

// Runs until SIGINT/SIGTERM; returns the exit code. Startup errors (bad
// flags, port in use) are one line and exit 1; target errors are logged
// and exported, never fatal.
int run_daemon(const DaemonOptions& options);

}  // namespace goroscope

// AlertmanagerPush: delivers goroscope's alerts to one or more Alertmanagers
// through their v2 API (POST /api/v2/alerts), for hosts where no Prometheus
// evaluates deploy/prometheus/alerts.yml.
//
// The caller (the daemon's evaluation loop) hands over the full set of
// alerts active now at every evaluation; update() only queues it, so a slow
// or dead Alertmanager never stalls the engine or a scrape. A background
// thread turns successive sets into what Alertmanager expects of a client:
//  - an active alert is re-sent every `resend_interval` (Alertmanager's docs
//    ask for 30 s to 3 min) with endsAt = now + 4 x resend_interval, so it
//    stays firing through a few lost pushes yet expires by itself if the
//    daemon dies, whatever the Alertmanager's resolve_timeout;
//  - an alert that left the set is sent once with endsAt = the time it left,
//    and again with every later push to that Alertmanager until one succeeds;
//  - a push that fails (cannot connect, times out, HTTP 5xx) is retried with
//    capped, jittered exponential back-off, per Alertmanager; HTTP 4xx (the
//    payload was refused) is counted but not retried, since the same
//    payload would be refused again.
// One log line per change of an Alertmanager's state (first delivery,
// failing, refusing, delivering again), never one per retry.
//
// Stopping the daemon does not resolve its alerts: a monitor going away is
// not the leak going away; they expire at their endsAt instead.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "exporters/alert.h"
#include "exporters/retry_backoff.h"

namespace goroscope {

struct AlertmanagerPushOptions {
  // Each Alertmanager's base URL as given by --alertmanager.url, e.g.
  // http://alertmanager:9093 or https://host/prefix; "/api/v2/alerts" is
  // appended unless the URL already ends with it.
  std::vector<std::string> urls;
  std::chrono::milliseconds resend_interval{std::chrono::seconds(30)};
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(3)};
  std::chrono::milliseconds request_timeout{std::chrono::seconds(10)};  // the whole POST
  BackoffPolicy backoff;                                                // 1 s doubling to 60 s
  // Sets queued by update() and not yet taken by the sender; past this the
  // oldest is dropped (a later set says what is active now).
  size_t queue_capacity = 16;
  std::string generator_url;  // back-link sent with every alert; empty: none
  // One line per state change; default: "goroscope: <line>" on stderr.
  std::function<void(const std::string&)> log;
};

// One Alertmanager as the daemon may export it.
struct AlertmanagerStatus {
  std::string url;
  uint64_t alerts_sent = 0;    // alerts in accepted POSTs (re-sends count again)
  uint64_t send_failures = 0;  // POSTs that failed or were refused
  uint64_t consecutive_failures = 0;
  bool backing_off = false;
  std::chrono::milliseconds backoff{0};  // un-jittered current back-off step; 0 when not backing off
  std::string last_error;                // empty after a success
};

class AlertmanagerPush {
 public:
  // Starts the sender thread. Throws std::invalid_argument for an empty URL
  // list or a URL that is not http(s) (a user error for the CLI to print),
  // std::runtime_error if libcurl cannot be set up.
  explicit AlertmanagerPush(AlertmanagerPushOptions options);
  // Stops the sender at once, mid-request or mid-back-off; queued sets and
  // unsent resolutions are dropped.
  ~AlertmanagerPush();
  AlertmanagerPush(const AlertmanagerPush&) = delete;
  AlertmanagerPush& operator=(const AlertmanagerPush&) = delete;

  // The complete set of alerts active now (an empty set resolves all).
  // Never blocks on the network: it queues the set and wakes the sender.
  void update(std::vector<Alert> active);

  // Totals over all Alertmanagers.
  uint64_t alerts_sent() const;
  uint64_t send_failures() const;
  uint64_t updates_dropped() const { return updates_dropped_.load(); }
  // True while some Alertmanager is in back-off after failures.
  bool backing_off() const;
  std::vector<AlertmanagerStatus> status() const;

 private:
  // The sender thread's state: libcurl handles, the active alerts, and per
  // Alertmanager its unsent resolutions, back-off and health.
  struct Worker;
  struct Queued {
    std::vector<Alert> alerts;
    std::chrono::system_clock::time_point at;  // when update() was called
  };

  AlertmanagerPushOptions options_;
  std::unique_ptr<Worker> worker_;

  std::mutex queue_mu_;
  std::deque<Queued> queue_;
  std::atomic<uint64_t> updates_dropped_{0};

  mutable std::mutex status_mu_;
  std::vector<AlertmanagerStatus> status_;  // one per URL, written by the sender

  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace goroscope

// One alert as goroscope raises it, before any transport: the label set
// that identifies it (Alertmanager deduplicates on labels) and the
// annotations that only describe it (the latest received win). The names
// are the ones deploy/prometheus/alerts.yml uses, so a host alerted by
// Prometheus rules and one alerted by the daemon's own push see the same
// alerts.
#pragma once

#include <map>
#include <string>

namespace goroscope {

namespace alert_names {
inline constexpr const char* kGoroutineLeak = "GoroscopeGoroutineLeak";
inline constexpr const char* kTimerLeak = "GoroscopeTimerLeak";
inline constexpr const char* kEventsLost = "GoroscopeEventsLost";
inline constexpr const char* kTargetAttachFailed = "GoroscopeTargetAttachFailed";
inline constexpr const char* kOverheadAboveBudget = "GoroscopeOverheadAboveBudget";
}  // namespace alert_names

struct Alert {
  std::string alertname;                           // also sent as the "alertname" label
  std::map<std::string, std::string> labels;       // without alertname
  std::map<std::string, std::string> annotations;  // summary, description

  // The full identifying label set, alertname included.
  std::map<std::string, std::string> identity() const {
    auto all = labels;
    all["alertname"] = alertname;
    return all;
  }
};

}  // namespace goroscope

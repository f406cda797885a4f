#include "exporters/attach_alerts.h"

#include <cstdio>

namespace goroscope {

namespace {

// Leaks grow slowly and the process keeps running: worth a ticket, not a page.
constexpr const char* kSeverity = "warning";

// The overhead alert judges the cost since attach, and the daemon publishes
// its first snapshot within a millisecond of attaching: a few probe hits
// over that millisecond read as several percent of a CPU. Below a minute the
// ratio is noise, not a cost worth an alert.
constexpr double kMinOverheadSeconds = 60;

Alert process_alert(const char* name, const std::string& exe, int pid) {
  Alert a;
  a.alertname = name;
  a.labels = {{"severity", kSeverity}, {"exe", exe}, {"pid", std::to_string(pid)}};
  return a;
}

Alert site_alert(const char* name, const AttachSnapshot& snap, const SourceSite& where, const char* kind,
                 const std::string& verdict) {
  Alert a = process_alert(name, snap.exe, snap.pid);
  a.labels["function"] = where.function;
  a.labels["file"] = where.file;
  a.labels["line"] = std::to_string(where.line);
  a.labels["kind"] = kind;
  a.labels["verdict"] = verdict;
  return a;
}

std::string where_text(const SourceSite& s, const AttachSnapshot& snap) {
  return s.function + " at " + s.file + ":" + std::to_string(s.line) + " in " + snap.exe + " (PID " +
         std::to_string(snap.pid) + ")";
}

std::string percent(double fraction) {
  char buf[32];
  snprintf(buf, sizeof buf, "%.2f%%", fraction * 100);
  return buf;
}

}  // namespace

std::vector<Alert> attach_alerts(const AttachSnapshot& snap, const Pclntab& pclntab, uint64_t lost_events_before) {
  std::vector<Alert> out;
  for (const auto& l : snap.leaks) {
    SourceSite where = site_of_return_address(pclntab, l.gopc);
    Alert a = site_alert(alert_names::kGoroutineLeak, snap, where, "goroutine", l.kind);
    a.annotations["summary"] = "Goroutine leak (" + l.kind + ") at " + where.function + " in " + snap.exe;
    a.annotations["description"] = std::to_string(l.count) + " goroutines created by " + where_text(where, snap) +
                                   " are " + l.kind + ": " + l.reason;
    out.push_back(std::move(a));
  }
  for (const auto& v : snap.timer_verdicts) {
    // Churn (many short-lived timers) costs CPU but leaks nothing.
    if (v.verdict != "leak") continue;
    SourceSite where{v.function, v.file, v.line};
    Alert a = site_alert(alert_names::kTimerLeak, snap, where, "timer", v.verdict);
    a.annotations["summary"] =
        std::string("Timer leak (") + to_string(v.kind) + ") at " + v.function + " in " + snap.exe;
    a.annotations["description"] = std::to_string(v.count) + " " + to_string(v.kind) + " timers created by " +
                                   where_text(where, snap) + " leak: " + v.reason;
    out.push_back(std::move(a));
  }
  if (snap.lost_events > lost_events_before) {
    Alert a = process_alert(alert_names::kEventsLost, snap.exe, snap.pid);
    a.annotations["summary"] = "goroscope is losing probe events for " + snap.exe;
    a.annotations["description"] = std::to_string(snap.lost_events - lost_events_before) +
                                   " events lost since the previous evaluation (" + std::to_string(snap.lost_events) +
                                   " since attach) for " + snap.exe + " (PID " + std::to_string(snap.pid) +
                                   "): a ring buffer was full, so counts and verdicts are incomplete";
    out.push_back(std::move(a));
  }
  if (snap.overhead_budget > 0 && snap.elapsed_seconds >= kMinOverheadSeconds) {
    double used = snap.estimated_overhead_seconds / snap.elapsed_seconds;
    if (used > snap.overhead_budget) {
      Alert a = process_alert(alert_names::kOverheadAboveBudget, snap.exe, snap.pid);
      a.annotations["summary"] = "goroscope's probes cost " + snap.exe + " more CPU than budgeted";
      a.annotations["description"] = "Probe overhead in " + snap.exe + " (PID " + std::to_string(snap.pid) +
                                     ") is an estimated " + percent(used) + " of one CPU since attach, above the " +
                                     percent(snap.overhead_budget) + " budget";
      out.push_back(std::move(a));
    }
  }
  return out;
}

Alert attach_failed_alert(const std::string& exe, int pid, const std::string& error) {
  Alert a = process_alert(alert_names::kTargetAttachFailed, exe, pid);
  a.annotations["summary"] = "goroscope cannot attach to " + exe;
  a.annotations["description"] =
      "goroscope could not attach to " + exe + " (PID " + std::to_string(pid) + "), so it is not monitored: " + error;
  return a;
}

}  // namespace goroscope

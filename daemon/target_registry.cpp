#include "daemon/target_registry.h"

#include "symbols/result.h"

namespace goroscope {

void TargetRegistry::publish(pid_t pid, std::shared_ptr<const GoBinary> binary,
                             std::shared_ptr<const AttachSnapshot> snapshot) {
  std::lock_guard lock(mu_);
  MonitoredTarget& t = targets_[pid];
  t.pid = pid;
  t.exe = snapshot->exe;
  t.binary = std::move(binary);
  t.snapshot = std::move(snapshot);
}

void TargetRegistry::remove(pid_t pid) {
  std::lock_guard lock(mu_);
  targets_.erase(pid);
}

void TargetRegistry::record_failure(const AttachFailure& failure) {
  std::lock_guard lock(mu_);
  failures_[failure.pid] = failure;
  attach_errors_[failure.reason]++;
}

void TargetRegistry::forget_failure(pid_t pid) {
  std::lock_guard lock(mu_);
  failures_.erase(pid);
}

std::vector<MonitoredTarget> TargetRegistry::targets() const {
  std::lock_guard lock(mu_);
  std::vector<MonitoredTarget> out;
  out.reserve(targets_.size());
  for (const auto& [pid, t] : targets_) out.push_back(t);
  return out;
}

std::vector<AttachFailure> TargetRegistry::failures() const {
  std::lock_guard lock(mu_);
  std::vector<AttachFailure> out;
  for (const auto& [pid, f] : failures_) out.push_back(f);
  return out;
}

std::map<std::string, uint64_t> TargetRegistry::attach_errors_total() const {
  std::lock_guard lock(mu_);
  return attach_errors_;
}

std::string attach_error_reason(const Error& error) {
  const std::string& m = error.message;
  if (m.find("ermission") != std::string::npos || m.find("not permitted") != std::string::npos) return "permission";
  if (m.find("exited") != std::string::npos || m.find("no such process") != std::string::npos ||
      m.find("No such process") != std::string::npos)
    return "exited";
  switch (error.kind) {
    case ErrorKind::NotElf:
    case ErrorKind::NotGo: return "not_go";
    case ErrorKind::UnsupportedVersion: return "unsupported_version";
    case ErrorKind::UnsupportedArch: return "unsupported_arch";
    case ErrorKind::Truncated:
    case ErrorKind::Corrupt: return "corrupt_binary";
    case ErrorKind::NotFound: return "probe_point";
    case ErrorKind::Io: return "io";
  }
  return "other";
}

}  // namespace goroscope

// TargetRegistry: what the daemon monitors, as the scrape path and the alert
// pusher see it. Engine threads publish a finished snapshot per target after
// every census; readers copy shared pointers under a short lock, so a scrape
// never waits for a census, an attach or a slow target.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "exporters/attach_report.h"

namespace goroscope {

class GoBinary;

struct MonitoredTarget {
  pid_t pid = 0;
  std::string exe;
  std::shared_ptr<const GoBinary> binary;
  std::shared_ptr<const AttachSnapshot> snapshot;  // the latest
};

// A process the daemon was asked to monitor but could not attach to.
struct AttachFailure {
  pid_t pid = 0;
  std::string exe;
  std::string reason;   // a short label value: not_go, permission, unsupported_version, ...
  std::string message;  // the one-line error
};

class TargetRegistry {
 public:
  void publish(pid_t pid, std::shared_ptr<const GoBinary> binary, std::shared_ptr<const AttachSnapshot> snapshot);
  void remove(pid_t pid);
  void record_failure(const AttachFailure& failure);  // counted by reason; listed until forget_failure
  void forget_failure(pid_t pid);

  std::vector<MonitoredTarget> targets() const;
  std::vector<AttachFailure> failures() const;
  std::map<std::string, uint64_t> attach_errors_total() const;  // by reason, since start

 private:
  mutable std::mutex mu_;
  std::map<pid_t, MonitoredTarget> targets_;
  std::map<pid_t, AttachFailure> failures_;
  std::map<std::string, uint64_t> attach_errors_;
};

// The label value for an attach error: what an operator would act on.
std::string attach_error_reason(const Error& error);

}  // namespace goroscope

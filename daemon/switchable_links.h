// SwitchableLinks: a set of uprobes on one process that can be detached and
// attached again while the BPF object stays loaded — the mechanism behind
// every duty cycle (the overhead governor's, the allocation sampler's). A
// detached uprobe costs the target nothing; a loaded-but-idle BPF program
// would still cost the trap.
//
// Detaching waits for RCU grace periods in the kernel (~70 ms per probe
// here), so it runs on a thread of its own: the caller's poll loop goes on
// and the probes keep trapping until detaching() turns false. Callers that
// need an exact window filter events by their timestamps.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "daemon/uprobe_plumbing.h"
#include "symbols/result.h"

struct bpf_link;

namespace goroscope {

class SwitchableLinks {
 public:
  SwitchableLinks() = default;
  SwitchableLinks(pid_t pid, std::string exe, std::vector<UprobePlacement> placements)
      : pid_(pid), exe_(std::move(exe)), placements_(std::move(placements)) {}
  ~SwitchableLinks();
  SwitchableLinks(const SwitchableLinks&) = delete;
  SwitchableLinks& operator=(const SwitchableLinks&) = delete;

  // All or nothing: on failure no probe of the set stays attached. Waits
  // for a detach still under way.
  std::optional<Error> attach();
  // Starts detaching in the background; returns at once.
  void detach();
  // Detaches and waits (destruction, tests).
  void detach_now();

  bool attached() const { return !links_.empty(); }
  bool detaching() const { return detaching_; }
  double last_detach_seconds() const { return detach_seconds_; }
  const std::vector<UprobePlacement>& placements() const { return placements_; }
  bool empty() const { return placements_.empty(); }

 private:
  void wait_for_detach();
  pid_t pid_ = 0;
  std::string exe_;
  std::vector<UprobePlacement> placements_;
  std::vector<bpf_link*> links_;
  std::thread detacher_;
  std::atomic<bool> detaching_{false};
  std::atomic<double> detach_seconds_{0};
};

}  // namespace goroscope

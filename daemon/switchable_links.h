// SwitchableLinks: a set of uprobes on one process that can be detached and
// attached again while the BPF object stays loaded — the mechanism behind
// every duty cycle (the overhead governor's, the allocation sampler's). A
// detached uprobe costs the target nothing; a loaded-but-idle BPF program
// would still cost the trap.
//
// Detaching waits for RCU grace periods in the kernel (~70-250 ms per
// perf-event probe, one grace period per uprobe_multi link), so it runs on a
// thread of its own: the caller's poll loop goes on, and perf-event probes
// keep trapping until detaching() turns false (uprobe_multi ones lose their
// breakpoints at once: see uprobe_multi.h). Callers that need an exact
// window filter events by their timestamps.
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
  // `multi`: attach as uprobe_multi links, one per program (its programs
  // were prepared with prepare_uprobe_multi before loading); else one
  // perf-event uprobe per placement.
  SwitchableLinks(pid_t pid, std::string exe, std::vector<UprobePlacement> placements, bool multi = false)
      : pid_(pid), exe_(std::move(exe)), placements_(std::move(placements)), multi_(multi) {}
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

  bool attached() const { return !links_.empty() || !multi_fds_.empty(); }
  bool detaching() const { return detaching_; }
  double last_detach_seconds() const { return detach_seconds_; }

 private:
  void wait_for_detach();
  pid_t pid_ = 0;
  std::string exe_;
  std::vector<UprobePlacement> placements_;
  bool multi_ = false;
  std::vector<bpf_link*> links_;
  std::vector<int> multi_fds_;
  std::thread detacher_;
  std::atomic<bool> detaching_{false};
  std::atomic<double> detach_seconds_{0};
};

}  // namespace goroscope

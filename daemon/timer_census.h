// TimerCensus: the timers pending in the Go runtime's per-P timer heaps
// (runtime.allp[i].timers), read from a live process with process_vm_readv,
// so timers armed before attach are counted: their kind and due time (the
// creation site is unknown unless a probe saw them created). Up to Go 1.22
// p.timers is a []*timer; from 1.23 a runtime.timers struct whose heap is a
// []timerWhen{timer, when}. Only timers of the time package (f is
// time.sendTime or time.goFunc) are reported; time.Sleep and netpoll
// deadlines share the heaps. From 1.23 a channel timer is in a heap only
// while a goroutine waits on it.
#pragma once

#include <sys/types.h>

#include <memory>
#include <vector>

#include "daemon/timer_tracker.h"
#include "symbols/go_binary.h"
#include "symbols/result.h"

namespace goroscope {

class TimerCensus {
 public:
  // Locates runtime.allp (.symtab, or for stripped binaries from the
  // RIP-relative operands of functions that range over allp, validated in
  // the live process: every allp[i].id == i). NotFound with a reason if it
  // cannot be found or an offset is unknown.
  static Result<std::unique_ptr<TimerCensus>> open(pid_t pid, std::shared_ptr<const GoBinary> binary,
                                                   uint64_t load_bias);
  // The pending time-package timers, keyed as the probes key them. The heaps
  // change under the reader (no lock can be taken from outside): entries that
  // fail to read are skipped.
  Result<std::vector<PendingTimer>> snapshot(const TimerTracker& classifier) const;

 private:
  TimerCensus() = default;
  pid_t pid_ = 0;
  std::shared_ptr<const GoBinary> binary_;
  uint64_t bias_ = 0;
  uint64_t allp_ = 0;  // link-time address of the allp slice header
  bool v2_ = false;
  uint64_t p_timers_ = 0, p_id_ = 0;
  uint64_t heap_off_ = 0, timer_when_ = 0, timer_period_ = 0, timer_f_ = 0, timer_size_ = 0;
  uint64_t status_off_ = 0;  // <=1.22 timer.status, >=1.23 timer.state
  uint64_t key_adjust_ = 0;  // >=1.23: runtime.timeTimer.timer
  uint64_t tw_size_ = 16, tw_timer_ = 0;
};

}  // namespace goroscope

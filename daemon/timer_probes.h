// TimerProbes: bpf/timers.bpf.c attached to one Go process. Which functions
// are probed depends on the Go version's timer implementation (go-runtime.md
// §6): up to 1.22 time.startTimer / stopTimer / resetTimer / modTimer and
// runtime.runOneTimer; from 1.23 time.newTimer (a uprobe on each of its RET
// instructions — never a uretprobe — sees the armed timer and its caller),
// time.stopTimer / resetTimer and runtime.(*timer).unlockAndRun. Struct
// offsets and probe sites come from symbols/. Every libbpf object is owned
// here and released on every path.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "daemon/event_ring.h"
#include "daemon/switchable_links.h"
#include "symbols/go_binary.h"
#include "symbols/probe_points.h"
#include "symbols/result.h"
#include "timers.h"

struct timers_bpf;
struct bpf_link;

namespace goroscope {

struct TimerProbeOptions {
  uint32_t ring_buffer_bytes = 4 << 20;
};

// The per-binary facts the tracker needs to read timer events (link-time
// addresses; subtract the load bias from event addresses first).
struct TimerFunctions {
  bool runtime_timer_v2 = false;  // Go >= 1.23: newTimer / unlockAndRun
  uint64_t send_time = 0;         // time.sendTime entry, 0 if not linked
  uint64_t go_func = 0;           // time.goFunc entry, 0 if not linked
  // From 1.23 newTimer returns a *timeTimer (== *time.Timer) and the fire
  // probe sees the runtime.timer inside it, at this offset.
  uint64_t fired_timer_offset = 0;
};
TimerFunctions timer_functions(const GoBinary& binary);

class TimerProbes {
 public:
  // Loads and attaches. NotFound if the program never creates timers (the
  // time package's timer functions are not linked): nothing to probe.
  static Result<std::unique_ptr<TimerProbes>> attach(const GoBinary& binary, const ProbePlan& plan,
                                                     const std::string& exe, pid_t pid, uint64_t load_bias,
                                                     const TimerProbeOptions& options);
  ~TimerProbes();
  TimerProbes(const TimerProbes&) = delete;
  TimerProbes& operator=(const TimerProbes&) = delete;

  using EventHandler = EventRing<timer_event>::Handler;
  int poll(int timeout_ms, const EventHandler& handler);

  uint64_t lost_events() const;
  std::array<uint64_t, TIMER_PROBE_COUNT> probe_hits() const;
  std::vector<std::string> attached_probes() const;
  // The probes as one set the overhead governor can detach and attach again.
  SwitchableLinks& links() { return *links_; }

 private:
  TimerProbes() = default;
  timers_bpf* skel_ = nullptr;
  std::unique_ptr<SwitchableLinks> links_;
  EventRing<timer_event> events_;
  std::vector<std::string> attached_;
};

// Probe names for reports, indexed by timer_probe_id.
extern const char* const kTimerProbeNames[TIMER_PROBE_COUNT];

}  // namespace goroscope

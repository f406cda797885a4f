// TargetSession: the engine for one Go process — its binary's symbols, the
// goroutine census, the goroutine, timer and allocation probes, the trackers
// and the leak detector — behind one small interface. `goroscope attach`
// drives one session from its terminal loop; `goroscope daemon` drives one
// per monitored process and publishes their snapshots to the scrape path.
//
// Usage:
//   auto s = TargetSession::open(pid, options);   // attaches; one-line error
//   while (s->status() == TargetStatus::Running) {
//     s->poll(100);                                // events, duty cycles
//     if (interval elapsed) { s->tick(now); auto snap = s->snapshot(now); }
//   }
//   s->finish();  auto last = s->snapshot(now);  s->detach();
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "daemon/allocation_profiler.h"
#include "daemon/leak_detector.h"
#include "daemon/timer_tracker.h"
#include "exporters/attach_report.h"
#include "goroutines.h"
#include "timers.h"
#include "symbols/result.h"

namespace goroscope {

class GoBinary;
class GoroutineCensus;
class GoroutineProbes;
class GoroutineTracker;
class TimerProbes;
class OverheadGovernor;
class GoidCounter;
class GovernedGroup;

// What the engine does for each target (attach's and the daemon's flags).
struct EngineOptions {
  bool park_ready = false;  // probe gopark/ready (hot: off by default)
  // What one uprobe hit costs the target, for the overhead estimate and the
  // governor; 0: measured once per process at start-up (uprobe_calibration.h).
  double uprobe_cost_seconds = 0;
  // The share of one CPU the probes may cost each target, split evenly over
  // the probe groups (goroutines, timers, allocations); a hot group is
  // duty-cycled to stay under its share (daemon/overhead_governor.h). 0:
  // goroutine and timer probes always attached (exact counts, any cost).
  double overhead_budget = 0.01;
  // CPU seconds a group may spend above its share before it is throttled,
  // so bursts are followed exactly.
  double overhead_burst_seconds = 0.05;
  LeakPolicy leak;
  bool timers = true;  // timer probes and census
  TimerPolicy timer;
  bool allocations = true;  // duty-cycled allocation sampling, slice growth, GC cycles
  AllocationProfilerOptions alloc;
  double alloc_budget = 0;  // the allocation sampler's share; 0: a third of overhead_budget
  // Per event ring (goroutines, timers, allocations); 0: each family's own
  // default (4-8 MiB, sized for attach's bursts). The daemon, with many
  // targets, uses less.
  uint32_t ring_buffer_bytes = 0;
};

enum class TargetStatus { Running, Exited, Execed };

class TargetSession {
 public:
  // Resolves the process and its binary, attaches every probe family, takes
  // the first goroutine census and the timer census. Errors are one line;
  // kind Io means the process or the privileges, NotFound a vanished PID.
  static Result<std::unique_ptr<TargetSession>> open(pid_t pid, const EngineOptions& options);
  ~TargetSession();
  TargetSession(const TargetSession&) = delete;
  TargetSession& operator=(const TargetSession&) = delete;

  // Handles events for about timeout_ms (shared by the event sources) and
  // drives the duty cycles.
  void poll(int timeout_ms);
  // The process exited or replaced its program.
  TargetStatus status() const;
  // Census and leak check; false when the census failed (the target is
  // probably gone: check status()).
  bool tick(uint64_t now_ns);
  // The report as of now; starts a new rate interval.
  AttachSnapshot snapshot(uint64_t now_ns);
  // Drains the rings and takes a last census if the process is still there.
  void finish();
  // Removes every probe: the target runs unprobed from here.
  void detach();

  pid_t pid() const { return pid_; }
  const std::string& exe_path() const { return exe_path_; }
  const std::shared_ptr<const GoBinary>& binary() const { return binary_; }
  uint64_t live_goroutines() const;
  bool census_available() const { return census_ != nullptr; }
  // One-line notes about features unavailable for this target.
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  TargetSession() = default;
  bool take_census();
  void handle_goroutine_events(int timeout_ms);
  void handle_timer_events(int timeout_ms);
  void start_governor();
  void apply(const goroutine_event& e, double weight);
  void apply(const timer_event& e, double weight);

  pid_t pid_ = 0;
  std::string exe_path_, exe_link_;
  EngineOptions options_;
  std::shared_ptr<const GoBinary> binary_;
  uint64_t bias_ = 0;
  struct ProcessWatch;
  std::unique_ptr<ProcessWatch> watch_;
  std::unique_ptr<GoroutineCensus> census_;
  std::unique_ptr<GoroutineProbes> probes_;
  std::unique_ptr<TimerProbes> timer_probes_;
  std::unique_ptr<TimerTracker> timers_;
  std::unique_ptr<AllocationProfiler> allocations_;
  std::unique_ptr<GoroutineTracker> tracker_;
  std::unique_ptr<LeakDetector> leaks_;
  std::unique_ptr<OverheadGovernor> governor_;
  std::unique_ptr<GoidCounter> goid_counter_;  // sched.goidgen: exact creation count
  uint64_t max_goid_seen_ = 0;
  GovernedGroup* goroutine_group_ = nullptr;  // owned by governor_
  GovernedGroup* timer_group_ = nullptr;
  std::string timers_note_, allocations_note_;
  std::vector<std::string> warnings_;
  std::vector<goroutine_event> held_goroutine_events_;  // of the sampling window still open
  std::vector<timer_event> held_timer_events_;
  std::map<std::pair<uint64_t, uint64_t>, uint64_t> last_window_creations_;  // (gopc, start_pc) -> seen
  bool timer_census_available_ = false;
  uint64_t timer_census_pending_ = 0;
  double census_seconds_ = 0;
  uint64_t events_received_ = 0;
  uint64_t start_ns_ = 0, last_tick_ns_ = 0, last_total_created_ = 0;
  std::map<uint64_t, uint64_t> last_created_;  // gopc -> created_total at the last snapshot
  bool detached_ = false;
};

}  // namespace goroscope

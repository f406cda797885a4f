// `goroscope attach --pid PID`: attaches the goroutine probes and the census
// to one running Go process and reports per creation site until the
// duration ends, the target exits, or SIGINT/SIGTERM; then prints the final
// report. Detaching leaves the target running unharmed.
#pragma once

#include <string>

#include "daemon/allocation_profiler.h"
#include "daemon/leak_detector.h"
#include "daemon/timer_tracker.h"

namespace goroscope {

struct AttachOptions {
  int pid = 0;
  double duration_seconds = 0;  // 0: until the target exits or a signal
  double interval_seconds = 1;  // census, leak check and redraw period
  std::string format = "text";  // text | json
  bool park_ready = false;      // probe gopark/ready (hot: off by default)
  bool top = true;              // live view when stdout is a terminal
  size_t max_sites = 20;        // sites in text output
  double uprobe_cost_seconds = 10e-6;  // per hit, for the overhead estimate
  LeakPolicy leak;
  bool timers = true;  // timer probes and census
  TimerPolicy timer;
  bool allocations = true;  // duty-cycled allocation sampling, slice growth, GC cycles
  AllocationProfilerOptions alloc;
};

// Returns the exit code; errors are one line on stderr.
int run_attach(const AttachOptions& options);

}  // namespace goroscope

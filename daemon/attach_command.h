// `goroscope attach --pid PID`: attaches the goroutine probes and the census
// to one running Go process and reports per creation site until the
// duration ends, the target exits, or SIGINT/SIGTERM; then prints the final
// report. Detaching leaves the target running unharmed.
#pragma once

#include <string>

#include "daemon/target_session.h"

namespace goroscope {

struct AttachOptions {
  int pid = 0;
  double duration_seconds = 0;  // 0: until the target exits or a signal
  double interval_seconds = 1;  // census, leak check and redraw period
  std::string format = "text";  // text | json
  bool top = true;              // live view when stdout is a terminal
  size_t max_sites = 20;        // sites in text output
  EngineOptions engine;
};

// Returns the exit code; errors are one line on stderr.
int run_attach(const AttachOptions& options);

}  // namespace goroscope

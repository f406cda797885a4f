// `goroscope inspect`: what goroscope knows about a Go binary (or a running
// Go process's binary), or `go tool addr2line` on it.
#pragma once

#include <string>

namespace goroscope {

struct InspectOptions {
  std::string binary;
  int pid = 0;
  std::string format = "text";  // text | json
  bool addr2line = false;
};

// Returns the process exit code; prints one-line errors to stderr.
int run_inspect(const InspectOptions& options);

}  // namespace goroscope

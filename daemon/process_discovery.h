// Which running processes the daemon should monitor: those whose executable
// matches an --exe pattern. A pattern with a '/' is an absolute path glob
// matched against the whole executable path (as /proc/PID/exe names it: in
// the process's own mount namespace); a pattern without one is matched
// against the executable's file name. Node-wide discovery of every Go
// process (and Kubernetes metadata) will add another source of PIDs here.
#pragma once

#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

#include "symbols/result.h"

namespace goroscope {

struct ExePattern {
  std::string glob;
  bool whole_path = false;  // else matched against the file name
};

// Rejects what would silently match nothing or everything by accident:
// empty, relative paths, unterminated [...] classes, a trailing backslash.
Result<ExePattern> parse_exe_pattern(const std::string& text);
bool exe_matches(const ExePattern& pattern, const std::string& exe_path);

// The executable of a process, without the " (deleted)" the kernel appends
// when the file was replaced or removed since (a redeploy); empty for kernel
// threads, zombies and processes gone.
std::string process_exe_path(pid_t pid);

// Every live process (not this one) whose executable matches a pattern:
// pid -> executable path.
std::map<pid_t, std::string> find_matching_processes(const std::vector<ExePattern>& patterns);

}  // namespace goroscope

// TargetProcess: a running process goroscope was pointed at, and the path
// through which its executable can be read. /proc/PID/exe is opened rather
// than the path it names, so binaries in other mount namespaces (containers)
// and deleted-but-running binaries are read correctly.
#pragma once

#include <sys/types.h>

#include <string>

#include "symbols/result.h"

namespace goroscope {

struct TargetProcess {
  pid_t pid = 0;
  std::string exe_link;  // /proc/PID/exe: what to open
  std::string exe_path;  // what it points to, as the target's mount namespace names it
};

// Io error with a one-line reason: no such process, permission denied, or a
// process without an executable (kernel thread, zombie).
Result<TargetProcess> resolve_target_process(pid_t pid);

}  // namespace goroscope

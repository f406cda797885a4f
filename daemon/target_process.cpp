#include "daemon/target_process.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace goroscope {

Result<TargetProcess> resolve_target_process(pid_t pid) {
  if (pid <= 0) return Error{ErrorKind::Io, "invalid PID " + std::to_string(pid)};
  std::string proc = "/proc/" + std::to_string(pid);
  struct stat st {};
  if (stat(proc.c_str(), &st) != 0) return Error{ErrorKind::Io, "no process with PID " + std::to_string(pid)};

  TargetProcess t;
  t.pid = pid;
  t.exe_link = proc + "/exe";
  char buf[4096];
  ssize_t n = readlink(t.exe_link.c_str(), buf, sizeof buf - 1);
  if (n < 0) {
    if (errno == EACCES || errno == EPERM)
      return Error{ErrorKind::Io, "permission denied reading " + t.exe_link + " (run as root or with CAP_SYS_PTRACE)"};
    if (errno == ENOENT)
      return Error{ErrorKind::Io, "PID " + std::to_string(pid) + " has no executable (a kernel thread, or it has exited)"};
    return Error{ErrorKind::Io, t.exe_link + ": " + std::strerror(errno)};
  }
  t.exe_path.assign(buf, n);
  return t;
}

}  // namespace goroscope

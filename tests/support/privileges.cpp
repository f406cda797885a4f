#include "tests/support/privileges.h"

#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace goroscope::testing {

namespace {
#ifndef CAP_BPF
constexpr int CAP_BPF = 39;
#endif
#ifndef CAP_PERFMON
constexpr int CAP_PERFMON = 38;
#endif

bool has_cap(int cap) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (syscall(SYS_capget, &hdr, data) != 0) return false;
  return data[cap / 32].effective & (1u << (cap % 32));
}
}  // namespace

bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci && std::strcmp(ci, "true") == 0;
}

std::string missing_privileges() {
  std::string missing;
  bool admin = has_cap(CAP_SYS_ADMIN);
  if (!admin && !has_cap(CAP_BPF)) missing += "CAP_BPF ";
  if (!admin && !has_cap(CAP_PERFMON)) missing += "CAP_PERFMON ";
  if (!has_cap(CAP_SYS_PTRACE)) missing += "CAP_SYS_PTRACE ";
  return missing;
}

}  // namespace goroscope::testing

#include "daemon/uprobe_multi.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>

#include "calibrate.skel.h"
#include "daemon/uprobe_calibration.h"
#include "daemon/uprobe_plumbing.h"


namespace goroscope {

namespace {

// From the kernel's UAPI (include/uapi/linux/bpf.h, Linux 6.6): the values
// and the BPF_LINK_CREATE attribute layout bookworm's headers lack.
constexpr int kBpfLinkCreate = 28;
constexpr int kBpfTraceUprobeMulti = 48;
struct LinkCreateUprobeMulti {
  uint32_t prog_fd;
  uint32_t target_fd;
  uint32_t attach_type;
  uint32_t flags;
  uint64_t path;
  uint64_t offsets;
  uint64_t ref_ctr_offsets;
  uint64_t cookies;
  uint32_t cnt;
  uint32_t multi_flags;
  uint32_t pid;
  uint32_t pad_;
  uint8_t rest_[64];  // the rest of union bpf_attr: zero
};

}  // namespace

void prepare_uprobe_multi(bpf_program* program) {
  bpf_program__set_expected_attach_type(program, static_cast<bpf_attach_type>(kBpfTraceUprobeMulti));
}

Result<int> uprobe_multi_attach(bpf_program* program, const std::string& path, const std::vector<uint64_t>& offsets,
                                pid_t pid) {
  LinkCreateUprobeMulti attr;
  std::memset(&attr, 0, sizeof attr);
  attr.prog_fd = static_cast<uint32_t>(bpf_program__fd(program));
  attr.attach_type = kBpfTraceUprobeMulti;
  attr.path = reinterpret_cast<uint64_t>(path.c_str());
  attr.offsets = reinterpret_cast<uint64_t>(offsets.data());
  attr.cnt = static_cast<uint32_t>(offsets.size());
  attr.pid = static_cast<uint32_t>(pid);
  long fd = syscall(__NR_bpf, kBpfLinkCreate, &attr, sizeof attr);
  if (fd < 0)
    return Error{ErrorKind::Io, libbpf_error("attaching " + std::string(bpf_program__name(program)) + " to " +
                                                 std::to_string(offsets.size()) + " offsets of " + path,
                                             errno)};
  return static_cast<int>(fd);
}

bool uprobe_multi_supported() {
  static std::once_flag once;
  static bool supported = false;
  std::call_once(once, [] {
    auto where = own_code_location(reinterpret_cast<const void*>(&goroscope_uprobe_calibration_target));
    if (!where) return;
    calibrate_bpf* skel = calibrate_bpf__open();
    if (!skel) return;
    prepare_uprobe_multi(skel->progs.calibrate_hit);
    if (calibrate_bpf__load(skel) == 0) {
      auto fd = uprobe_multi_attach(skel->progs.calibrate_hit, where->first, {where->second}, getpid());
      if (fd) {
        supported = true;
        close(*fd);
      }
    }
    calibrate_bpf__destroy(skel);
  });
  return supported;
}

}  // namespace goroscope

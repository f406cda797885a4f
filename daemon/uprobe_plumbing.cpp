#include "daemon/uprobe_plumbing.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace goroscope {

std::mutex& bpf_load_mutex() {
  static std::mutex mu;
  return mu;
}

std::string libbpf_error(const std::string& what, int err) { return what + ": " + std::strerror(err < 0 ? -err : err); }

Result<bpf_link*> attach_uprobe(const UprobePlacement& p, pid_t pid, const std::string& exe) {
  LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = false);
  bpf_link* link = bpf_program__attach_uprobe_opts(p.program, pid, exe.c_str(), p.file_offset, &opts);
  if (!link) return Error{ErrorKind::Io, libbpf_error("attaching a uprobe at " + p.label + " of " + exe, errno)};
  return link;
}

uint64_t sum_percpu(int map_fd, uint32_t key) {
  int ncpus = libbpf_num_possible_cpus();
  if (ncpus <= 0) return 0;
  std::vector<uint64_t> values(static_cast<size_t>(ncpus));
  if (bpf_map_lookup_elem(map_fd, &key, values.data()) != 0) return 0;
  uint64_t sum = 0;
  for (uint64_t v : values) sum += v;
  return sum;
}

}  // namespace goroscope

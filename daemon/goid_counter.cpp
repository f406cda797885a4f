#include "daemon/goid_counter.h"

#include <set>

#include "daemon/process_memory.h"
#include "symbols/go_binary.h"
#include "symbols/machine_code.h"

namespace goroscope {

namespace {
// Goids handed out since the census read its largest one (a spawn storm
// makes millions a second) plus the batches Ps hold unused.
constexpr uint64_t kMaxGoidsAhead = 1 << 22;
// Ps take goids in batches of _GoidCacheBatch = 16: the counter is always a
// multiple of it, which tells it apart from other small globals.
constexpr uint64_t kGoidBatch = 16;
}

Result<std::unique_ptr<GoidCounter>> GoidCounter::find(pid_t pid, const GoBinary& binary, uint64_t load_bias,
                                                       uint64_t max_goid) {
  ProcessMemory mem(pid);
  auto plausible = [&](uint64_t runtime_address) {
    auto v = mem.read_value<uint64_t>(runtime_address);
    if (!v) return false;
    if (*v == 0 || *v % kGoidBatch != 0) return false;
    return max_goid == 0 || (*v >= max_goid && *v <= max_goid + kMaxGoidsAhead);
  };
  if (auto sym = binary.elf().symbol("runtime.sched")) {
    if (plausible(sym->value + load_bias))
      return std::unique_ptr<GoidCounter>(new GoidCounter(pid, sym->value + load_bias));
    return Error{ErrorKind::NotFound, "runtime.sched.goidgen does not hold a plausible goroutine count"};
  }
  if (max_goid == 0) return Error{ErrorKind::NotFound, "runtime.sched not found (stripped binary, no census to check)"};
  auto newproc1 = binary.pclntab().func_by_name("runtime.newproc1");
  if (!newproc1 || binary.elf().arch() != Arch::Amd64)
    return Error{ErrorKind::NotFound, "runtime.sched not found (stripped binary)"};
  std::vector<uint64_t> operands = atomic_add_targets(binary.elf(), *newproc1, 64, kGoidBatch);
  std::set<uint64_t> candidates(operands.begin(), operands.end());
  std::vector<uint64_t> found;
  for (uint64_t c : candidates)
    if (plausible(c + load_bias)) found.push_back(c + load_bias);
  // Exactly one 64-bit atomic counter in newproc1 looks like the goid
  // counter, or none is trusted.
  if (found.size() != 1)
    return Error{ErrorKind::NotFound, "runtime.sched.goidgen not identified in runtime.newproc1 (stripped binary)"};
  return std::unique_ptr<GoidCounter>(new GoidCounter(pid, found.front()));
}

std::optional<uint64_t> GoidCounter::read() const {
  auto v = ProcessMemory(pid_).read_value<uint64_t>(address_);
  if (!v) return std::nullopt;
  return *v;
}

}  // namespace goroscope

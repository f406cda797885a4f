#include "daemon/uprobe_calibration.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <vector>

#include "calibrate.skel.h"
#include "daemon/monotonic_clock.h"
#include "daemon/uprobe_plumbing.h"

// The probed function: a real call the compiler cannot remove or inline.
extern "C" __attribute__((noinline, used)) void goroscope_uprobe_calibration_target(uint64_t* counter) {
  asm volatile("" : : "r"(counter) : "memory");
  ++*counter;
}

namespace goroscope {

Result<std::pair<std::string, uint64_t>> own_code_location(const void* address) {
  const auto addr = reinterpret_cast<uint64_t>(address);
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    std::istringstream in(line);
    std::string range, perms, offset, dev, inode, path;
    in >> range >> perms >> offset >> dev >> inode >> path;
    uint64_t start = std::stoull(range.substr(0, range.find('-')), nullptr, 16);
    uint64_t end = std::stoull(range.substr(range.find('-') + 1), nullptr, 16);
    if (addr >= start && addr < end && !path.empty())
      return std::pair<std::string, uint64_t>(path, addr - start + uint64_t(std::stoull(offset, nullptr, 16)));
  }
  return Error{ErrorKind::NotFound, "calibration: cannot find this process's code mapping"};
}

namespace {

double time_calls(int n, uint64_t* counter) {
  uint64_t t0 = monotonic_ns();
  for (int i = 0; i < n; i++) goroscope_uprobe_calibration_target(counter);
  return double(monotonic_ns() - t0) / 1e9;
}

}  // namespace

Result<UprobeCalibration> calibrate_uprobe_cost(int calls_per_round, int rounds) {
  auto where = own_code_location(reinterpret_cast<const void*>(&goroscope_uprobe_calibration_target));
  if (!where) return where.error();
  calibrate_bpf* skel = calibrate_bpf__open();
  if (!skel) return Error{ErrorKind::Io, libbpf_error("opening the calibration BPF object", errno)};
  struct Cleanup {
    calibrate_bpf* skel;
    bpf_link* link = nullptr;
    ~Cleanup() {
      if (link) bpf_link__destroy(link);
      calibrate_bpf__destroy(skel);
    }
  } cleanup{skel};
  skel->rodata->target_tgid = static_cast<__u32>(getpid());
  if (int err = load_one_at_a_time(calibrate_bpf__load, skel))
    return Error{ErrorKind::Io, libbpf_error("loading the calibration BPF program (needs root or CAP_BPF)", err)};
  uint64_t counter = 0;
  std::vector<double> bare;
  for (int r = 0; r < rounds; r++) bare.push_back(time_calls(calls_per_round, &counter));
  std::sort(bare.begin(), bare.end());
  auto link = attach_uprobe({skel->progs.calibrate_hit, "calibration", where->second}, getpid(), where->first);
  if (!link) return link.error();
  cleanup.link = link.value();
  time_calls(200, &counter);  // warm-up: the first hits fault the probe's pages in
  std::vector<double> per_hit;
  for (int r = 0; r < rounds; r++) {
    double probed = time_calls(calls_per_round, &counter);
    per_hit.push_back(std::max(0.0, probed - bare[bare.size() / 2]) / calls_per_round);
  }
  std::sort(per_hit.begin(), per_hit.end());
  UprobeCalibration c;
  c.cost_seconds = per_hit[per_hit.size() / 2];
  c.hits = sum_percpu(bpf_map__fd(skel->maps.probe_hits), 0);
  c.rounds = rounds;
  if (c.hits < uint64_t(calls_per_round) * uint64_t(rounds))
    return Error{ErrorKind::Io, "calibration: the probe missed calls (" + std::to_string(c.hits) + " hits)"};
  return c;
}

double resolve_uprobe_cost(double given, std::string* note) {
  if (given > 0) {
    if (note) *note = "given";
    return given;
  }
  static std::once_flag once;
  static double cost = 10e-6;
  static std::string how;
  std::call_once(once, [] {
    auto c = calibrate_uprobe_cost();
    if (c && c->cost_seconds > 1e-8) {
      cost = c->cost_seconds;
      how = "calibrated";
    } else {
      how = "calibration failed (" + (c ? std::string("no measurable cost") : c.error().message) +
            "); assuming 10 µs per hit";
    }
  });
  if (note) *note = how;
  return cost;
}

}  // namespace goroscope

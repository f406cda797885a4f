// The libbpf plumbing every probe family shares (goroutines, timers,
// allocations, the selftest): where a uprobe goes, attaching it by file
// offset to one process, reading per-CPU counters, and one-line errors.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <mutex>
#include <string>

#include "symbols/elf_image.h"
#include "symbols/result.h"

struct bpf_program;
struct bpf_link;

namespace goroscope {

// One uprobe to place: a program of a loaded skeleton at a file offset of
// the target's executable. The label ("runtime.newproc1+ret@0x4046f") names
// it in reports and errors.
struct UprobePlacement {
  bpf_program* program = nullptr;
  std::string label;
  uint64_t file_offset = 0;
};

// Attaches a plain uprobe (never a uretprobe: Go moves stacks) for one PID.
Result<bpf_link*> attach_uprobe(const UprobePlacement& placement, pid_t pid, const std::string& exe);

// The sum over CPUs of a per-CPU array entry of u64 (hit and loss counters).
uint64_t sum_percpu(int map_fd, uint32_t key);

// Every entry of a per-CPU counter array, each summed over CPUs.
template <size_t N>
std::array<uint64_t, N> sum_percpu_all(int map_fd) {
  std::array<uint64_t, N> out{};
  for (uint32_t i = 0; i < N; i++) out[i] = sum_percpu(map_fd, i);
  return out;
}

// Loads a skeleton (X_bpf__load), one at a time process-wide. For CO-RE
// libbpf parses the kernel's BTF afresh for every object it loads and frees
// it afterwards; a daemon attaching to 50 processes at once ran 150 loads
// concurrently, and malloc kept the concurrent peak as free heap: 310-380
// MiB of anonymous memory at 50 targets, 190-205 MiB with loads one at a
// time (for 95-115 MiB in use either way). The 50 attaches took no longer
// (10-17 s either way): uprobe registration is serialized in the kernel.
std::mutex& bpf_load_mutex();
template <class Skeleton>
int load_one_at_a_time(int (*load)(Skeleton*), Skeleton* skeleton) {
  std::lock_guard lock(bpf_load_mutex());
  return load(skeleton);
}

// "what: strerror(err)" for libbpf's negative (or positive) error codes.
std::string libbpf_error(const std::string& what, int err);

// The architecture this goroscope was built for: the only one it can probe.
constexpr Arch kHostArch =
#if defined(__x86_64__)
    Arch::Amd64;
#elif defined(__aarch64__)
    Arch::Arm64;
#else
#error "goroscope probes amd64 or arm64 only"
#endif

}  // namespace goroscope

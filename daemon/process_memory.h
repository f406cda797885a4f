// ProcessMemory: reads another process's memory with process_vm_readv — no
// ptrace stop, the target keeps running — in batches of up to IOV_MAX reads
// per system call, so that reading 100,000 goroutines costs about a hundred
// calls rather than a hundred thousand. Errors say which of the three things
// went wrong: the process is gone, we may not read it, or the address is not
// mapped.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "symbols/result.h"

namespace goroscope {

struct RemoteRead {
  uint64_t address = 0;  // in the target
  size_t size = 0;
  void* dest = nullptr;  // ours, at least `size` bytes
};

class ProcessMemory {
 public:
  explicit ProcessMemory(pid_t pid) : pid_(pid) {}
  pid_t pid() const { return pid_; }

  // Exactly `size` bytes at `address`, or Io: "process N has exited",
  // "permission denied reading process N", "address 0x… is not mapped in
  // process N" (also for a read that is only partly mapped).
  Result<size_t> read(uint64_t address, void* dest, size_t size) const;

  // Every read in `reads`; filled[i] = 1 where reads[i] arrived whole. An
  // unmapped or partly mapped address fails only its own entry (the target's
  // data changes under us, so a stale pointer is normal, not fatal). Io only
  // when nothing more can be read: the process is gone or not readable.
  // Returns the number of reads filled.
  //
  // The kernel's cost is per remote iovec (it pins the pages of each one
  // separately, about 0.5 µs here), not per byte. With merge_gap > 0, a read
  // that starts at most merge_gap bytes after the previous one ends (in
  // `reads` order) joins its iovec and the bytes between are discarded. The
  // gap must be smaller than a page: then both of its ends lie in mapped
  // pages, so merging never makes a readable read fail. Batches of more than
  // 16 × IOV_MAX reads are shared out among up to 4 threads.
  Result<size_t> read_batch(std::span<const RemoteRead> reads, std::vector<uint8_t>& filled,
                            size_t merge_gap = 0) const;

  // Reads a T (trivially copyable) at address.
  template <typename T>
  Result<T> read_value(uint64_t address) const {
    T v{};
    auto r = read(address, &v, sizeof v);
    if (!r) return r.error();
    return v;
  }

 private:
  pid_t pid_;
};

}  // namespace goroscope

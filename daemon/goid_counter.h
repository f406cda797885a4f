// GoidCounter: how many goroutines a Go process has ever created, read from
// its memory — runtime.sched.goidgen, the counter newproc1 takes goids from
// in batches of 16 per P (go-runtime.md §2; at offset 0 of schedt in every
// version 1.19-1.26). Exact to within the batches the Ps hold unused, and
// free to read: no probe. The overhead governor scales sampled goroutine
// creations with it, so their total is exact and only the split over
// creation sites is sampled.
//
// Found by the runtime.sched symbol, or, in stripped binaries, among the
// globals runtime.newproc1 atomically adds to (its LOCK XADDQ on goidgen),
// validated in the live process against the census: the counter is a
// multiple of the batch size, at least the largest goid alive, and not
// absurdly above it.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>

#include "symbols/result.h"

namespace goroscope {

class GoBinary;

class GoidCounter {
 public:
  // `max_goid`: the largest goid the census found (0: no census, so a
  // stripped binary's candidates cannot be checked and none is taken).
  static Result<std::unique_ptr<GoidCounter>> find(pid_t pid, const GoBinary& binary, uint64_t load_bias,
                                                   uint64_t max_goid);
  // The counter now; nullopt once the process is gone.
  std::optional<uint64_t> read() const;
  uint64_t address() const { return address_; }

 private:
  GoidCounter(pid_t pid, uint64_t address) : pid_(pid), address_(address) {}
  pid_t pid_;
  uint64_t address_;  // runtime address
};

}  // namespace goroscope

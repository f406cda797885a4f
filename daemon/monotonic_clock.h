// CLOCK_MONOTONIC in nanoseconds: the clock of bpf_ktime_get_ns() and of
// Go's nanotime, so engine, probe and runtime timestamps compare directly.
#pragma once

#include <time.h>

#include <cstdint>

namespace goroscope {

inline uint64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

}  // namespace goroscope

// The CPU time a process has run, in nanoseconds: the sum of its threads'
// run time from /proc/PID/task/*/schedstat (scheduler clock, ns precision;
// /proc/PID/stat's ticks are 10 ms, too coarse for 20 ms sampling windows).
// Threads that exited take their time with them, so compare readings with
// care (deltas may come out negative: clamp). 0 when unreadable.
#pragma once

#include <sys/types.h>

#include <cstdint>

namespace goroscope {

uint64_t process_cpu_ns(pid_t pid);

}  // namespace goroscope

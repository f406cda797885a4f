// AllocationProfiler: allocation hot spots, slice growth and GC cycles of one
// Go process — AllocationProbes plus AllocationTracker plus the duty cycle
// that keeps the probes' cost under a budget.
//
// Scheme, chosen by measurement (tests/bench/allocations_bench.cpp, allochot
// -burn: ~3 GB/s of 4 KiB + 512 B allocations, Go 1.22, CPU time):
//  - a probe on every mallocgc (--alloc-every, what a naive script does):
//    2.6-4.5x slower on this workload, far worse on small-object ones;
//  - refill + allocLarge + growslice always attached: 1.2-1.6x (one hit per
//    2 allocations of 4 KiB: the worst size class for this scheme), byte
//    estimate within 1% of the truth;
//  - the same probes duty-cycled (the default): 1.00-1.07x.
// The allocation probes are on the span-refill slow path (one hit per span's
// worth of small allocations, 8 KiB or more) and on large allocations, and
// are attached only for a window of each period. After every window the
// governor measures the probes' hit rate, multiplies it by the cost of one
// hit, and sizes the next window so that hits × cost stays under `budget`
// of one CPU (clamped to [min_window, period], stretching the period if
// needed; at 100% duty the probes simply stay attached). Totals are raw
// sums × elapsed time / sampled time, reported as estimates: right for
// steady workloads, noisy for bursty ones. GC probes are always attached.
//
// Usage (the engine's poll loop):
//   auto p = AllocationProfiler::attach(binary, plan, "/proc/PID/exe", pid, {});
//   while (running) (*p)->poll(100);
//   auto sites = (*p)->sites(now_ns);  auto gc = (*p)->gc_cycles();
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "daemon/allocation_probes.h"
#include "daemon/monotonic_clock.h"
#include "daemon/allocation_tracker.h"
#include "symbols/go_binary.h"
#include "symbols/probe_points.h"
#include "symbols/result.h"

namespace goroscope {

struct AllocationProfilerOptions {
  AllocationProbeOptions probes;
  double budget = 0.01;  // of one CPU, spent in allocation probe hits
  // What one uprobe hit costs the target. README: 4-7 µs for the goroutine
  // probes here; allocations_bench measured 1.2-1.8 µs per refill hit (CPU
  // and wall). The engine should pass its start-up calibration.
  double cost_per_hit_seconds = 5e-6;
  uint32_t period_ms = 1000;
  // Probe CPU time allowed above the budget while at full duty before the
  // duty cycle starts (as the overhead governor's burst allowance).
  double burst_seconds = 0.02;
  uint32_t min_window_ms = 20;
  uint32_t first_window_ms = 100;
  // Probe without duty cycling (window = period). The every-allocation
  // diagnostic mode implies a fixed window instead: see every_window_ms.
  bool always_on = false;
  // every_allocation mode: probe mallocgc for one window of this length,
  // then never again (it slows the target 10-100x while attached).
  uint32_t every_window_ms = 2000;
};

class AllocationProfiler {
 public:
  static Result<std::unique_ptr<AllocationProfiler>> attach(std::shared_ptr<const GoBinary> binary,
                                                            const ProbePlan& plan, const std::string& exe, pid_t pid,
                                                            const AllocationProfilerOptions& options);

  // Drives the duty cycle and handles events for up to timeout_ms. Returns
  // the number of events handled, or a negative errno.
  int poll(int timeout_ms);

  // Per site, scaled to estimates of the totals since attach (ordered by
  // bytes). `now_ns`: CLOCK_MONOTONIC.
  std::vector<AllocationSite> sites(uint64_t now_ns) const;
  const GcStats& gc_cycles() const { return tracker_.gc(); }

  // Elapsed / sampled time: what raw sums are multiplied by.
  double scale(uint64_t now_ns) const;
  double duty() const { return duty_; }  // current window / period
  double period_seconds() const { return period_ns_ / 1e9; }
  double detach_seconds() const { return detach_ns_ / 1e9; }
  double sampled_seconds(uint64_t now_ns) const;  // probes attached, in total
  double elapsed_seconds(uint64_t now_ns) const { return now_ns > attach_ns_ ? (now_ns - attach_ns_) / 1e9 : 0; }
  bool every_allocation() const { return options_.probes.every_allocation; }
  std::array<uint64_t, APROBE_COUNT> probe_hits() const { return probes_->probe_hits(); }
  uint64_t lost_events() const { return probes_->lost_events(); }
  std::vector<std::string> attached_probes() const { return probes_->attached_probes(); }
  // Estimated CPU seconds the target spent in probe hits.
  double estimated_overhead_seconds() const;
  const AllocationTracker& tracker() const { return tracker_; }
  std::vector<std::string> warnings() const { return warnings_; }

 private:
  AllocationProfiler(std::shared_ptr<const GoBinary> binary, uint64_t bias, const AllocationProfilerOptions& o)
      : tracker_(std::move(binary), bias), options_(o) {}
  void start_window(uint64_t now);
  void end_window(uint64_t now);
  void plan_next(uint64_t live_ns, uint64_t hits);
  uint64_t sampled_hits() const;

  std::unique_ptr<AllocationProbes> probes_;
  AllocationTracker tracker_;
  AllocationProfilerOptions options_;
  uint64_t attach_ns_ = 0;
  uint64_t window_start_ns_ = 0;  // valid while sampling
  uint64_t next_window_ns_ = 0;
  uint64_t window_ns_ = 0;
  uint64_t period_ns_ = 0;
  uint64_t live_start_ns_ = 0;  // probes attaching from here
  uint64_t detach_ns_ = 0;      // how long the last detach took (kernel)
  uint64_t sampled_ns_ = 0;     // completed windows
  uint64_t window_hits_start_ = 0;
  bool done_ = false;  // every-allocation mode: its one window is over
  double duty_ = 0;
  std::vector<std::string> warnings_;
};

}  // namespace goroscope

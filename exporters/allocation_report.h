// The `allocations` section of the attach report: allocation hot spots per
// site (estimates, scaled from AllocationProfiler's duty-cycled samples),
// slice growth per site and GC cycles, as JSON (DESIGN.md contract) and as
// a plain-text table. Built from an AllocationSnapshot, so it can be
// rendered without a live profiler (and unit-tested).
#pragma once

#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "allocations.h"
#include "daemon/allocation_tracker.h"

namespace goroscope {

class AllocationProfiler;

struct AllocationSnapshot {
  std::vector<AllocationSite> sites;  // most bytes first
  GcStats gc;
  bool every_allocation = false;  // diagnostic mode: mallocgc probed
  double elapsed_seconds = 0;     // since attach
  double sampled_seconds = 0;     // allocation probes attached
  double scale = 1;               // elapsed / sampled: what raw sums were multiplied by
  double duty = 0;                // current window / period
  std::array<uint64_t, APROBE_COUNT> probe_hits{};
  uint64_t lost_events = 0;
  double estimated_overhead_seconds = 0;
  std::vector<std::string> warnings;
};

AllocationSnapshot snapshot_allocations(const AllocationProfiler& profiler, uint64_t now_ns);

// {"estimated": true, "scheme": "...", "elapsed_seconds", "sampled_seconds",
//  "scale", "sites": [{"function","file","line","bytes_total","objects_total",
//  "growslice_total","large_bytes_total","samples","estimated":true}],
//  "gc": {"cycles","timed_cycles","total_seconds","max_seconds",
//  "last_seconds","start_calls","triggers":{...}}, "probe_hits": {...},
//  "lost_events"}. At most max_sites sites (the top ones by bytes and by
// slice growth); the rest fold into one site with function "other".
nlohmann::json allocations_json(const AllocationSnapshot& snap, size_t max_sites = 50);

// Plain text: a header line (scheme, sampled time, GC) and the top sites.
void print_allocations_text(std::ostream& out, const AllocationSnapshot& snap, size_t max_sites);

}  // namespace goroscope

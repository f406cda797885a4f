// AllocationTracker: turns allocation and GC events into per-site totals.
// An allocation's site is the first frame outside the Go standard library
// (inlined frames expanded from pclntab), found from the frame-pointer chain
// the BPF probe recorded. Sums here are raw sample sums; AllocationProfiler
// scales them by its duty cycle into estimates of the true totals.
//
// What one event stands for:
//  - refill (runtime.(*mcache).refill, span class spc): one span of that
//    class, i.e. nelems objects of elemsize bytes, allocated by this P from
//    here on; the allocation that exhausted the previous span is the sample.
//    Over many refills a site's share of them follows its share of that
//    class's allocations. Tiny allocations (< 16 B, pointer-free) are
//    counted as 16-byte blocks.
//  - large (runtime.(*mcache).allocLarge): exactly one object of that size.
//  - malloc (diagnostic mode): exactly one object of that size.
//  - growslice: one slice growth.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "allocations.h"
#include "symbols/go_binary.h"

namespace goroscope {

// Go's size classes (runtime/sizeclasses.go): bytes per object and pages
// (8 KiB) per span. Identical in every release from 1.19 to 1.26 (checked
// against runtime.class_to_size/class_to_allocnpages, and from 1.26
// internal/runtime/gc.SizeClassToSize/SizeClassToNPages, in the fixtures).
struct SpanClassInfo {
  uint32_t elem_size = 0;  // 0: not a small size class
  uint32_t objects = 0;    // objects per span
};
SpanClassInfo span_class_info(uint8_t span_class);

struct AllocationSite {
  std::string function, file;
  int line = 0;
  double bytes_total = 0;    // estimate of the true total
  double objects_total = 0;  // estimate
  double growslice_total = 0;
  double large_bytes_total = 0;  // the part of bytes_total in allocations > 32 KiB
  uint64_t samples = 0;          // events behind these numbers
  bool estimated = true;
};

struct GcStats {
  uint64_t cycles = 0;        // completed (mark termination seen)
  uint64_t start_calls = 0;   // runtime.gcStart entries (more than cycles: racing triggers)
  uint64_t timed_cycles = 0;  // cycles whose start was seen too
  double total_seconds = 0;   // gcStart to mark termination, summed over timed cycles
  double max_seconds = 0;
  double last_seconds = 0;
  std::map<std::string, uint64_t> triggers;  // "heap", "time", "cycle" (runtime.GC) of started cycles
};

// Whether a Go function belongs to the standard library: its package path's
// first element has no dot and it is not in the main module or a dependency
// (so "main.f", "example.com/x.F" and a dot-less module "shop/orders.F" are
// user code; "runtime.mallocgc", "encoding/json.Unmarshal" are not), and
// compiler-generated functions (type:.eq.*, go:*) count as library too.
bool is_standard_library(std::string_view function, const BuildInfo& build_info);

// The site of allocations with no frame outside the standard library.
inline constexpr const char* kUnattributedSite = "(standard library)";

class AllocationTracker {
 public:
  // load_bias: runtime address - link-time address (PIE).
  AllocationTracker(std::shared_ptr<const GoBinary> binary, uint64_t load_bias);

  void on_event(const alloc_event& e);

  // Per site, raw sums multiplied by `scale` (1 = as sampled), most bytes
  // first; sites with only slice growth come last.
  std::vector<AllocationSite> sites(double scale, bool estimated) const;
  const GcStats& gc() const { return gc_; }
  uint64_t events() const { return events_; }
  uint64_t unattributed() const { return unattributed_; }  // no frame outside the standard library

 private:
  struct Key {
    std::string function, file;
    int line;
    bool operator<(const Key& o) const { return std::tie(line, function, file) < std::tie(o.line, o.function, o.file); }
  };
  struct Sums {
    double bytes = 0, objects = 0, growslice = 0, large_bytes = 0;
    uint64_t samples = 0;
  };
  // The site of one return address: the first inlined frame outside the
  // standard library, or nothing. Cached: the same PCs recur.
  const std::optional<Key>& site_of_pc(uint64_t runtime_pc);
  std::optional<Key> site_of_stack(const alloc_event& e);
  bool called_from_growslice(uint64_t runtime_pc) const;

  std::shared_ptr<const GoBinary> binary_;
  uint64_t bias_;
  std::unordered_map<uint64_t, std::optional<Key>> pc_cache_;
  std::vector<std::pair<uint64_t, uint64_t>> growslice_ranges_;  // link-time [entry, end)
  std::map<Key, Sums> sites_;
  GcStats gc_;
  std::optional<uint64_t> cycle_start_ns_;
  uint64_t events_ = 0, unattributed_ = 0;
};

}  // namespace goroscope

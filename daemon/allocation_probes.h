// AllocationProbes: bpf/allocations.bpf.c attached to one Go process. The GC
// probes (runtime.gcStart, runtime.gcMarkTermination: a few hits per cycle)
// stay attached; the allocation probes — the span-refill slow path
// runtime.(*mcache).refill, large allocations runtime.(*mcache).allocLarge
// and runtime.growslice with its Go 1.26 variants, or in the diagnostic
// every-allocation mode runtime.mallocgc — are attached and detached on
// demand by the duty cycle (AllocationProfiler), because each hit costs a
// uprobe trap whatever the BPF program does. Every probe sits after the
// function's stack check (never a uretprobe). Probe sites come from
// symbols/ (ProbePlan); no struct offset is needed.
#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "daemon/event_ring.h"
#include "daemon/switchable_links.h"
#include "allocations.h"
#include "symbols/go_binary.h"
#include "symbols/probe_points.h"
#include "daemon/uprobe_plumbing.h"
#include "symbols/result.h"

struct allocations_bpf;
struct bpf_link;
struct bpf_program;

namespace goroscope {

struct AllocationProbeOptions {
  // Probe runtime.mallocgc instead of refill/allocLarge: every allocation,
  // exact but very costly (one uprobe trap per allocation). Diagnostic only.
  bool every_allocation = false;
  bool growslice = true;
  uint32_t ring_buffer_bytes = 8 << 20;
};

class AllocationProbes {
 public:
  // Loads the BPF object and attaches the GC probes; the allocation probes
  // are placed (and refused here if this binary lacks them) but attached
  // only by set_sampling(true). `exe` is the path to attach through (e.g.
  // /proc/PID/exe).
  static Result<std::unique_ptr<AllocationProbes>> attach(const GoBinary& binary, const ProbePlan& plan,
                                                          const std::string& exe, pid_t pid,
                                                          const AllocationProbeOptions& options);
  ~AllocationProbes();
  AllocationProbes(const AllocationProbes&) = delete;
  AllocationProbes& operator=(const AllocationProbes&) = delete;

  // Attaches (true) or detaches (false) the allocation probes. Detaching
  // closes the window at once and finishes in the background (the kernel
  // takes ~70 ms per probe); attaching again waits for it.
  std::optional<Error> set_sampling(bool on);
  bool sampling() const { return sampled_links_->attached(); }
  // True while a detach is still under way (the probes may still trap).
  bool detaching() const { return sampled_links_->detaching(); }
  // How long the last completed detach took.
  double last_detach_seconds() const { return sampled_links_->last_detach_seconds(); }

  using EventHandler = EventRing<alloc_event>::Handler;
  // Waits up to timeout_ms for events; returns how many were handled, or a
  // negative errno.
  int poll(int timeout_ms, const EventHandler& handler);

  uint64_t lost_events() const;
  std::array<uint64_t, APROBE_COUNT> probe_hits() const;  // summed over CPUs
  // "runtime.(*mcache).refill+stackcheck@0x..." for every placed probe;
  // sampled ones are marked "(sampled)".
  std::vector<std::string> attached_probes() const;

 private:
  AllocationProbes() = default;
  using Placement = UprobePlacement;
  allocations_bpf* skel_ = nullptr;
  pid_t pid_ = 0;
  std::string exe_;
  std::vector<bpf_link*> links_;          // GC probes, for the object's lifetime
  std::unique_ptr<SwitchableLinks> sampled_links_;  // allocation probes, attached on demand
  std::vector<std::string> labels_;
  EventRing<alloc_event> events_;
};

// Human names of the probe ids, for reports ("refill", "large", ...).
const char* alloc_probe_name(uint32_t probe);

}  // namespace goroscope

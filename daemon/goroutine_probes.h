// GoroutineProbes: bpf/goroutines.bpf.c attached to one Go process —
// creation (a uprobe on the RET of runtime.newproc1: never a uretprobe),
// exit (runtime.gdestroy from Go 1.22, runtime.goexit0 before), and, only
// when asked, park/ready (runtime.gopark / runtime.ready: hot paths). Struct
// offsets and probe sites come from symbols/ (GoBinary, ProbePlan). Every
// libbpf object is owned here and released on every path.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "daemon/event_ring.h"
#include "daemon/switchable_links.h"
#include "goroutines.h"
#include "symbols/go_binary.h"
#include "symbols/probe_points.h"
#include "symbols/result.h"

struct goroutines_bpf;
struct bpf_link;

namespace goroscope {

struct GoroutineProbeOptions {
  bool park_ready = false;          // probe gopark/ready (costly: every block and wake)
  uint32_t ring_buffer_bytes = 4 << 20;
};

class GoroutineProbes {
 public:
  // Loads and attaches. `exe` is the path to open for attaching (e.g.
  // /proc/PID/exe). Fails with a one-line reason: no privileges, a probe
  // point missing or unanalyzable in this binary, an offset unknown.
  static Result<std::unique_ptr<GoroutineProbes>> attach(const GoBinary& binary, const ProbePlan& plan,
                                                         const std::string& exe, pid_t pid,
                                                         const GoroutineProbeOptions& options);
  ~GoroutineProbes();
  GoroutineProbes(const GoroutineProbes&) = delete;
  GoroutineProbes& operator=(const GoroutineProbes&) = delete;

  using EventHandler = EventRing<goroutine_event>::Handler;
  // Waits up to timeout_ms for events and hands each to `handler`; returns
  // how many were handled, or a negative errno.
  int poll(int timeout_ms, const EventHandler& handler);

  uint64_t lost_events() const;                        // ring buffer full
  std::array<uint64_t, PROBE_COUNT> probe_hits() const;  // summed over CPUs
  std::vector<std::string> attached_probes() const;
  // The probes as one set the overhead governor can detach and attach again.
  SwitchableLinks& links() { return *links_; }     // "runtime.newproc1+ret@0x...", for reports

 private:
  GoroutineProbes() = default;
  goroutines_bpf* skel_ = nullptr;
  std::unique_ptr<SwitchableLinks> links_;
  EventRing<goroutine_event> events_;
  std::vector<std::string> attached_;
};

}  // namespace goroscope

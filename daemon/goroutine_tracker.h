// GoroutineTracker: the engine's model of one process's goroutines, per
// creation site (the `go` statement's PC). Two sources feed it:
//  - the census (the runtime's goroutine table): the truth for what is alive
//    now, including goroutines created before goroscope attached;
//  - probe events: creations and exits as they happen (rates, lifetimes),
//    and, when enabled, parks and wake-ups.
// They are reconciled by goid. All PCs here are link-time addresses.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "daemon/goroutine_census.h"

namespace goroscope {

// Goroutine lifetimes, log2 buckets from 1 µs to ~1 h.
struct LifetimeHistogram {
  static constexpr int kBuckets = 32;
  static double upper_bound_seconds(int bucket) { return 1e-6 * double(uint64_t(1) << bucket); }
  std::array<uint64_t, kBuckets + 1> counts{};  // last: +Inf
  double sum_seconds = 0;
  uint64_t count = 0;
  void add(double seconds);
};

// What a goroutine is doing, as reported: "running", "runnable", "syscall",
// or the runtime's wait-reason index for a waiting one.
struct GoroutineState {
  enum Kind : uint8_t { Runnable, Running, Syscall, Waiting, Other } kind = Runnable;
  uint8_t wait_reason = 0;
};

struct SiteStats {
  uint64_t gopc = 0;        // the `go` statement (return address after CALL newproc)
  uint64_t start_pc = 0;    // the function it starts (last seen)
  uint64_t live = 0;
  uint64_t created_total = 0;  // creations seen by probe since attach
  uint64_t exited_total = 0;   // exits seen by probe, or disappearances seen by the census
  uint64_t seen_before_attach = 0;  // found alive by the first census
  LifetimeHistogram lifetimes;      // of goroutines created and exited while attached
  std::map<std::string, uint64_t> states;  // state name -> count, as of the last census (+ park/ready events)
  std::map<uint64_t, uint64_t> block_pcs;  // blocking frame PC -> live goroutines blocked there
  double max_blocked_seconds = 0;          // the longest current block at this site
  double oldest_seconds = 0;               // age of the oldest live goroutine, where known
  uint64_t blocked = 0;                    // live goroutines in a Waiting state
};

// Where goroutines wait, across creation sites: one blocking frame's PC.
struct BlockingSiteStats {
  uint64_t block_pc = 0;
  uint64_t count = 0;
  std::map<std::string, uint64_t> states;  // wait reason -> count
  std::map<uint64_t, uint64_t> creation_sites;  // gopc -> count
  double max_blocked_seconds = 0;
};

struct TrackerLimits {
  size_t max_goroutines = 2'000'000;  // tracked individually; beyond that only counted
};

class GoroutineTracker {
 public:
  // wait_reason_names: index -> the runtime's string, for state keys.
  explicit GoroutineTracker(std::vector<std::string> wait_reason_names, TrackerLimits limits = {});

  // Times are CLOCK_MONOTONIC nanoseconds (the clock of both bpf_ktime_get_ns
  // and Go's nanotime).
  //
  // Weights: while the overhead governor duty-cycles the probes, a creation
  // seen in a sampling window stands for `weight` creations (its exit, when
  // seen, for as many exits), so the per-site totals are estimates. A
  // goroutine the census finds that no creation event announced counts
  // `unseen_weight` at its exit: 1 when the probes were always on (its event
  // was lost), 0 while sampling (the weighted creations already stand for
  // it). Goroutines alive at the first census always count 1.
  void on_census(const std::vector<GoroutineRecord>& census, uint64_t started_ns, uint64_t finished_ns,
                 double unseen_weight = 1);
  void on_create(uint64_t goid, uint64_t parent_goid, uint64_t gopc, uint64_t start_pc, uint64_t ts_ns,
                 double weight = 1);
  // gopc/start_pc: the exiting goroutine's site, which the exit probe reads
  // from its g; used when the goroutine was never seen alive (no census).
  void on_exit(uint64_t goid, uint64_t gopc, uint64_t start_pc, uint64_t ts_ns);
  // Creations and exits known to have happened at a site but seen by no
  // probe (the sampler's estimate for a stretch no window covered).
  void add_estimated(uint64_t gopc, uint64_t start_pc, double created, double exited);
  void on_park(uint64_t goid, uint8_t wait_reason, uint64_t ts_ns);
  void on_ready(uint64_t goid, uint64_t ts_ns);

  // Per-site view at `now_ns` (states, block durations and ages filled in).
  std::vector<SiteStats> sites(uint64_t now_ns) const;
  // Per blocking frame (goroutines whose blocking frame the census found).
  std::vector<BlockingSiteStats> blocking_sites(uint64_t now_ns) const;
  uint64_t live() const { return goroutines_.size() + untracked_live_; }
  uint64_t created_total() const { return uint64_t(std::llround(created_total_)); }
  uint64_t exited_total() const { return uint64_t(std::llround(exited_total_)); }
  uint64_t untracked() const { return untracked_live_; }
  bool have_census() const { return census_count_ > 0; }
  std::string state_name(const GoroutineState& s) const;

 private:
  struct Tracked {
    uint32_t site = 0;             // index into sites_
    GoroutineState state;
    uint64_t created_ns = 0;       // 0: created before attach (unknown)
    uint64_t first_seen_ns = 0;
    uint64_t blocked_since_ns = 0; // 0: not blocked
    uint64_t block_pc = 0;
    uint32_t census_generation = 0;  // the last census that listed it
    float weight = 1;                // what its exit counts for (see on_census)
  };
  uint32_t site_index(uint64_t gopc, uint64_t start_pc);
  void forget(std::unordered_map<uint64_t, Tracked>::iterator it, uint64_t ts_ns, bool exited);

  std::vector<std::string> wait_reason_names_;
  TrackerLimits limits_;
  std::unordered_map<uint64_t, Tracked> goroutines_;
  std::unordered_map<uint64_t, uint32_t> site_by_pc_;
  std::vector<SiteStats> sites_;  // live/lifetimes kept current; the rest filled by sites()
  struct Totals {
    double created = 0, exited = 0;  // weighted: estimates while sampled
  };
  std::vector<Totals> site_totals_;  // parallel to sites_
  double created_total_ = 0, exited_total_ = 0;
  uint64_t untracked_live_ = 0;
  uint64_t census_count_ = 0;
};

}  // namespace goroscope

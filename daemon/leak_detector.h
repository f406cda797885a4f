// LeakDetector: decides which creation sites leak goroutines, from the live
// count history the engine samples at each census.
//  - "growing": over the observation window the site's live count rose by at
//    least min_growth, almost every step, while (nearly) all its goroutines
//    sit blocked. A fixed pool of idle workers does not grow; short lock
//    waits and short-lived requests exit, so their live count stays flat.
//  - "stuck": a large population blocked with no exit at all for a long
//    time — the leak that happened before goroscope attached (seen only by
//    the census) and then went quiet.
// Each verdict says why: growth and rate, the blocked state, age.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <unordered_map>
#include <vector>

#include "daemon/goroutine_tracker.h"

namespace goroscope {

struct LeakPolicy {
  double window_seconds = 30;          // how long growth must be sustained
  uint64_t min_growth = 10;            // goroutines gained over the window
  double min_rising_steps = 0.7;       // share of samples that did not fall
  double min_blocked_fraction = 0.9;   // share of live goroutines blocked
  uint64_t stuck_min = 1000;           // population for a "stuck" verdict
  double stuck_seconds = 600;          // no exit for this long
};

struct LeakVerdict {
  uint64_t gopc = 0;  // the site
  std::string kind;   // "growing" | "stuck"
  uint64_t count = 0; // live goroutines at the site
  double growth_per_second = 0;
  std::string reason;
};

class LeakDetector {
 public:
  explicit LeakDetector(LeakPolicy policy) : policy_(policy) {}

  // Record one sample of every site (call at each census).
  void observe(uint64_t now_ns, const std::vector<SiteStats>& sites);
  // Verdicts for the current state; `sites` as returned by the tracker at now_ns.
  std::vector<LeakVerdict> verdicts(uint64_t now_ns, const std::vector<SiteStats>& sites) const;
  const LeakPolicy& policy() const { return policy_; }

 private:
  struct Sample {
    uint64_t t_ns;
    uint64_t live;
    uint64_t exited_total;
  };
  LeakPolicy policy_;
  std::unordered_map<uint64_t, std::deque<Sample>> history_;  // by gopc
};

}  // namespace goroscope

#include "daemon/goroutine_tracker.h"

#include <algorithm>
#include <cmath>

namespace goroscope {

void LifetimeHistogram::add(double seconds) {
  int b = 0;
  while (b < kBuckets && seconds > upper_bound_seconds(b)) b++;
  counts[b]++;
  sum_seconds += seconds;
  count++;
}

GoroutineTracker::GoroutineTracker(std::vector<std::string> wait_reason_names, TrackerLimits limits)
    : wait_reason_names_(std::move(wait_reason_names)), limits_(limits) {}

std::string GoroutineTracker::state_name(const GoroutineState& s) const {
  switch (s.kind) {
    case GoroutineState::Runnable: return "runnable";
    case GoroutineState::Running: return "running";
    case GoroutineState::Syscall: return "syscall";
    case GoroutineState::Waiting:
      if (s.wait_reason < wait_reason_names_.size() && !wait_reason_names_[s.wait_reason].empty())
        return wait_reason_names_[s.wait_reason];
      return "wait reason " + std::to_string(s.wait_reason);
    case GoroutineState::Other: break;
  }
  return "other";
}

uint32_t GoroutineTracker::site_index(uint64_t gopc, uint64_t start_pc) {
  auto [it, inserted] = site_by_pc_.emplace(gopc, static_cast<uint32_t>(sites_.size()));
  if (inserted) {
    sites_.emplace_back();
    sites_.back().gopc = gopc;
    site_totals_.emplace_back();
  }
  if (start_pc) sites_[it->second].start_pc = start_pc;
  return it->second;
}

namespace {

GoroutineState state_of(const GoroutineRecord& r) {
  GoroutineState s;
  switch (static_cast<GStatus>(r.status)) {
    case GStatus::Runnable: s.kind = GoroutineState::Runnable; break;
    case GStatus::Running: s.kind = GoroutineState::Running; break;
    case GStatus::Syscall: s.kind = GoroutineState::Syscall; break;
    case GStatus::Waiting: s.kind = GoroutineState::Waiting; s.wait_reason = r.wait_reason; break;
    // A preempted goroutine is runnable as far as its user is concerned.
    case GStatus::Preempted: s.kind = GoroutineState::Runnable; break;
    default: s.kind = GoroutineState::Other;
  }
  return s;
}

}  // namespace

void GoroutineTracker::forget(std::unordered_map<uint64_t, Tracked>::iterator it, uint64_t ts_ns, bool exited) {
  SiteStats& site = sites_[it->second.site];
  if (site.live) site.live--;
  if (exited) {
    site_totals_[it->second.site].exited += it->second.weight;
    exited_total_ += it->second.weight;
    if (it->second.created_ns && ts_ns >= it->second.created_ns)
      site.lifetimes.add(double(ts_ns - it->second.created_ns) / 1e9);
  }
  goroutines_.erase(it);
}

void GoroutineTracker::on_census(const std::vector<GoroutineRecord>& census, uint64_t started_ns, uint64_t finished_ns,
                                 double unseen_weight) {
  const bool first = census_count_++ == 0;
  const uint32_t generation = static_cast<uint32_t>(census_count_);
  uint64_t untracked = 0;
  for (const GoroutineRecord& r : census) {
    auto it = goroutines_.find(r.goid);
    if (it == goroutines_.end()) {
      if (goroutines_.size() >= limits_.max_goroutines) {
        untracked++;
        continue;
      }
      Tracked t;
      t.site = site_index(r.gopc, r.start_pc);
      t.first_seen_ns = started_ns;
      t.weight = first ? 1.0f : float(unseen_weight);
      it = goroutines_.emplace(r.goid, t).first;
      SiteStats& site = sites_[t.site];
      site.live++;
      if (first) site.seen_before_attach++;
    }
    Tracked& t = it->second;
    t.census_generation = generation;
    GoroutineState s = state_of(r);
    if (s.kind == GoroutineState::Waiting) {
      bool same_block = t.state.kind == GoroutineState::Waiting && t.state.wait_reason == s.wait_reason &&
                        t.block_pc == r.block_pc && t.blocked_since_ns;
      if (!same_block) {
        // g.waitsince is set by the GC to when it first found the goroutine
        // waiting (Go's nanotime = CLOCK_MONOTONIC): a bound on the block's start.
        uint64_t since = started_ns;
        if (r.wait_since > 0 && uint64_t(r.wait_since) < since) since = uint64_t(r.wait_since);
        t.blocked_since_ns = since;
      }
      t.block_pc = r.block_pc;
    } else {
      t.blocked_since_ns = 0;
      t.block_pc = 0;
    }
    t.state = s;
  }
  // Tracked goroutines the census no longer holds have exited (their exit
  // event was lost, or they predate the probes). Ones first seen after the
  // census started may simply be newer than its reading.
  for (auto it = goroutines_.begin(); it != goroutines_.end();) {
    auto next = std::next(it);
    if (it->second.census_generation != generation && it->second.first_seen_ns < started_ns)
      forget(it, finished_ns, true);
    it = next;
  }
  untracked_live_ = untracked;
}

void GoroutineTracker::on_create(uint64_t goid, uint64_t parent_goid, uint64_t gopc, uint64_t start_pc,
                                 uint64_t ts_ns, double weight) {
  (void)parent_goid;
  created_total_ += weight;
  uint32_t site = site_index(gopc, start_pc);
  site_totals_[site].created += weight;
  auto it = goroutines_.find(goid);
  if (it != goroutines_.end()) {
    // The census read it before its creation event arrived.
    it->second.created_ns = ts_ns;
    it->second.weight = float(weight);
    return;
  }
  if (goroutines_.size() >= limits_.max_goroutines) {
    untracked_live_++;
    return;
  }
  Tracked t;
  t.site = site;
  t.created_ns = ts_ns;
  t.first_seen_ns = ts_ns;
  t.weight = float(weight);
  goroutines_.emplace(goid, t);
  sites_[site].live++;
}

void GoroutineTracker::on_exit(uint64_t goid, uint64_t gopc, uint64_t start_pc, uint64_t ts_ns) {
  auto it = goroutines_.find(goid);
  if (it == goroutines_.end()) {
    if (untracked_live_) {
      // Beyond the tracking limit: counted, not tracked.
      untracked_live_--;
      exited_total_ += 1;
    } else if (!have_census() && gopc) {
      // Created before attach, and no census to have seen it alive.
      site_totals_[site_index(gopc, start_pc)].exited += 1;
      exited_total_ += 1;
    }
    // Otherwise a census already counted its exit.
    return;
  }
  forget(it, ts_ns, true);
}

void GoroutineTracker::add_estimated(uint64_t gopc, uint64_t start_pc, double created, double exited) {
  uint32_t site = site_index(gopc, start_pc);
  site_totals_[site].created += created;
  site_totals_[site].exited += exited;
  created_total_ += created;
  exited_total_ += exited;
}

void GoroutineTracker::on_park(uint64_t goid, uint8_t wait_reason, uint64_t ts_ns) {
  auto it = goroutines_.find(goid);
  if (it == goroutines_.end()) return;
  it->second.state = {GoroutineState::Waiting, wait_reason};
  it->second.blocked_since_ns = ts_ns;
}

void GoroutineTracker::on_ready(uint64_t goid, uint64_t ts_ns) {
  auto it = goroutines_.find(goid);
  if (it == goroutines_.end()) return;
  it->second.state = {GoroutineState::Runnable, 0};
  it->second.blocked_since_ns = 0;
  it->second.block_pc = 0;
}

std::vector<SiteStats> GoroutineTracker::sites(uint64_t now_ns) const {
  std::vector<SiteStats> out = sites_;
  for (size_t i = 0; i < out.size(); i++) {
    out[i].created_total = uint64_t(std::llround(site_totals_[i].created));
    out[i].exited_total = uint64_t(std::llround(site_totals_[i].exited));
  }
  for (auto& s : out) {
    s.states.clear();
    s.block_pcs.clear();
    s.max_blocked_seconds = s.oldest_seconds = 0;
    s.blocked = 0;
  }
  auto secs = [now_ns](uint64_t since) { return since && now_ns > since ? double(now_ns - since) / 1e9 : 0.0; };
  for (const auto& [goid, t] : goroutines_) {
    SiteStats& s = out[t.site];
    s.states[state_name(t.state)]++;
    if (t.state.kind == GoroutineState::Waiting) {
      s.blocked++;
      if (t.block_pc) s.block_pcs[t.block_pc]++;
      s.max_blocked_seconds = std::max(s.max_blocked_seconds, secs(t.blocked_since_ns));
    }
    // Age: exact for goroutines created while attached; for older ones a
    // lower bound (first seen, or blocked since).
    double age = t.created_ns ? secs(t.created_ns) : std::max(secs(t.first_seen_ns), secs(t.blocked_since_ns));
    s.oldest_seconds = std::max(s.oldest_seconds, age);
  }
  return out;
}

}  // namespace goroscope

namespace goroscope {

std::vector<BlockingSiteStats> GoroutineTracker::blocking_sites(uint64_t now_ns) const {
  std::unordered_map<uint64_t, BlockingSiteStats> by_pc;
  for (const auto& [goid, t] : goroutines_) {
    if (t.state.kind != GoroutineState::Waiting || !t.block_pc) continue;
    BlockingSiteStats& b = by_pc[t.block_pc];
    b.block_pc = t.block_pc;
    b.count++;
    b.states[state_name(t.state)]++;
    b.creation_sites[sites_[t.site].gopc]++;
    if (t.blocked_since_ns && now_ns > t.blocked_since_ns)
      b.max_blocked_seconds = std::max(b.max_blocked_seconds, double(now_ns - t.blocked_since_ns) / 1e9);
  }
  std::vector<BlockingSiteStats> out;
  out.reserve(by_pc.size());
  for (auto& [pc, b] : by_pc) out.push_back(std::move(b));
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.count != b.count ? a.count > b.count : a.block_pc < b.block_pc;
  });
  return out;
}

}  // namespace goroscope

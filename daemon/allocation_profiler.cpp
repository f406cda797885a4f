#include "daemon/allocation_profiler.h"

#include <time.h>

#include <algorithm>

#include "daemon/goroutine_census.h"

namespace goroscope {

Result<std::unique_ptr<AllocationProfiler>> AllocationProfiler::attach(std::shared_ptr<const GoBinary> binary,
                                                                       const ProbePlan& plan, const std::string& exe,
                                                                       pid_t pid,
                                                                       const AllocationProfilerOptions& options) {
  auto bias = read_load_bias(pid, binary->elf());
  if (!bias) return bias.error();
  auto probes = AllocationProbes::attach(*binary, plan, exe, pid, options.probes);
  if (!probes) return probes.error();
  std::unique_ptr<AllocationProfiler> p(new AllocationProfiler(binary, *bias, options));
  p->probes_ = std::move(*probes);
  p->attach_ns_ = monotonic_ns();
  if (options.probes.every_allocation)
    p->warnings_.push_back("every-allocation mode: runtime.mallocgc is probed for " +
                           std::to_string(options.every_window_ms) +
                           " ms; the target runs many times slower meanwhile");
  p->period_ns_ = uint64_t(options.period_ms) * 1000000ull;
  p->window_ns_ = options.probes.every_allocation ? uint64_t(options.every_window_ms) * 1000000ull
                  : options.always_on             ? p->period_ns_
                                                  : uint64_t(options.first_window_ms) * 1000000ull;
  p->start_window(p->attach_ns_);
  if (!p->probes_->sampling())
    return Error{ErrorKind::Io, p->warnings_.empty() ? "cannot attach allocation probes" : p->warnings_.back()};
  return p;
}

uint64_t AllocationProfiler::sampled_hits() const {
  auto h = probes_->probe_hits();
  return h[APROBE_REFILL] + h[APROBE_LARGE] + h[APROBE_GROWSLICE] + h[APROBE_MALLOC];
}

void AllocationProfiler::start_window(uint64_t now) {
  live_start_ns_ = now;
  window_hits_start_ = sampled_hits();
  if (auto e = probes_->set_sampling(true)) {
    warnings_.push_back(e->message);
    return;
  }
  // The window opens once every probe is in (set_sampling opens it last).
  window_start_ns_ = monotonic_ns();
  duty_ = std::min(1.0, double(window_ns_) / double(period_ns_));
}

// The governor. Each hit of an allocation probe costs the target one uprobe
// trap (cost_per_hit). From the hit rate seen in the last window it picks the
// next window so that rate × cost × window stays under budget × period, and
// stretches the period when even the shortest window would exceed it.
// Detaching takes the kernel ~300 ms (more on a busy machine) but the
// breakpoints are gone at its start: measured 0-6 hits during a detach at
// ~10,000 hits/s, so that time is not counted as cost.
void AllocationProfiler::plan_next(uint64_t live_ns, uint64_t hits) {
  const double rate = live_ns ? double(hits) / (live_ns / 1e9) : 0;  // hits per second while attached
  const double cost = rate * options_.cost_per_hit_seconds;          // CPU s per s while attached
  const double base_period = double(options_.period_ms) * 1e6;
  const double min_window = double(options_.min_window_ms) * 1e6;
  period_ns_ = uint64_t(base_period);
  if (cost <= 0 || options_.always_on) {
    window_ns_ = period_ns_;
    return;
  }
  double window = options_.budget * base_period / cost;
  if (window < min_window) {
    window = min_window;
    period_ns_ = uint64_t(std::min(min_window * cost / options_.budget, 60e9));
  }
  window_ns_ = uint64_t(std::min(window, double(period_ns_)));
}

void AllocationProfiler::end_window(uint64_t now) {
  sampled_ns_ += now - window_start_ns_;
  probes_->set_sampling(false);
  if (options_.probes.every_allocation) {
    done_ = true;
    return;
  }
  // Reported only (the last completed detach, done in the background).
  detach_ns_ = uint64_t(probes_->last_detach_seconds() * 1e9);
  plan_next(now - live_start_ns_, sampled_hits() - window_hits_start_);
  next_window_ns_ = live_start_ns_ + period_ns_;
}

int AllocationProfiler::poll(int timeout_ms) {
  uint64_t now = monotonic_ns();
  if (probes_->sampling()) {
    uint64_t end = window_start_ns_ + window_ns_;
    // At full duty the rate is re-planned each period, or at once when the
    // probes have already cost more than the budget plus the burst
    // allowance: a program that turns hot is not probed in full for a
    // whole period.
    const bool full = window_ns_ >= period_ns_ && !options_.probes.every_allocation;
    const bool over_budget =
        full && double(sampled_hits() - window_hits_start_) * options_.cost_per_hit_seconds >
                    options_.budget * double(now - live_start_ns_) / 1e9 + options_.burst_seconds;
    if (now >= end || over_budget) {
      if (!options_.probes.every_allocation && window_ns_ >= period_ns_) {
        // Full duty: stay attached and re-evaluate from this window's rate.
        sampled_ns_ += now - window_start_ns_;
        plan_next(now - live_start_ns_, sampled_hits() - window_hits_start_);
        live_start_ns_ = window_start_ns_ = now;
        window_hits_start_ = sampled_hits();
        if (window_ns_ < period_ns_) {
          // Over budget after all: close this (empty) window at once.
          window_start_ns_ = now;
          end_window(now);
        }
      } else {
        end_window(now);
      }
    } else {
      timeout_ms = int(std::min<int64_t>(timeout_ms, int64_t((end - now) / 1000000ull) + 1));
    }
  } else if (!done_) {
    if (now >= next_window_ns_) {
      start_window(now);
    } else {
      timeout_ms = int(std::min<int64_t>(timeout_ms, int64_t((next_window_ns_ - now) / 1000000ull) + 1));
    }
  }
  AllocationProbes::EventHandler handle = [this](const alloc_event& e) { tracker_.on_event(e); };
  return probes_->poll(std::max(timeout_ms, 0), handle);
}

double AllocationProfiler::sampled_seconds(uint64_t now_ns) const {
  uint64_t s = sampled_ns_;
  if (probes_->sampling() && now_ns > window_start_ns_) s += now_ns - window_start_ns_;
  return s / 1e9;
}

double AllocationProfiler::scale(uint64_t now_ns) const {
  double sampled = sampled_seconds(now_ns);
  double elapsed = now_ns > attach_ns_ ? (now_ns - attach_ns_) / 1e9 : 0;
  if (sampled <= 0 || elapsed <= sampled) return 1.0;
  return elapsed / sampled;
}

std::vector<AllocationSite> AllocationProfiler::sites(uint64_t now_ns) const {
  double s = scale(now_ns);
  return tracker_.sites(s, true);
}

double AllocationProfiler::estimated_overhead_seconds() const {
  auto h = probes_->probe_hits();
  uint64_t total = 0;
  for (uint64_t v : h) total += v;
  return double(total) * options_.cost_per_hit_seconds;
}

}  // namespace goroscope

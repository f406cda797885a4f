// OverheadGovernor: keeps what goroscope's probes cost one target under a
// budget (a share of one CPU), group by group.
//
// Each probe group (the goroutine creation/exit probes, the timer probes) is
// a SwitchableLinks set with a hit counter in BPF. The governor turns hits
// into CPU time with the cost of one hit (calibrated at start-up, see
// uprobe_calibration.h) and runs a token bucket per group: the bucket fills
// at the group's share of the budget and holds at most `burst_seconds` of
// CPU, so a burst (a thousand goroutines started at once) is followed
// exactly, while a sustained hot loop drains it. An empty bucket switches
// the group to duty cycling: the probes are attached for a window of W every
// period P, with W/P = share / (hit rate x cost), re-measured in every
// window; when the rate falls so that the group fits its share again, it is
// attached for good.
//
// Counting under duty cycling: an event is kept only if its timestamp falls
// inside a window (detaching takes the kernel tens of milliseconds, and the
// probes keep trapping meanwhile), and it carries the window's weight, so
// weighted sums estimate what happened in the whole cycle. A hot loop runs
// slower while its probes are attached (that is why it is sampled), so the
// window sees fewer events per second than the gap had, and period/window
// under-counts it by that slowdown (20x for time.After in a tight loop).
// Where the runtime keeps an exact count of the group's events — the
// goroutine counter sched.goidgen (goid_counter.h) — the weight is the
// cycle's count over the window's, and the total is exact: only its split
// over sites is sampled. Otherwise the weight is (gap + window) / window,
// a lower bound for loops the probes slow down. (Scaling by the target's
// useful CPU time instead was tried and dropped: with probes taking 95% of
// a window, a few percent of error in the per-hit cost made estimates off
// by 0.001x to 14x.) The weight is known when the window closes; until then
// weight() says "pending" and the caller holds the window's events.
// Always-on events weigh 1. Hits are always counted in full: they are what
// the target paid.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "symbols/result.h"

namespace goroscope {

class SwitchableLinks;

struct GovernorOptions {
  double budget = 0.01;  // of one CPU, per target, split evenly over the governed groups
  double cost_per_hit_seconds = 10e-6;
  // CPU a group may spend above its share before it is duty-cycled: lets
  // bursts through exactly (0.05 s = 5,000 hits at 10 µs).
  double burst_seconds = 0.05;
  uint32_t period_ms = 1000;       // duty cycle period, stretched for small duties
  // A window at full probe rate (~80,000 hits/s at 13 µs) sees ~400 events
  // in 5 ms: enough, and it keeps the period short on very hot loops.
  uint32_t min_window_ms = 5;
  uint32_t max_period_ms = 10000;  // so a very hot group is still seen every 10 s
  // How often an always-on group's bucket is checked: a hot loop costs up
  // to this much CPU before it is throttled.
  uint32_t check_ms = 20;
};

class GovernedGroup {
 public:
  enum class Mode { AlwaysOn, Off, Window, Failed };

  // `links` are attached when this is made; `hits` reads the group's
  // cumulative hit count (summed over its probes and CPUs); `exact_total`,
  // if any, the runtime's own cumulative count of the group's events
  // (nullopt when it cannot be read).
  using Counter = std::function<std::optional<uint64_t>()>;
  GovernedGroup(std::string name, SwitchableLinks* links, std::function<uint64_t()> hits, double share,
                const GovernorOptions& options, uint64_t now_ns, Counter exact_total = nullptr);

  static constexpr double kPending = -1;

  // Drives the bucket and the duty cycle; call at least every few tens of
  // milliseconds.
  void step(uint64_t now_ns);
  // What an event stamped ts_ns counts for: 0 when it fell outside every
  // window (drop it), 1 while always on, more when sampled, kPending inside
  // the window still open (hold it until on_window_closed).
  double weight(uint64_t ts_ns) const;
  // Closes a window still open (the end of a session), so that its held
  // events get their weight.
  void finish(uint64_t now_ns);

  const std::string& name() const { return name_; }
  Mode mode() const { return mode_; }
  // The fraction of time attached: 1 while always on, else W/P (of the
  // current cycle).
  double duty() const;
  // The group has been duty-cycled at some point: its totals are estimates.
  bool sampled_ever() const { return sampled_ever_; }
  uint64_t hits() const { return hits_(); }
  double estimated_overhead_seconds() const { return double(hits()) * options_.cost_per_hit_seconds; }
  // Fraction of elapsed time attached, since the start.
  double attached_fraction(uint64_t now_ns) const;
  const std::string& error() const { return error_; }
  uint64_t windows_closed() const { return windows_closed_; }  // sampling windows so far
  // Duty-cycled and between windows: the events the exact counter saw
  // since the last window closed, which no window will stand for if the
  // session ends now. nullopt when not applicable.
  std::optional<uint64_t> events_since_close() const;
  // Called when the probes go away at the end of a window (or when an
  // always-on group is first throttled), with that window's span and
  // weight.
  using CloseHook = std::function<void(uint64_t open_ns, uint64_t close_ns, double weight)>;
  void on_window_closed(CloseHook hook) { on_close_ = std::move(hook); }

 private:
  struct Window {
    uint64_t open_ns, close_ns;  // close: UINT64_MAX while open-ended (always on)
    double weight;
  };
  void throttle(uint64_t now, double rate);
  void open_window(uint64_t now);
  void close_window(uint64_t now);
  void plan(double rate);
  std::optional<uint64_t> total() const { return exact_total_ ? exact_total_() : std::nullopt; }

  std::string name_;
  SwitchableLinks* links_;
  std::function<uint64_t()> hits_;
  Counter exact_total_;
  double share_;
  GovernorOptions options_;
  Mode mode_ = Mode::AlwaysOn;
  bool sampled_ever_ = false;
  std::deque<Window> windows_;
  double tokens_;
  uint64_t start_ns_, last_check_ns_, last_check_hits_ = 0;
  uint64_t window_ns_ = 0, period_ns_ = 0;
  uint64_t next_open_ns_ = 0, last_close_ns_ = 0, window_hits_start_ = 0;
  std::optional<uint64_t> close_total_, open_total_;  // the exact counter at the last close, this open
  uint64_t attached_ns_ = 0, attached_since_ns_ = 0;
  std::string error_;
  CloseHook on_close_;
  uint64_t windows_closed_ = 0;
};

// The groups of one target under one budget.
class OverheadGovernor {
 public:
  explicit OverheadGovernor(const GovernorOptions& options) : options_(options) {}
  // Groups share the budget evenly; add them all before the first step.
  GovernedGroup& add(const std::string& name, SwitchableLinks* links, std::function<uint64_t()> hits,
                     double share, uint64_t now_ns, GovernedGroup::Counter exact_total = nullptr);
  void step(uint64_t now_ns);
  void finish(uint64_t now_ns);
  // Some group is duty-cycling: its windows want a fast poll loop.
  bool cycling() const;
  const std::vector<std::unique_ptr<GovernedGroup>>& groups() const { return groups_; }
  const GovernorOptions& options() const { return options_; }

 private:
  GovernorOptions options_;
  std::vector<std::unique_ptr<GovernedGroup>> groups_;
};

}  // namespace goroscope

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
// weighted sums estimate what happened in the whole period. The weight is
// not the plain period/window ratio: while attached, a hot loop is slowed
// by its probes (that is the point of sampling), so a window sees fewer
// events per second than the gap had. Events are taken as proportional to
// the target's useful CPU time — its run time (daemon/process_cpu.h) minus
// hits x cost — so weight = (useful CPU of the gap before the window + of
// the window) / useful CPU of the window. It is known when the window
// closes; until then weight() says "pending" and the caller holds the
// window's events. Always-on events weigh 1. Hits are always counted in
// full: they are what the target paid.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
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
  uint32_t min_window_ms = 20;     // shorter windows see too little
  uint32_t max_period_ms = 10000;  // so a very hot group is still seen every 10 s
  uint32_t check_ms = 100;         // how often an always-on group's bucket is checked
};

class GovernedGroup {
 public:
  enum class Mode { AlwaysOn, Off, Window, Failed };

  // `links` are attached when this is made; `hits` reads the group's
  // cumulative hit count (summed over its probes and CPUs); `cpu_ns` the
  // target's cumulative CPU time (null: wall time, as for one busy thread).
  GovernedGroup(std::string name, SwitchableLinks* links, std::function<uint64_t()> hits, double share,
                const GovernorOptions& options, uint64_t now_ns, std::function<uint64_t()> cpu_ns = nullptr);

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
  uint64_t cpu() const;

  std::string name_;
  SwitchableLinks* links_;
  std::function<uint64_t()> hits_;
  std::function<uint64_t()> cpu_ns_;
  double share_;
  GovernorOptions options_;
  Mode mode_ = Mode::AlwaysOn;
  bool sampled_ever_ = false;
  std::deque<Window> windows_;
  double tokens_;
  uint64_t start_ns_, last_check_ns_, last_check_hits_ = 0;
  uint64_t window_ns_ = 0, period_ns_ = 0;
  uint64_t next_open_ns_ = 0, last_close_ns_ = 0, window_hits_start_ = 0;
  uint64_t close_cpu_ = 0, close_hits_ = 0;  // at the last close
  uint64_t open_cpu_ = 0;                    // at the current window's open
  double gap_useful_ns_ = 0;                 // useful CPU between the last close and this open
  uint64_t attached_ns_ = 0, attached_since_ns_ = 0;
  std::string error_;
  CloseHook on_close_;
};

// The groups of one target under one budget.
class OverheadGovernor {
 public:
  explicit OverheadGovernor(const GovernorOptions& options) : options_(options) {}
  // Groups share the budget evenly; add them all before the first step.
  GovernedGroup& add(const std::string& name, SwitchableLinks* links, std::function<uint64_t()> hits,
                     double share, uint64_t now_ns, std::function<uint64_t()> cpu_ns = nullptr);
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

// TimerTracker: timers per creation site and kind, from the timer probes'
// events (create, stop, reset, fire) and the census of the runtime's timer
// heaps at attach. A timer is followed by its address (the runtime timer up
// to Go 1.22, the *time.Timer from 1.23) in a bounded table; its site is the
// first frame outside `runtime` and `time` of its creation stack, with
// inlined frames expanded (time.After and time.Tick are inlined into the
// caller). Verdicts depend on the timer regime (go-runtime.md §6.3): what is
// a leak with asynchronous timer channels is only churn with the Go 1.23
// garbage-collectable ones.
#pragma once

#include <sys/types.h>

#include <cmath>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "symbols/build_info.h"
#include "symbols/pclntab.h"

namespace goroscope {

enum class TimerKind : uint8_t { Timer, Ticker, AfterFunc, Unknown };
const char* to_string(TimerKind k);

// Which timer implementation the process runs, and why.
struct TimerRegime {
  bool old_regime = true;  // asynchronous channels; every started timer sits in a P heap until it fires or stops
  std::string reason;
  const char* name() const { return old_regime ? "old" : "new"; }
};
// `process_godebug`: the GODEBUG variable of the process, if it has one
// (read_process_godebug). Go 1.23+ is the new regime unless asynctimerchan=1
// comes from GODEBUG (wins) or the binary's DefaultGODEBUG (the main
// module's go line is older than 1.23, or a //go:debug directive).
TimerRegime decide_timer_regime(const BuildInfo& build, const std::optional<std::string>& process_godebug);
std::optional<std::string> read_process_godebug(pid_t pid);

struct TimerPolicy {
  uint64_t leak_min = 20;         // timers at one site for a leak verdict
  uint64_t ticker_leak_min = 10;  // unstopped tickers at one site for a leak verdict
  double long_seconds = 10;       // a one-shot timer due this far ahead is "armed for long"
  uint64_t churn_min = 100;       // new regime: created with none fired or stopped -> churn
  double ticker_firing_seconds =
      5;                       // new regime: an unstopped ticker this old that fired this recently is still referenced
  size_t max_timers = 200000;  // timers followed by address; the oldest are forgotten first
};

// A pending timer read from a P's heap at attach.
struct PendingTimer {
  uint64_t key = 0;  // the address create/stop events use for it
  TimerKind kind = TimerKind::Unknown;
  int64_t when = 0;  // runtime nanotime
  int64_t period = 0;
};

struct TimerSiteStats {
  std::string function, file;  // empty: created before attach (seen only by the census or its events)
  int line = 0;
  TimerKind kind = TimerKind::Unknown;
  uint64_t created_total = 0, stopped_total = 0, reset_total = 0, fired_total = 0;
  uint64_t collected_total = 0;  // address reused by a new timer while still armed: the old one was collected
  uint64_t active = 0;           // armed, not fired (one-shot) or stopped
  uint64_t active_long = 0;      // of those, due at least long_seconds from now
  uint64_t firing = 0;           // unstopped tickers older than ticker_firing_seconds that fired within it
  uint64_t from_census = 0;      // active timers first seen in the timer heaps at attach
  double oldest_active_seconds = 0;
  double creation_rate = 0;  // per second since the previous tick()
  std::string verdict;       // "", "leak", "churn"
  std::string reason;
};

struct TimerVerdict {
  std::string function, file;
  int line = 0;
  TimerKind kind = TimerKind::Unknown;
  std::string verdict;  // "leak" | "churn"
  uint64_t count = 0;
  std::string reason;
};

class TimerTracker {
 public:
  // Addresses in events are runtime addresses; `load_bias` maps code PCs to
  // link time. `send_time`/`go_func` are link-time entries (0 if absent).
  // `fired_timer_offset`: from Go 1.23 the fire probe sees the runtime timer
  // at this offset inside the *timeTimer that create/stop/reset see.
  TimerTracker(const Pclntab& pclntab, uint64_t load_bias, uint64_t send_time, uint64_t go_func,
               uint64_t fired_timer_offset, TimerRegime regime, TimerPolicy policy);

  // `weight`: what the creation stands for while the overhead governor
  // duty-cycles the timer probes (1 otherwise); the timer's later events
  // count as much. See sampled().
  void on_create(uint64_t timer, int64_t when, int64_t period, uint64_t fn, const uint64_t* frames, uint32_t nframes,
                 uint64_t ts_ns, double weight = 1);
  void on_stop(uint64_t timer, uint64_t ts_ns);
  void on_reset(uint64_t timer, int64_t when, std::optional<int64_t> period, uint64_t ts_ns);
  void on_fire(uint64_t fired_timer, int64_t when, int64_t period, uint64_t fn, uint64_t ts_ns);
  // The probes were detached after a sampling window: timers created in it
  // that are still armed may be stopped unseen. Such a timer stays active
  // only at a site where no stop or reset was ever seen (a site that never
  // stops its timers); anywhere else it is presumed handled. From the first
  // call on, events about timers no window introduced are ignored (they
  // were created while the probes were detached).
  void on_window_closed(uint64_t open_ns, uint64_t close_ns);
  // Timers pending at attach that no event has introduced.
  void on_census(const std::vector<PendingTimer>& pending, uint64_t now_ns);

  // Per site and kind, with verdicts; most active first.
  std::vector<TimerSiteStats> sites(uint64_t now_ns) const;
  std::vector<TimerVerdict> verdicts(uint64_t now_ns) const;
  void tick(uint64_t now_ns);  // starts a new creation-rate interval

  TimerKind classify(uint64_t fn_runtime, int64_t period) const;
  const TimerRegime& regime() const { return regime_; }
  const TimerPolicy& policy() const { return policy_; }
  uint64_t created_total() const { return uint64_t(std::llround(created_total_)); }
  uint64_t tracked() const { return timers_.size(); }
  uint64_t forgotten() const { return forgotten_; }  // dropped from the bounded table
  uint64_t census_timers() const { return census_timers_; }

 private:
  struct Site {
    std::string function, file;
    int line = 0;
    TimerKind kind = TimerKind::Unknown;
    double created = 0, stopped = 0, reset = 0, fired = 0, collected = 0;  // weighted
    double created_at_tick = 0;
  };
  struct Timer {
    uint32_t site = 0;
    TimerKind kind = TimerKind::Unknown;
    bool armed = false;
    bool from_census = false;
    bool fate_unknown = false;  // created in a sampling window, armed when it closed
    float weight = 1;
    uint64_t created_ns = 0;
    uint64_t last_fire_ns = 0;
    int64_t when = 0;
    int64_t period = 0;
  };

  uint32_t site_id(const std::string& function, const std::string& file, int line, TimerKind kind);
  uint32_t unknown_site(TimerKind kind) { return site_id("", "", 0, kind); }
  // The first frame outside runtime and time, as a site id; nullopt if none.
  std::optional<uint32_t> creation_site(const uint64_t* frames, uint32_t nframes, TimerKind kind);
  void remember(uint64_t key, const Timer& t);
  bool counts_as_active(const Timer& t, uint64_t now_ns) const;
  void apply_verdict(TimerSiteStats& s) const;

  const Pclntab& pclntab_;
  uint64_t bias_;
  uint64_t send_time_, go_func_, fired_offset_;
  TimerRegime regime_;
  TimerPolicy policy_;
  std::vector<Site> sites_;
  std::map<std::tuple<std::string, std::string, int, TimerKind>, uint32_t> site_index_;
  // Return address -> the user frame it names (function, file, line), or
  // nullopt if every frame at it is in runtime/time.
  std::unordered_map<uint64_t, std::optional<std::tuple<std::string, std::string, int>>> frame_cache_;
  std::unordered_map<uint64_t, Timer> timers_;
  std::deque<std::pair<uint64_t, uint64_t>> order_;  // (key, created_ns), oldest first, for forgetting
  double created_total_ = 0;
  uint64_t forgotten_ = 0, census_timers_ = 0;
  bool sampled_ = false;
  uint64_t last_tick_ns_ = 0, prev_tick_ns_ = 0;
};

}  // namespace goroscope

#include "daemon/target_session.h"

#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "daemon/goroutine_census.h"
#include "daemon/goroutine_probes.h"
#include "daemon/goroutine_tracker.h"
#include "daemon/monotonic_clock.h"
#include "daemon/overhead_governor.h"
#include "daemon/goid_counter.h"
#include "daemon/target_process.h"
#include "daemon/uprobe_calibration.h"
#include "daemon/timer_census.h"
#include "daemon/timer_probes.h"
#include "exporters/allocation_report.h"
#include "symbols/go_binary.h"
#include "symbols/probe_points.h"

namespace goroscope {

namespace {
const char* kProbeNames[PROBE_COUNT] = {"goroutine_create", "goroutine_exit", "goroutine_park", "goroutine_ready"};
}

// A pidfd becomes readable when the process exits (Linux >= 5.3); the
// executable's identity tells an exec apart.
struct TargetSession::ProcessWatch {
  explicit ProcessWatch(pid_t pid) : pid(pid), fd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0))) {
    struct stat st {};
    if (stat(("/proc/" + std::to_string(pid) + "/exe").c_str(), &st) == 0) exe = {st.st_dev, st.st_ino};
  }
  ~ProcessWatch() {
    if (fd >= 0) close(fd);
  }
  bool exited() const {
    if (fd >= 0) {
      pollfd p{fd, POLLIN, 0};
      return ::poll(&p, 1, 0) > 0;
    }
    return kill(pid, 0) != 0 && errno == ESRCH;
  }
  bool execed() const {
    struct stat st {};
    if (stat(("/proc/" + std::to_string(pid) + "/exe").c_str(), &st) != 0) return false;
    return std::make_pair(st.st_dev, st.st_ino) != exe;
  }
  pid_t pid;
  int fd;
  std::pair<dev_t, ino_t> exe{};
};

TargetSession::~TargetSession() { detach(); }

Result<std::unique_ptr<TargetSession>> TargetSession::open(pid_t pid, const EngineOptions& options) {
  std::unique_ptr<TargetSession> s(new TargetSession());
  s->pid_ = pid;
  s->options_ = options;
  const std::string who = "PID " + std::to_string(pid);
  auto target = resolve_target_process(pid);
  if (!target) return target.error();
  s->exe_path_ = target->exe_path;
  s->exe_link_ = target->exe_link;
  auto opened = GoBinary::open_cached(target->exe_link);
  if (!opened) {
    std::string msg = opened.error().message;
    if (msg.rfind(target->exe_link, 0) == 0) msg = target->exe_path + msg.substr(target->exe_link.size());
    return Error{opened.error().kind, who + ": " + msg};
  }
  s->binary_ = opened.value();
  if (s->binary_->elf().arch() != Arch::Amd64) return Error{ErrorKind::UnsupportedArch, "attaching is supported on amd64 only"};
  s->watch_ = std::make_unique<ProcessWatch>(pid);
  auto gone = [&]() { return Error{ErrorKind::NotFound, who + " exited during attach"}; };

  auto c = GoroutineCensus::open(pid, s->binary_);
  if (c) {
    s->census_ = std::move(c.value());
  } else {
    if (s->watch_->exited()) return gone();
    if (c.error().kind == ErrorKind::Io) return c.error();
    s->warnings_.push_back(c.error().message);
  }
  if (s->census_) {
    s->bias_ = s->census_->load_bias();
  } else {
    auto b = read_load_bias(pid, s->binary_->elf());
    if (!b) return b.error();
    s->bias_ = *b;
  }

  // The cost of a probe hit, measured once per process, and only once the
  // target is known to be readable (an unprivileged caller gets the
  // target's error, not the calibration's).
  s->options_.uprobe_cost_seconds = resolve_uprobe_cost(options.uprobe_cost_seconds);
  ProbePlan plan = resolve_probe_points(*s->binary_);
  GoroutineProbeOptions probe_options;
  probe_options.park_ready = options.park_ready;
  if (options.ring_buffer_bytes) probe_options.ring_buffer_bytes = options.ring_buffer_bytes;
  auto probes = GoroutineProbes::attach(*s->binary_, plan, s->exe_link_, pid, probe_options);
  if (!probes) {
    if (s->watch_->exited()) return gone();
    return probes.error();
  }
  s->probes_ = std::move(probes.value());

  // Timers: a program that never creates one has nothing to probe (a note,
  // not a failure); a probe that cannot be placed safely costs the timer
  // section, not the attach.
  if (options.timers) {
    TimerProbeOptions timer_options;
    if (options.ring_buffer_bytes) timer_options.ring_buffer_bytes = options.ring_buffer_bytes;
    auto tp = TimerProbes::attach(*s->binary_, plan, s->exe_link_, pid, s->bias_, timer_options);
    if (tp) {
      s->timer_probes_ = std::move(tp.value());
    } else if (tp.error().kind == ErrorKind::NotFound) {
      s->timers_note_ = tp.error().message;
    } else {
      if (s->watch_->exited()) return gone();
      s->warnings_.push_back(tp.error().message);
      s->timers_note_ = tp.error().message;
    }
    TimerFunctions fns = timer_functions(*s->binary_);
    s->timers_ = std::make_unique<TimerTracker>(s->binary_->pclntab(), s->bias_, fns.send_time, fns.go_func,
                                                fns.fired_timer_offset,
                                                decide_timer_regime(s->binary_->build_info(), read_process_godebug(pid)),
                                                options.timer);
  } else {
    s->timers_note_ = "timers not followed (--no-timers)";
  }
  // Allocations: sampled in short windows sized to a CPU budget (never a
  // probe on every allocation unless --alloc-every asks for it).
  if (options.allocations) {
    AllocationProfilerOptions ao = options.alloc;
    ao.cost_per_hit_seconds = s->options_.uprobe_cost_seconds;
    // The allocation sampler sizes its own windows; its share of the budget
    // is a third unless --alloc-budget said otherwise.
    ao.burst_seconds = options.overhead_burst_seconds;
    if (options.alloc_budget > 0) {
      ao.budget = options.alloc_budget;
    } else if (options.overhead_budget > 0) {
      ao.budget = options.overhead_budget / 3;
    }
    if (options.ring_buffer_bytes) ao.probes.ring_buffer_bytes = options.ring_buffer_bytes;
    auto ap = AllocationProfiler::attach(s->binary_, plan, s->exe_link_, pid, ao);
    if (ap) {
      s->allocations_ = std::move(ap.value());
      for (const auto& w : s->allocations_->warnings()) s->warnings_.push_back(w);
    } else {
      if (s->watch_->exited()) return gone();
      s->allocations_note_ = ap.error().message;
      s->warnings_.push_back("allocations not followed: " + ap.error().message);
    }
  } else {
    s->allocations_note_ = "allocations not followed (--no-allocations)";
  }

  s->tracker_ = std::make_unique<GoroutineTracker>(s->binary_->wait_reasons().names);
  s->leaks_ = std::make_unique<LeakDetector>(options.leak);
  s->start_ns_ = s->last_tick_ns_ = monotonic_ns();
  if (s->timers_) s->timers_->tick(s->start_ns_);
  s->start_governor();

  // Events that arrived before the first census are applied first, so the
  // census reconciles against them.
  s->handle_goroutine_events(0);
  if (!s->take_census() && s->watch_->exited()) return gone();
  if (auto counter = GoidCounter::find(pid, *s->binary_, s->bias_, s->max_goid_seen_)) {
    s->goid_counter_ = std::move(counter.value());
  } else {
    s->warnings_.push_back("goroutine counts under sampling are scaled by time (" + counter.error().message + ")");
  }
  if (s->timers_) {
    // Timers armed before attach: read once from the per-P heaps, after the
    // events so far, which already name some of them.
    s->handle_timer_events(0);
    auto tc = TimerCensus::open(pid, s->binary_, s->bias_);
    if (tc) {
      auto pending = (*tc)->snapshot(*s->timers_);
      if (pending) {
        s->timer_census_available_ = true;
        s->timer_census_pending_ = pending->size();
        s->timers_->on_census(*pending, monotonic_ns());
      } else {
        s->warnings_.push_back("timer census failed: " + pending.error().message);
      }
    } else {
      s->warnings_.push_back(tc.error().message);
    }
  }
  return s;
}

uint64_t TargetSession::live_goroutines() const { return tracker_->live(); }

void TargetSession::apply(const goroutine_event& e, double weight) {
  switch (e.kind) {
    case GOROUTINE_CREATE:
      tracker_->on_create(e.goid, e.parent_goid, e.pc - bias_, e.start_pc - bias_, e.ts_ns, weight);
      break;
    case GOROUTINE_EXIT: tracker_->on_exit(e.goid, e.pc - bias_, e.start_pc - bias_, e.ts_ns); break;
    case GOROUTINE_PARK: tracker_->on_park(e.goid, static_cast<uint8_t>(e.wait_reason), e.ts_ns); break;
    case GOROUTINE_READY: tracker_->on_ready(e.goid, e.ts_ns); break;
  }
}

void TargetSession::handle_goroutine_events(int timeout_ms) {
  if (!probes_) return;
  int n = probes_->poll(timeout_ms, [&](const goroutine_event& e) {
    // Under duty cycling: outside a window dropped, inside the open one
    // held until it closes and its weight is known.
    const double weight = goroutine_group_ ? goroutine_group_->weight(e.ts_ns) : 1;
    if (weight == GovernedGroup::kPending) {
      held_goroutine_events_.push_back(e);
    } else if (weight > 0) {
      apply(e, weight);
    }
  });
  if (n > 0) events_received_ += uint64_t(n);
}

void TargetSession::apply(const timer_event& e, double weight) {
  switch (e.kind) {
    case TIMER_CREATE:
      timers_->on_create(e.timer, e.when, e.period, e.fn, reinterpret_cast<const uint64_t*>(e.frames), e.nframes,
                         e.ts_ns, weight);
      break;
    case TIMER_STOP: timers_->on_stop(e.timer, e.ts_ns); break;
    case TIMER_RESET:
      timers_->on_reset(e.timer, e.when, e.has_period ? std::optional<int64_t>(e.period) : std::nullopt, e.ts_ns);
      break;
    case TIMER_FIRE: timers_->on_fire(e.timer, e.when, e.period, e.fn, e.ts_ns); break;
  }
}

void TargetSession::handle_timer_events(int timeout_ms) {
  if (!timer_probes_) return;
  int n = timer_probes_->poll(timeout_ms, [&](const timer_event& e) {
    const double weight = timer_group_ ? timer_group_->weight(e.ts_ns) : 1;
    if (weight == GovernedGroup::kPending) {
      held_timer_events_.push_back(e);
    } else if (weight > 0) {
      apply(e, weight);
    }
  });
  if (n > 0) events_received_ += uint64_t(n);
}

void TargetSession::start_governor() {
  if (options_.overhead_budget <= 0) return;
  GovernorOptions go;
  go.budget = options_.overhead_budget;
  go.cost_per_hit_seconds = options_.uprobe_cost_seconds;
  go.burst_seconds = options_.overhead_burst_seconds;
  governor_ = std::make_unique<OverheadGovernor>(go);
  const double share = options_.overhead_budget / 3;  // goroutines, timers, allocations
  const uint64_t now = monotonic_ns();
  if (probes_) {
    goroutine_group_ = &governor_->add(
        "goroutines", &probes_->links(),
        [this] {
          uint64_t n = 0;
          for (uint64_t h : probes_->probe_hits()) n += h;
          return n;
        },
        share, now,
        // Goroutine creations have an exact count in the runtime: the
        // sampled windows only decide how it splits over sites.
        [this]() -> std::optional<uint64_t> { return goid_counter_ ? goid_counter_->read() : std::nullopt; });
    // A window's held events get its weight, in order, before newer ones.
    goroutine_group_->on_window_closed([this](uint64_t open, uint64_t close, double weight) {
      std::vector<goroutine_event> held;
      held.swap(held_goroutine_events_);
      last_window_creations_.clear();
      for (const auto& e : held) {
        if (e.ts_ns < open || e.ts_ns > close) continue;
        apply(e, weight);
        if (e.kind == GOROUTINE_CREATE) last_window_creations_[{e.pc - bias_, e.start_pc - bias_}]++;
      }
      handle_goroutine_events(0);
    });
  }
  if (timer_probes_) {
    timer_group_ = &governor_->add(
        "timers", &timer_probes_->links(),
        [this] {
          uint64_t n = 0;
          for (uint64_t h : timer_probes_->probe_hits()) n += h;
          return n;
        },
        share, now);
    timer_group_->on_window_closed([this](uint64_t open, uint64_t close, double weight) {
      std::vector<timer_event> held;
      held.swap(held_timer_events_);
      for (const auto& e : held)
        if (e.ts_ns >= open && e.ts_ns <= close) apply(e, weight);
      handle_timer_events(0);
      // Timers created in the window whose stop may now go unseen.
      timers_->on_window_closed(open, close);
    });
  }
}

void TargetSession::poll(int timeout_ms) {
  // The timeout is shared by the event sources; the allocation profiler's
  // duty-cycle windows are timed inside its poll. While the governor runs a
  // duty cycle, the loop turns in short slices so windows close on time.
  const uint64_t deadline = monotonic_ns() + uint64_t(timeout_ms) * 1'000'000;
  const int sources = 1 + (timer_probes_ ? 1 : 0) + (allocations_ ? 1 : 0);
  do {
    uint64_t now = monotonic_ns();
    if (governor_) governor_->step(now);
    int slice = timeout_ms;
    if (governor_) slice = std::min(slice, (governor_->cycling() ? 2 : 20) * sources);
    handle_goroutine_events(slice / sources);
    handle_timer_events(slice / sources);
    if (allocations_) {
      int n = allocations_->poll(slice / sources);
      if (n > 0) events_received_ += uint64_t(n);
    }
  } while (monotonic_ns() < deadline);
}

TargetStatus TargetSession::status() const {
  if (watch_->exited()) return TargetStatus::Exited;
  if (watch_->execed()) return TargetStatus::Execed;
  return TargetStatus::Running;
}

bool TargetSession::take_census() {
  if (!census_) return true;
  uint64_t t0 = monotonic_ns();
  CensusStats stats;
  auto snap = census_->snapshot(&stats);
  if (!snap) return false;
  uint64_t t1 = monotonic_ns();
  census_seconds_ = stats.seconds;
  for (const auto& r : *snap) max_goid_seen_ = std::max(max_goid_seen_, r.goid);
  // While creations are sampled, a goroutine no event announced is one the
  // weighted creations already stand for.
  const bool sampling = goroutine_group_ && goroutine_group_->mode() != GovernedGroup::Mode::AlwaysOn;
  tracker_->on_census(*snap, t0, t1, sampling ? 0.0 : 1.0);
  return true;
}

bool TargetSession::tick(uint64_t now_ns) {
  bool ok = take_census();
  now_ns = std::max(now_ns, monotonic_ns());
  leaks_->observe(now_ns, tracker_->sites(now_ns));
  return ok;
}

AttachSnapshot TargetSession::snapshot(uint64_t now) {
  AttachSnapshot s;
  s.pid = pid_;
  s.exe = exe_path_;
  s.go_version = binary_->go_version().raw;
  s.elapsed_seconds = double(now - start_ns_) / 1e9;
  s.sites = tracker_->sites(now);
  s.blocking_sites = tracker_->blocking_sites(now);
  s.live = tracker_->live();
  s.created_total = tracker_->created_total();
  s.exited_total = tracker_->exited_total();
  double dt = double(now - last_tick_ns_) / 1e9;
  if (dt > 0) {
    s.creation_rate = double(s.created_total - last_total_created_) / dt;
    for (const auto& site : s.sites)
      s.site_creation_rate[site.gopc] = double(site.created_total - last_created_[site.gopc]) / dt;
  }
  s.leaks = leaks_->verdicts(now, s.sites);
  s.census_available = census_ != nullptr;
  s.census_seconds = census_seconds_;
  s.events_received = events_received_;
  s.lost_events = probes_ ? probes_->lost_events() : 0;
  uint64_t total_hits = 0;
  if (probes_) {
    auto hits = probes_->probe_hits();
    for (int i = 0; i < PROBE_COUNT; i++)
      if (i < 2 || options_.park_ready) s.probe_hits[kProbeNames[i]] = hits[i];
  }
  s.cost_per_hit_seconds = options_.uprobe_cost_seconds;
  s.overhead_budget = options_.overhead_budget;
  s.warnings = warnings_;
  s.timers_note = timers_note_;
  if (timers_) {
    s.timers_probed = timer_probes_ != nullptr;
    s.timer_regime = timers_->regime().name();
    s.timer_regime_reason = timers_->regime().reason;
    s.timer_sites = timers_->sites(now);
    s.timer_verdicts = timers_->verdicts(now);
    s.timers_created_total = timers_->created_total();
    s.timer_census_available = timer_census_available_;
    s.timer_census_pending = timer_census_pending_;
    if (timers_->forgotten())
      s.warnings.push_back(std::to_string(timers_->forgotten()) + " timers beyond the tracking limit were forgotten");
  }
  if (timer_probes_) {
    s.lost_events += timer_probes_->lost_events();
    auto th = timer_probes_->probe_hits();
    for (int i = 0; i < TIMER_PROBE_COUNT; i++)
      if (th[i]) s.probe_hits[kTimerProbeNames[i]] = th[i];
  }
  s.allocations_note = allocations_note_;
  if (allocations_) {
    s.allocations = snapshot_allocations(*allocations_, now);
    s.lost_events += s.allocations->lost_events;
    for (uint32_t i = 0; i < APROBE_COUNT; i++)
      if (s.allocations->probe_hits[i])
        s.probe_hits[std::string("alloc_") + alloc_probe_name(i)] = s.allocations->probe_hits[i];
    // The duty-cycled ones: their counts are scaled estimates.
    for (const auto& p : allocations_->attached_probes())
      if (p.find("(sampled)") != std::string::npos) s.sampled_probes.push_back(p.substr(0, p.find('+')));
    s.probe_duty["allocations"] = allocations_->duty();
  }
  for (const auto& [name, n] : s.probe_hits) total_hits += n;
  s.estimated_overhead_seconds = double(total_hits) * s.cost_per_hit_seconds;
  auto group_status = [&](const char* name, GovernedGroup* g, uint64_t hits) {
    ProbeGroupStatus st;
    st.name = name;
    st.hits = hits;
    st.estimated_overhead_seconds = double(hits) * s.cost_per_hit_seconds;
    if (g) {
      st.mode = g->mode() == GovernedGroup::Mode::AlwaysOn ? "always-on"
                : g->mode() == GovernedGroup::Mode::Failed ? "failed"
                                                            : "sampled";
      st.duty = g->duty();
      st.attached_fraction = g->attached_fraction(now);
      st.estimated = g->sampled_ever();
      st.windows = g->windows_closed();
    } else {
      st.mode = "always-on";
    }
    s.probe_duty[name] = st.duty;
    s.probe_groups.push_back(st);
  };
  if (probes_) {
    uint64_t h = 0;
    for (uint64_t x : probes_->probe_hits()) h += x;
    group_status("goroutines", goroutine_group_, h);
    if (goroutine_group_ && goroutine_group_->sampled_ever())
      for (const auto& p : probes_->attached_probes()) s.sampled_probes.push_back(p.substr(0, p.find('+')));
    if (goroutine_group_ && !goroutine_group_->error().empty())
      s.warnings.push_back("goroutine probes: " + goroutine_group_->error());
  }
  if (timer_probes_) {
    uint64_t h = 0;
    for (uint64_t x : timer_probes_->probe_hits()) h += x;
    group_status("timers", timer_group_, h);
    if (timer_group_ && timer_group_->sampled_ever())
      for (const auto& p : timer_probes_->attached_probes()) s.sampled_probes.push_back(p.substr(0, p.find('+')));
    if (timer_group_ && !timer_group_->error().empty()) s.warnings.push_back("timer probes: " + timer_group_->error());
  }
  if (allocations_) {
    ProbeGroupStatus st;
    st.name = "allocations";
    st.mode = allocations_->duty() >= 1 ? "always-on" : "sampled";
    st.duty = allocations_->duty();
    st.attached_fraction = allocations_->elapsed_seconds(now) > 0
                               ? allocations_->sampled_seconds(now) / allocations_->elapsed_seconds(now)
                               : 1;
    for (uint64_t x : allocations_->probe_hits()) st.hits += x;
    st.estimated_overhead_seconds = allocations_->estimated_overhead_seconds();
    st.estimated = true;
    s.probe_groups.push_back(st);
  }
  if (s.lost_events) s.warnings.push_back(std::to_string(s.lost_events) + " events lost (ring buffer full)");
  if (tracker_->untracked())
    s.warnings.push_back(std::to_string(tracker_->untracked()) + " goroutines beyond the tracking limit");

  last_tick_ns_ = now;
  last_total_created_ = s.created_total;
  if (timers_) timers_->tick(now);
  for (const auto& site : s.sites) last_created_[site.gopc] = site.created_total;
  return s;
}

void TargetSession::finish() {
  if (governor_) governor_->finish(monotonic_ns());  // an open window's held events get their weight
  // Between windows, the creations since the last one are counted by the
  // runtime but stood for by no window: split them like the last window.
  if (goroutine_group_) {
    auto since = goroutine_group_->events_since_close();
    uint64_t seen = 0;
    for (const auto& [site, n] : last_window_creations_) seen += n;
    if (since && *since && seen) {
      for (const auto& [site, n] : last_window_creations_) {
        const double share = double(*since) * double(n) / double(seen);
        tracker_->add_estimated(site.first, site.second, share, share);
      }
    }
    last_window_creations_.clear();
  }
  handle_goroutine_events(0);
  handle_timer_events(0);
  if (allocations_) allocations_->poll(0);
  if (status() == TargetStatus::Running) take_census();
}

void TargetSession::detach() {
  if (detached_) return;
  detached_ = true;
  goroutine_group_ = timer_group_ = nullptr;
  governor_.reset();
  timer_probes_.reset();
  allocations_.reset();
  probes_.reset();
}

}  // namespace goroscope

#include "daemon/attach_command.h"
#include "daemon/monotonic_clock.h"

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <iostream>

#include "daemon/goroutine_census.h"
#include "daemon/goroutine_probes.h"
#include "daemon/goroutine_tracker.h"
#include "daemon/target_process.h"
#include "daemon/timer_census.h"
#include "daemon/timer_probes.h"
#include "exporters/attach_report.h"
#include "symbols/go_binary.h"
#include "symbols/probe_points.h"

namespace goroscope {

namespace {

std::atomic<int> g_signal{0};
void on_signal(int sig) { g_signal = sig; }

// A pidfd becomes readable when the process exits (Linux >= 5.3).
class ProcessWatch {
 public:
  explicit ProcessWatch(pid_t pid) : pid_(pid), fd_(static_cast<int>(syscall(SYS_pidfd_open, pid, 0))) {
    struct stat st {};
    if (stat(("/proc/" + std::to_string(pid) + "/exe").c_str(), &st) == 0) exe_ = {st.st_dev, st.st_ino};
  }
  ~ProcessWatch() {
    if (fd_ >= 0) close(fd_);
  }
  bool exited() const {
    if (fd_ >= 0) {
      pollfd p{fd_, POLLIN, 0};
      return poll(&p, 1, 0) > 0;
    }
    return kill(pid_, 0) != 0 && errno == ESRCH;
  }
  // The process replaced its program (execve): its binary is no longer the
  // one the probes were planned for.
  bool execed() const {
    struct stat st {};
    if (stat(("/proc/" + std::to_string(pid_) + "/exe").c_str(), &st) != 0) return false;
    return std::make_pair(st.st_dev, st.st_ino) != exe_;
  }

 private:
  pid_t pid_;
  int fd_;
  std::pair<dev_t, ino_t> exe_{};
};

struct TerminalSize {
  int rows = 24, cols = 120;
};
TerminalSize terminal_size() {
  winsize ws{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0) return {ws.ws_row, ws.ws_col};
  return {};
}

const char* kProbeNames[PROBE_COUNT] = {"goroutine_create", "goroutine_exit", "goroutine_park", "goroutine_ready"};

}  // namespace

int run_attach(const AttachOptions& options) {
  auto fail = [](const std::string& msg) {
    std::cerr << "goroscope: " << msg << "\n";
    return 1;
  };
  auto target = resolve_target_process(options.pid);
  if (!target) return fail(target.error().message);
  auto opened = GoBinary::open_cached(target->exe_link);
  if (!opened) {
    std::string msg = opened.error().message;
    if (msg.rfind(target->exe_link, 0) == 0) msg = target->exe_path + msg.substr(target->exe_link.size());
    return fail("PID " + std::to_string(options.pid) + ": " + msg);
  }
  std::shared_ptr<const GoBinary> binary = opened.value();
  if (binary->elf().arch() != Arch::Amd64) return fail("attaching is supported on amd64 only");

  ProcessWatch watch(options.pid);
  std::vector<std::string> warnings;

  std::unique_ptr<GoroutineCensus> census;
  auto c = GoroutineCensus::open(options.pid, binary);
  if (c) {
    census = std::move(c.value());
  } else {
    if (watch.exited()) return fail("PID " + std::to_string(options.pid) + " exited during attach");
    if (c.error().kind == ErrorKind::Io) return fail(c.error().message);
    warnings.push_back(c.error().message);
  }
  uint64_t bias = 0;
  if (census) {
    bias = census->load_bias();
  } else {
    auto b = read_load_bias(options.pid, binary->elf());
    if (!b) return fail(b.error().message);
    bias = *b;
  }

  ProbePlan plan = resolve_probe_points(*binary);
  GoroutineProbeOptions probe_options;
  probe_options.park_ready = options.park_ready;
  auto probes = GoroutineProbes::attach(*binary, plan, target->exe_link, options.pid, probe_options);
  if (!probes) {
    if (watch.exited()) return fail("PID " + std::to_string(options.pid) + " exited during attach");
    return fail(probes.error().message);
  }

  // Timers: a program that never creates one has nothing to probe (a note,
  // not a failure); a probe that cannot be placed safely costs the timer
  // section, not the attach.
  std::unique_ptr<TimerProbes> timer_probes;
  std::string timers_note;
  std::unique_ptr<TimerTracker> timers;
  if (options.timers) {
    auto tp = TimerProbes::attach(*binary, plan, target->exe_link, options.pid, bias, TimerProbeOptions{});
    if (tp) {
      timer_probes = std::move(tp.value());
    } else if (tp.error().kind == ErrorKind::NotFound) {
      timers_note = tp.error().message;
    } else {
      if (watch.exited()) return fail("PID " + std::to_string(options.pid) + " exited during attach");
      warnings.push_back(tp.error().message);
      timers_note = tp.error().message;
    }
    TimerFunctions fns = timer_functions(*binary);
    timers = std::make_unique<TimerTracker>(binary->pclntab(), bias, fns.send_time, fns.go_func,
                                            fns.fired_timer_offset,
                                            decide_timer_regime(binary->build_info(), read_process_godebug(options.pid)),
                                            options.timer);
  } else {
    timers_note = "timers not followed (--no-timers)";
  }
  auto on_timer_event = [&](const timer_event& e) {
    switch (e.kind) {
      case TIMER_CREATE: timers->on_create(e.timer, e.when, e.period, e.fn, reinterpret_cast<const uint64_t*>(e.frames), e.nframes, e.ts_ns); break;
      case TIMER_STOP: timers->on_stop(e.timer, e.ts_ns); break;
      case TIMER_RESET:
        timers->on_reset(e.timer, e.when, e.has_period ? std::optional<int64_t>(e.period) : std::nullopt, e.ts_ns);
        break;
      case TIMER_FIRE: timers->on_fire(e.timer, e.when, e.period, e.fn, e.ts_ns); break;
    }
  };
  // Allocations: sampled in short windows sized to a CPU budget (never a
  // probe on every allocation unless --alloc-every asks for it).
  std::unique_ptr<AllocationProfiler> allocations;
  std::string allocations_note;
  if (options.allocations) {
    AllocationProfilerOptions ao = options.alloc;
    ao.cost_per_hit_seconds = options.uprobe_cost_seconds;
    auto ap = AllocationProfiler::attach(binary, plan, target->exe_link, options.pid, ao);
    if (ap) {
      allocations = std::move(ap.value());
      for (const auto& w : allocations->warnings()) std::cerr << "goroscope: " << w << "\n";
    } else {
      if (watch.exited()) return fail("PID " + std::to_string(options.pid) + " exited during attach");
      allocations_note = ap.error().message;
      warnings.push_back("allocations not followed: " + ap.error().message);
    }
  } else {
    allocations_note = "allocations not followed (--no-allocations)";
  }
  bool timer_census_available = false;
  uint64_t timer_census_pending = 0;

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  GoroutineTracker tracker(binary->wait_reasons().names);
  LeakDetector leaks(options.leak);
  const uint64_t start_ns = monotonic_ns();
  if (timers) timers->tick(start_ns);
  double census_seconds = 0;

  auto take_census = [&]() -> bool {
    if (!census) return true;
    uint64_t t0 = monotonic_ns();
    CensusStats stats;
    auto snap = census->snapshot(&stats);
    if (!snap) return false;
    uint64_t t1 = monotonic_ns();
    census_seconds = stats.seconds;
    tracker.on_census(*snap, t0, t1);
    return true;
  };
  auto on_event = [&](const goroutine_event& e) {
    switch (e.kind) {
      case GOROUTINE_CREATE: tracker.on_create(e.goid, e.parent_goid, e.pc - bias, e.start_pc - bias, e.ts_ns); break;
      case GOROUTINE_EXIT: tracker.on_exit(e.goid, e.pc - bias, e.start_pc - bias, e.ts_ns); break;
      case GOROUTINE_PARK: tracker.on_park(e.goid, static_cast<uint8_t>(e.wait_reason), e.ts_ns); break;
      case GOROUTINE_READY: tracker.on_ready(e.goid, e.ts_ns); break;
    }
  };

  // Events that arrived before the first census are applied first, so the
  // census reconciles against them.
  (*probes)->poll(0, on_event);
  if (!take_census() && watch.exited()) return fail("PID " + std::to_string(options.pid) + " exited during attach");
  if (timers) {
    // Timers armed before attach: read once from the per-P heaps, after the
    // events so far, which already name some of them.
    if (timer_probes) timer_probes->poll(0, on_timer_event);
    auto tc = TimerCensus::open(options.pid, binary, bias);
    if (tc) {
      auto pending = (*tc)->snapshot(*timers);
      if (pending) {
        timer_census_available = true;
        timer_census_pending = pending->size();
        timers->on_census(*pending, monotonic_ns());
      } else {
        warnings.push_back("timer census failed: " + pending.error().message);
      }
    } else {
      warnings.push_back(tc.error().message);
    }
  }

  std::cerr << "goroscope: attached to PID " << options.pid << " (" << target->exe_path << ", "
            << binary->go_version().raw << "): " << tracker.live() << " goroutines"
            << (census ? "" : " (census unavailable: counting from now)") << "; Ctrl-C for the final report\n";

  const bool tty = isatty(STDOUT_FILENO);
  const bool live_view = options.format == "text" && options.top && tty;
  const bool periodic_text = options.format == "text" && !live_view;
  std::map<uint64_t, uint64_t> last_created;  // gopc -> created_total at the last tick
  uint64_t last_tick_ns = start_ns, last_total_created = 0;
  std::string stop_reason;

  auto snapshot = [&](uint64_t now) {
    AttachSnapshot s;
    s.pid = options.pid;
    s.exe = target->exe_path;
    s.go_version = binary->go_version().raw;
    s.elapsed_seconds = double(now - start_ns) / 1e9;
    s.sites = tracker.sites(now);
    s.blocking_sites = tracker.blocking_sites(now);
    s.live = tracker.live();
    s.created_total = tracker.created_total();
    s.exited_total = tracker.exited_total();
    double dt = double(now - last_tick_ns) / 1e9;
    if (dt > 0) {
      s.creation_rate = double(s.created_total - last_total_created) / dt;
      for (const auto& site : s.sites)
        s.site_creation_rate[site.gopc] = double(site.created_total - last_created[site.gopc]) / dt;
    }
    s.leaks = leaks.verdicts(now, s.sites);
    s.census_available = census != nullptr;
    s.census_seconds = census_seconds;
    s.lost_events = (*probes)->lost_events();
    auto hits = (*probes)->probe_hits();
    for (int i = 0; i < PROBE_COUNT; i++)
      if (i < 2 || options.park_ready) s.probe_hits[kProbeNames[i]] = hits[i];
    s.cost_per_hit_seconds = options.uprobe_cost_seconds;
    s.warnings = warnings;
    s.timers_note = timers_note;
    if (timers) {
      s.timers_probed = timer_probes != nullptr;
      s.timer_regime = timers->regime().name();
      s.timer_regime_reason = timers->regime().reason;
      s.timer_sites = timers->sites(now);
      s.timer_verdicts = timers->verdicts(now);
      s.timers_created_total = timers->created_total();
      s.timer_census_available = timer_census_available;
      s.timer_census_pending = timer_census_pending;
      if (timers->forgotten())
        s.warnings.push_back(std::to_string(timers->forgotten()) + " timers beyond the tracking limit were forgotten");
    }
    if (timer_probes) {
      uint64_t lost = timer_probes->lost_events();
      s.lost_events += lost;
      auto th = timer_probes->probe_hits();
      for (int i = 0; i < TIMER_PROBE_COUNT; i++)
        if (th[i]) s.probe_hits[kTimerProbeNames[i]] = th[i];
    }
    s.allocations_note = allocations_note;
    if (allocations) {
      s.allocations = snapshot_allocations(*allocations, now);
      s.lost_events += s.allocations->lost_events;
      for (uint32_t i = 0; i < APROBE_COUNT; i++)
        if (s.allocations->probe_hits[i]) s.probe_hits[std::string("alloc_") + alloc_probe_name(i)] = s.allocations->probe_hits[i];
      // The duty-cycled ones: their counts are scaled estimates.
      for (const auto& p : allocations->attached_probes())
        if (p.find("(sampled)") != std::string::npos) s.sampled_probes.push_back(p.substr(0, p.find('+')));
    }
    if (s.lost_events) s.warnings.push_back(std::to_string(s.lost_events) + " events lost (ring buffer full)");
    if (tracker.untracked()) s.warnings.push_back(std::to_string(tracker.untracked()) + " goroutines beyond the tracking limit");
    return s;
  };
  auto mark_tick = [&](uint64_t now, const AttachSnapshot& s) {
    last_tick_ns = now;
    last_total_created = s.created_total;
    if (timers) timers->tick(now);
    for (const auto& site : s.sites) last_created[site.gopc] = site.created_total;
  };

  uint64_t next_tick = start_ns + uint64_t(options.interval_seconds * 1e9);
  const uint64_t end_ns = options.duration_seconds > 0 ? start_ns + uint64_t(options.duration_seconds * 1e9) : 0;
  bool target_alive = true;
  while (true) {
    // About 100 ms per turn, shared by the event sources; the allocation
    // profiler's duty-cycle windows are timed inside its poll.
    const int sources = 1 + (timer_probes ? 1 : 0) + (allocations ? 1 : 0);
    (*probes)->poll(100 / sources, on_event);
    if (timer_probes) timer_probes->poll(100 / sources, on_timer_event);
    if (allocations) allocations->poll(100 / sources);
    if (g_signal) {
      stop_reason = "signal";
      break;
    }
    if (watch.exited()) {
      target_alive = false;
      stop_reason = "target exited";
      break;
    }
    if (watch.execed()) {
      target_alive = false;
      std::cerr << "goroscope: PID " << options.pid << " replaced its program (exec); stopping\n";
      stop_reason = "target exec";
      break;
    }
    uint64_t now = monotonic_ns();
    if (now >= next_tick) {
      if (!take_census()) {
        if (watch.exited()) {
          target_alive = false;
          stop_reason = "target exited";
          break;
        }
      }
      now = monotonic_ns();
      leaks.observe(now, tracker.sites(now));
      AttachSnapshot s = snapshot(now);
      if (live_view) {
        TerminalSize ts = terminal_size();
        draw_attach_top(std::cout, s, binary->pclntab(), ts.rows, ts.cols);
      } else if (periodic_text) {
        print_attach_text(std::cout, s, binary->pclntab(), options.max_sites);
      }
      mark_tick(now, s);
      next_tick = now + uint64_t(options.interval_seconds * 1e9);
    }
    if (end_ns && now >= end_ns) {
      stop_reason = "duration";
      break;
    }
  }

  // Drain what the probes still hold, then one last census while the
  // target is there to read.
  (*probes)->poll(0, on_event);
  if (timer_probes) timer_probes->poll(0, on_timer_event);
  if (allocations) allocations->poll(0);
  if (target_alive) take_census();
  uint64_t now = monotonic_ns();
  AttachSnapshot final_snapshot = snapshot(now);
  timer_probes.reset();
  allocations.reset();
  probes.value().reset();  // detach before printing: the target runs unprobed from here

  if (options.format == "json") {
    nlohmann::json j = attach_json(final_snapshot, binary->pclntab());
    j["stopped_by"] = stop_reason;
    std::cout << j.dump(2) << std::endl;
  } else {
    if (live_view) std::cout << "\x1b[H\x1b[2J";
    std::cout << "final report (" << stop_reason << ")\n";
    print_attach_text(std::cout, final_snapshot, binary->pclntab(), options.max_sites);
  }
  return 0;
}

}  // namespace goroscope

#include "daemon/daemon_command.h"

#include <malloc.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <prometheus/collectable.h>
#include <set>
#include <thread>

#include "daemon/log.h"
#include "daemon/monotonic_clock.h"
#include "daemon/process_discovery.h"
#include "daemon/target_registry.h"
#include "exporters/alertmanager_push.h"
#include "exporters/attach_alerts.h"
#include "exporters/metrics_server.h"
#include "exporters/prometheus_metrics.h"
#include "symbols/go_binary.h"

namespace goroscope {

namespace {

std::atomic<int> g_signal{0};
void on_signal(int sig) { g_signal = sig; }

bool process_exists(pid_t pid) { return kill(pid, 0) == 0 || errno == EPERM; }

// The families of a scrape, built from what the engine threads published.
class DaemonCollectable : public prometheus::Collectable {
 public:
  DaemonCollectable(const TargetRegistry& registry, size_t max_sites, const AlertmanagerPush* const* pusher)
      : registry_(registry), max_sites_(max_sites), pusher_(pusher) {}

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<ScrapeTarget> targets;
    for (auto& t : registry_.targets()) targets.push_back(ScrapeTarget{t.snapshot, t.binary, {}});
    DaemonStatus status;
    status.attach_errors_total = registry_.attach_errors_total();
    for (const auto& f : registry_.failures()) status.failing.push_back(FailingTarget{f.pid, f.exe, f.reason, {}});
    PrometheusOptions po;
    po.max_sites_per_process = max_sites_;
    auto families = metric_families(targets, status, po);
    if (*pusher_) append_alertmanager(families, **pusher_);
    return families;
  }

 private:
  static void append_alertmanager(std::vector<prometheus::MetricFamily>& families, const AlertmanagerPush& pusher) {
    prometheus::MetricFamily sent{"goroscope_alertmanager_alerts_sent_total",
                                  "Alerts in pushes an Alertmanager accepted (re-sends count again).",
                                  prometheus::MetricType::Counter,
                                  {}};
    prometheus::MetricFamily failed{"goroscope_alertmanager_send_failures_total",
                                    "Pushes to an Alertmanager that failed or were refused.",
                                    prometheus::MetricType::Counter,
                                    {}};
    for (const auto& s : pusher.status()) {
      prometheus::ClientMetric m;
      m.label = {{"url", s.url}};
      m.counter.value = double(s.alerts_sent);
      sent.metric.push_back(m);
      m.counter.value = double(s.send_failures);
      failed.metric.push_back(m);
    }
    families.push_back(std::move(sent));
    families.push_back(std::move(failed));
  }

  const TargetRegistry& registry_;
  size_t max_sites_;
  const AlertmanagerPush* const* pusher_;
};

// One monitored process: attaches, then polls, takes the census and
// publishes a snapshot every interval until the process goes or the daemon
// stops. Runs on its own thread so a slow or huge target delays no other.
class TargetWorker {
 public:
  enum class Outcome { Running, Failed, Exited, Execed, Stopped };

  TargetWorker(pid_t pid, std::string exe, const DaemonOptions& options, TargetRegistry& registry)
      : pid_(pid), exe_(std::move(exe)), options_(options), registry_(registry) {
    thread_ = std::thread([this] { run(); });
  }
  ~TargetWorker() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  void request_stop() { stop_ = true; }
  bool done() const { return outcome_ != Outcome::Running; }
  bool settled() const { return published_ || done(); }  // for readiness
  Outcome outcome() const { return outcome_; }
  const std::string& exe() const { return exe_; }

 private:
  void run() {
    const LogFields who{{"pid", std::to_string(pid_)}, {"exe", exe_}};
    auto opened = TargetSession::open(pid_, options_.engine);
    if (!opened) {
      AttachFailure f{pid_, exe_, attach_error_reason(opened.error()), opened.error().message};
      LogFields fields = who;
      fields.push_back({"reason", f.reason});
      fields.push_back({"err", f.message});
      if (f.reason == "exited") {
        log_info("target exited before attach", fields);
      } else {
        registry_.record_failure(f);
        log_warn("cannot attach", fields);
      }
      outcome_ = f.reason == "exited" ? Outcome::Exited : Outcome::Failed;
      return;
    }
    std::unique_ptr<TargetSession> session = std::move(opened.value());
    for (const auto& w : session->warnings()) {
      LogFields fields = who;
      fields.push_back({"warning", w});
      log_warn("attached with a limitation", fields);
    }
    {
      LogFields fields = who;
      fields.push_back({"go_version", session->binary()->go_version().raw});
      fields.push_back({"goroutines", std::to_string(session->live_goroutines())});
      log_info("attached", fields);
    }
    publish(*session, monotonic_ns());

    Outcome end = Outcome::Stopped;
    uint64_t next_tick = monotonic_ns() + uint64_t(options_.interval_seconds * 1e9);
    while (!stop_) {
      session->poll(100);
      TargetStatus st = session->status();
      if (st != TargetStatus::Running) {
        end = st == TargetStatus::Exited ? Outcome::Exited : Outcome::Execed;
        break;
      }
      uint64_t now = monotonic_ns();
      if (now >= next_tick) {
        if (!session->tick(now) && session->status() != TargetStatus::Running) continue;
        publish(*session, monotonic_ns());
        next_tick = monotonic_ns() + uint64_t(options_.interval_seconds * 1e9);
      }
    }
    session->detach();
    registry_.remove(pid_);
    if (end == Outcome::Exited) log_info("target exited; detached", who);
    if (end == Outcome::Execed) log_info("target replaced its program (exec); detached", who);
    outcome_ = end;
  }

  void publish(TargetSession& session, uint64_t now) {
    auto snap = std::make_shared<const AttachSnapshot>(session.snapshot(now));
    registry_.publish(pid_, session.binary(), std::move(snap));
    published_ = true;
  }

  pid_t pid_;
  std::string exe_;
  const DaemonOptions& options_;
  TargetRegistry& registry_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> published_{false};
  std::atomic<Outcome> outcome_{Outcome::Running};
  std::thread thread_;
};

}  // namespace

int run_daemon(const DaemonOptions& given) {
  DaemonOptions options = given;
  // A scrape of 50 processes x 200 sites builds ~150,000 series and a 30 MB
  // text on one of civetweb's threads; with an arena per thread glibc kept
  // every thread's peak: 1.28 GiB resident after a few scrapes (measured,
  // tests/bench/scrape_bench.sh). Few arenas, trimmed after scrapes.
  mallopt(M_ARENA_MAX, 2);
  auto level = parse_log_level(options.log_level);
  auto format = parse_log_format(options.log_format);
  if (!level || !format) {
    std::fprintf(stderr, "goroscope: --log.level must be debug|info|warn|error and --log.format logfmt|json\n");
    return 1;
  }
  configure_log(*level, *format);
  auto fail = [](const std::string& msg) {
    log_error(msg);
    return 1;
  };

  std::vector<ExePattern> patterns;
  for (const auto& text : options.exe_patterns) {
    auto p = parse_exe_pattern(text);
    if (!p) return fail(p.error().message);
    patterns.push_back(*p);
  }
  if (options.pids.empty() && patterns.empty()) return fail("nothing to monitor: give --pid PID and/or --exe PATTERN");
  if (options.listen_address.empty()) options.listen_address = ":" + std::to_string(kDefaultMetricsPort);

  TargetRegistry registry;
  std::unique_ptr<AlertmanagerPush> pusher;
  const AlertmanagerPush* pusher_view = nullptr;
  auto collectable = std::make_shared<DaemonCollectable>(registry, options.max_sites, &pusher_view);

  std::map<pid_t, std::unique_ptr<TargetWorker>> workers;
  std::map<pid_t, std::string> attempted;  // pid -> the executable it was attempted with
  std::set<pid_t> initial;                 // the first pass's targets, for readiness
  std::atomic<bool> first_pass_done{false};
  std::mutex workers_mu;  // readiness reads the workers from the HTTP threads
  auto ready = [&]() {
    if (!first_pass_done) return false;
    std::lock_guard lock(workers_mu);
    for (pid_t pid : initial) {
      auto it = workers.find(pid);
      if (it != workers.end() && !it->second->settled()) return false;
    }
    return true;
  };

  if (!options.alertmanager_urls.empty()) {
    AlertmanagerPushOptions ao;
    ao.urls = options.alertmanager_urls;
    ao.resend_interval = std::chrono::milliseconds(int64_t(options.alert_resend_seconds * 1000));
    ao.log = [](const std::string& line) { log_info(line); };
    try {
      pusher = std::make_unique<AlertmanagerPush>(ao);
    } catch (const std::exception& e) {
      return fail(std::string("--alertmanager.url: ") + e.what());
    }
    pusher_view = pusher.get();
  }

  MetricsServerOptions so;
  so.listen_address = options.listen_address;
  so.telemetry_path = options.telemetry_path;
  auto server = MetricsServer::start(so, collectable, ready);
  if (!server) return fail(server.error().message);

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  log_info("serving metrics", {{"address", options.listen_address},
                               {"port", std::to_string((*server)->port())},
                               {"path", options.telemetry_path},
                               {"version", GOROSCOPE_VERSION}});

  const std::set<pid_t> explicit_pids(options.pids.begin(), options.pids.end());
  for (pid_t pid : explicit_pids)
    if (!process_exists(pid)) log_warn("no such process; not monitored", {{"pid", std::to_string(pid)}});

  std::map<pid_t, uint64_t> lost_before;  // per target, at the previous alert evaluation
  uint64_t next_discovery = 0, next_alerts = 0, next_trim = 0;
  bool first = true;
  while (!g_signal) {
    const uint64_t now = monotonic_ns();
    {
      std::lock_guard lock(workers_mu);
      // Reap the engines whose target went or could not be attached.
      for (auto it = workers.begin(); it != workers.end();) {
        if (it->second->done() && it->second->outcome() != TargetWorker::Outcome::Failed) {
          attempted.erase(it->first);
          lost_before.erase(it->first);
          it = workers.erase(it);
        } else {
          ++it;
        }
      }
    }
    if (now >= next_discovery) {
      std::map<pid_t, std::string> wanted = find_matching_processes(patterns);
      for (pid_t pid : explicit_pids)
        if (std::string exe = process_exe_path(pid); !exe.empty()) wanted.emplace(pid, exe);
      std::lock_guard lock(workers_mu);
      // Failed attempts are listed while their process lives; a process
      // that exec'd another program is attempted again.
      for (auto it = attempted.begin(); it != attempted.end();) {
        auto w = wanted.find(it->first);
        if (w == wanted.end() || w->second != it->second) {
          registry.forget_failure(it->first);
          workers.erase(it->first);
          it = attempted.erase(it);
        } else {
          ++it;
        }
      }
      for (const auto& [pid, exe] : wanted) {
        if (attempted.count(pid)) continue;
        attempted[pid] = exe;
        log_debug("attaching", {{"pid", std::to_string(pid)}, {"exe", exe}});
        workers[pid] = std::make_unique<TargetWorker>(pid, exe, options, registry);
        if (first) initial.insert(pid);
      }
      if (first) first_pass_done = true;
      first = false;
      next_discovery = now + uint64_t(options.discovery_seconds * 1e9);
    }
    if (pusher && now >= next_alerts) {
      std::vector<Alert> alerts;
      for (const auto& t : registry.targets()) {
        if (!t.snapshot || !t.binary) continue;
        auto a = attach_alerts(*t.snapshot, t.binary->pclntab(), lost_before[t.pid]);
        lost_before[t.pid] = t.snapshot->lost_events;
        alerts.insert(alerts.end(), a.begin(), a.end());
      }
      for (const auto& f : registry.failures()) alerts.push_back(attach_failed_alert(f.exe, f.pid, f.message));
      pusher->update(std::move(alerts));
      next_alerts = now + uint64_t(options.interval_seconds * 1e9);
    }
    if (now >= next_trim) {
      malloc_trim(0);  // hand back what the last scrapes freed
      next_trim = now + 5'000'000'000ull;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  log_info("stopping: detaching from every target", {{"signal", std::to_string(g_signal.load())}});
  {
    std::lock_guard lock(workers_mu);
    for (auto& [pid, w] : workers) w->request_stop();  // all detach at once
    workers.clear();  // each joins its engine thread, which has detached its probes
  }
  server->reset();
  pusher_view = nullptr;
  pusher.reset();
  return 0;
}

}  // namespace goroscope

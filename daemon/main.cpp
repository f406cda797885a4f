// goroscope: an eBPF runtime monitor for live Go processes.
#include <CLI/CLI.hpp>
#include <bpf/libbpf.h>

#include <cstdarg>
#include <cstdio>
#include <cstdlib>

#include <iostream>

#include "daemon/attach_command.h"
#include "daemon/daemon_command.h"
#include "exporters/metrics_server.h"
#include "daemon/inspect_command.h"

namespace {

// "90", "90s", "1.5m", "250ms", "2h" -> seconds.
double parse_duration(const std::string& text) {
  size_t used = 0;
  double v = std::stod(text, &used);
  std::string unit = text.substr(used);
  if (unit.empty() || unit == "s") return v;
  if (unit == "ms") return v / 1000;
  if (unit == "m") return v * 60;
  if (unit == "h") return v * 3600;
  throw std::invalid_argument("unknown unit");
}

CLI::Option* add_duration(CLI::App* app, const std::string& name, double& target, const std::string& help) {
  return app
      ->add_option_function<std::string>(
          name,
          [&target, name](const std::string& v) {
            try {
              target = parse_duration(v);
            } catch (const std::exception&) {
              throw CLI::ValidationError(name, "'" + v + "' is not a duration (e.g. 30s, 2m, 500ms)");
            }
            if (target < 0) throw CLI::ValidationError(name, "must not be negative");
          },
          help)
      ->type_name("DURATION");
}

// The engine's flags, shared by attach and daemon.
void add_engine_flags(CLI::App* app, goroscope::EngineOptions& engine) {
  app->add_flag("--park", engine.park_ready,
                "also probe gopark/ready to follow every block and wake-up (costly on busy programs)");
  add_duration(app, "--leak-window", engine.leak.window_seconds, "how long a site's growth must be sustained to be called a leak (default 30s)");
  app->add_option("--leak-min-growth", engine.leak.min_growth, "goroutines a site must gain over the window (default 10)");
  app->add_option("--leak-blocked", engine.leak.min_blocked_fraction, "share of a leaking site's goroutines that must be blocked (default 0.9)")
      ->check(CLI::Range(0.0, 1.0));
  app->add_option("--stuck-min", engine.leak.stuck_min, "goroutines at one site, all blocked with none exiting, to call it stuck (default 1000)");
  add_duration(app, "--stuck-after", engine.leak.stuck_seconds, "how long with no exit before a blocked population is stuck (default 10m)");
  app->add_flag("!--no-timers", engine.timers, "do not probe timers (time.Timer, Ticker, AfterFunc)");
  app->add_flag("!--no-allocations", engine.allocations, "do not sample allocations, slice growth and GC cycles");
  app->add_option("--overhead-budget", engine.overhead_budget,
                  "share of one CPU the probes may cost each target (default 0.01); hot probe groups are sampled "
                  "to stay under it and their counts become scaled estimates; 0 = never sample (exact, any cost)")
      ->check(CLI::Range(0.0, 1.0));
  add_duration(app, "--overhead-burst", engine.overhead_burst_seconds,
               "probe CPU time a group may spend above its share before it is sampled, so bursts are counted "
               "exactly (default 50ms)");
  app->add_option("--uprobe-cost", engine.uprobe_cost_seconds,
                  "seconds one uprobe hit costs; default: measured at start-up")
      ->check(CLI::Range(1e-8, 1e-2));
  app->add_option("--alloc-budget", engine.alloc_budget,
                  "share of one CPU for the allocation sampler alone (default: a third of --overhead-budget)")
      ->check(CLI::Range(0.0001, 1.0));
  app->add_flag("--alloc-every", engine.alloc.probes.every_allocation,
                "diagnostic: probe every allocation for a 2 s window (slows the target 10-100x meanwhile)");
  app->add_option("--timer-leak-min", engine.timer.leak_min,
                  "one-shot timers or AfterFuncs armed for long at one site, not stopped, to call it a leak (default 20)");
  app->add_option("--ticker-leak-min", engine.timer.ticker_leak_min,
                  "unstopped tickers at one site to call it a leak (default 10)");
  add_duration(app, "--timer-long", engine.timer.long_seconds,
               "a one-shot timer due at least this far ahead is \"armed for long\" (default 10s)");
  app->add_option("--timer-churn-min", engine.timer.churn_min,
                  "Go 1.23 timers: channel timers created with none fired or stopped to report churn (default 100)");
  add_duration(app, "--ticker-firing", engine.timer.ticker_firing_seconds,
               "Go 1.23 timers: an unstopped ticker that fired this recently is still referenced (default 5s)");
  app->add_option("--max-timers", engine.timer.max_timers, "timers followed by address (default 200000)")
      ->check(CLI::PositiveNumber);
}

// libbpf writes its own warnings to stderr (a memlock rlimit it could not
// raise, a probe it could not create); goroscope reports every failure as
// one line of its own, so libbpf is quiet unless GOROSCOPE_LIBBPF_LOG=1.
int libbpf_print(enum libbpf_print_level level, const char* format, va_list args) {
  static const bool enabled = [] {
    const char* v = std::getenv("GOROSCOPE_LIBBPF_LOG");
    return v && *v && std::string(v) != "0";
  }();
  if (!enabled) return 0;
  return std::vfprintf(stderr, format, args);
}

}  // namespace

int main(int argc, char** argv) {
  libbpf_set_print(libbpf_print);
  CLI::App app{
      "goroscope: where goroutines are born, how long they live, where they block,\n"
      "which timers leak and where memory is allocated, per call site, in any running\n"
      "Go program, without restarting or rebuilding it."};
  app.set_version_flag("--version", std::string("goroscope ") + GOROSCOPE_VERSION);
  app.require_subcommand(1);
  app.footer(
      "EXAMPLES:\n"
      "  goroscope attach --pid 4242                live goroutine view of a running Go program\n"
      "  goroscope daemon --exe '/srv/bin/*'        Prometheus metrics for every matching process\n"
      "  goroscope inspect ./server                 what goroscope can see in a Go binary\n"
      "  goroscope inspect --pid 4242 --format json the same for a running process\n"
      "  echo 0x4a1b2c | goroscope inspect ./server --addr2line\n");

  goroscope::InspectOptions inspect;
  CLI::App* ins = app.add_subcommand(
      "inspect", "Show a Go binary's version, module, probe points, struct offsets and warnings");
  ins->add_option("binary", inspect.binary, "Go executable to inspect");
  ins->add_option("--pid,-p", inspect.pid, "inspect the executable of this running process")->check(CLI::PositiveNumber);
  ins->add_option("--format,-f", inspect.format, "output format")->check(CLI::IsMember({"text", "json"}));
  ins->add_flag("--addr2line", inspect.addr2line,
                "read hex addresses on stdin and print function and file:line for each, like `go tool addr2line`");
  ins->footer(
      "EXAMPLES:\n"
      "  goroscope inspect /usr/local/bin/myservice\n"
      "  goroscope inspect --pid $(pidof myservice) --format json | jq .offsets\n"
      "  printf '0x4a1b2c\\n0x4a1b40\\n' | goroscope inspect ./myservice --addr2line\n"
      "\n"
      "Works on stripped (-s -w) and PIE binaries: names come from the Go runtime's\n"
      "own pclntab, struct offsets from DWARF or, without it, from goroscope's\n"
      "per-Go-version tables (the output says which).");
  ins->callback([&] {
    if (inspect.binary.empty() == (inspect.pid == 0))
      throw CLI::ValidationError("inspect", "give either a BINARY or --pid PID");
  });

  goroscope::AttachOptions attach;
  CLI::App* att = app.add_subcommand(
      "attach", "Watch a running Go process's goroutines per creation site: live counts, states, lifetimes, leaks");
  att->add_option("--pid,-p", attach.pid, "the Go process to attach to")->required()->check(CLI::PositiveNumber);
  add_duration(att, "--duration,-d", attach.duration_seconds, "stop after this long (default: until the target exits or Ctrl-C)");
  add_duration(att, "--interval,-i", attach.interval_seconds, "census, leak check and refresh period (default 1s)");
  att->add_option("--format,-f", attach.format, "text (live view on a terminal) or json (one document at the end)")
      ->check(CLI::IsMember({"text", "json"}));
  att->add_flag("!--no-top", attach.top, "print plain periodic text even on a terminal");
  att->add_option("--max-sites", attach.max_sites, "sites shown in text output")->check(CLI::PositiveNumber);
  add_engine_flags(att, attach.engine);
  att->footer(
      "EXAMPLES:\n"
      "  goroscope attach --pid $(pidof myservice)                  live view until Ctrl-C\n"
      "  goroscope attach --pid 4242 --duration 60s --format json    one JSON report after a minute\n"
      "  goroscope attach --pid 4242 --leak-window 10s --park        faster verdicts, follow every block\n"
      "\n"
      "Needs root (or CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE). The target is never stopped:\n"
      "goroscope reads its goroutine table from memory and places uprobes (never uretprobes).\n"
      "Ctrl-C or SIGTERM prints the final report; the target keeps running unharmed.");


  goroscope::DaemonOptions daemon;
  CLI::App* dmn = app.add_subcommand(
      "daemon", "Monitor Go processes as a service: Prometheus metrics on /metrics, optional Alertmanager alerts");
  dmn->add_option("--pid,-p", daemon.pids, "a Go process to monitor (repeatable)")->check(CLI::PositiveNumber);
  dmn->add_option("--exe,-e", daemon.exe_patterns,
                  "monitor every process whose executable matches: an absolute path glob (/srv/*/api) or a file "
                  "name glob (api-*); processes that start later are attached too (repeatable)");
  dmn->add_option("--web.listen-address", daemon.listen_address,
                  "[host]:port to serve on (default :" + std::to_string(goroscope::kDefaultMetricsPort) + ")");
  dmn->add_option("--web.telemetry-path", daemon.telemetry_path, "path of the metrics (default /metrics)");
  dmn->add_option("--log.level", daemon.log_level, "debug, info, warn or error (default info)")
      ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
  dmn->add_option("--log.format", daemon.log_format, "logfmt or json (default logfmt)")
      ->check(CLI::IsMember({"logfmt", "json"}));
  add_duration(dmn, "--interval,-i", daemon.interval_seconds,
               "census, leak check and metrics refresh period per process (default 5s)");
  add_duration(dmn, "--discovery-interval", daemon.discovery_seconds,
               "how often --exe patterns are matched against running processes (default 2s)");
  dmn->add_option("--max-sites", daemon.max_sites,
                  "sites per process with their own series (goroutines, timers, allocations each); the rest are "
                  "summed into function=\"other\" (default 50)")
      ->check(CLI::PositiveNumber);
  dmn->add_option("--alertmanager.url", daemon.alertmanager_urls,
                  "push leak alerts to this Alertmanager (v2 API; repeatable), for hosts without Prometheus rules");
  add_duration(dmn, "--alertmanager.resend-interval", daemon.alert_resend_seconds,
               "how often active alerts are re-sent (default 30s)");
  add_engine_flags(dmn, daemon.engine);
  // Many targets: smaller rings than attach's (each target has three, in
  // locked kernel memory); 1 MiB holds ~16,000 goroutine events between polls.
  daemon.engine.ring_buffer_bytes = 1 << 20;
  dmn->add_option("--ring-buffer-bytes", daemon.engine.ring_buffer_bytes,
                  "size of each of a target's three event rings (default 1048576; rounded up to a power of two pages)")
      ->check(CLI::Range(4096u, 1u << 30));
  dmn->callback([&] {
    if (daemon.pids.empty() && daemon.exe_patterns.empty())
      throw CLI::ValidationError("daemon", "give --pid PID and/or --exe PATTERN");
  });
  dmn->footer(
      "EXAMPLES:\n"
      "  goroscope daemon --exe '/srv/bin/*'                       every process started from /srv/bin\n"
      "  goroscope daemon --pid 4242 --pid 4243 --web.listen-address 127.0.0.1:9925\n"
      "  goroscope daemon --exe api --alertmanager.url http://alertmanager:9093\n"
      "  curl -s localhost:9925/metrics | grep goroscope_leak_suspected\n"
      "\n"
      "Serves /metrics (Prometheus text format), / (landing page), /-/healthy and /-/ready\n"
      "(ready once the processes found at start-up were attached or failed). Alerting rules:\n"
      "deploy/prometheus/alerts.yml. Needs root (or CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE).");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (ins->parsed()) return goroscope::run_inspect(inspect);
    if (att->parsed()) return goroscope::run_attach(attach);
    if (dmn->parsed()) return goroscope::run_daemon(daemon);
  } catch (const std::exception& e) {
    std::cerr << "goroscope: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

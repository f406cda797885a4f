#include "daemon/attach_command.h"

#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <iostream>

#include "daemon/monotonic_clock.h"
#include "exporters/attach_report.h"
#include "symbols/go_binary.h"

namespace goroscope {

namespace {

std::atomic<int> g_signal{0};
void on_signal(int sig) { g_signal = sig; }

struct TerminalSize {
  int rows = 24, cols = 120;
};
TerminalSize terminal_size() {
  winsize ws{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0) return {ws.ws_row, ws.ws_col};
  return {};
}

}  // namespace

int run_attach(const AttachOptions& options) {
  auto opened = TargetSession::open(options.pid, options.engine);
  if (!opened) {
    std::cerr << "goroscope: " << opened.error().message << "\n";
    return 1;
  }
  std::unique_ptr<TargetSession> session = std::move(opened.value());
  for (const auto& w : session->warnings()) std::cerr << "goroscope: " << w << "\n";

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);

  std::cerr << "goroscope: attached to PID " << options.pid << " (" << session->exe_path() << ", "
            << session->binary()->go_version().raw << "): " << session->live_goroutines() << " goroutines"
            << (session->census_available() ? "" : " (census unavailable: counting from now)")
            << "; Ctrl-C for the final report\n";

  const Pclntab& pclntab = session->binary()->pclntab();
  const bool tty = isatty(STDOUT_FILENO);
  const bool live_view = options.format == "text" && options.top && tty;
  const bool periodic_text = options.format == "text" && !live_view;
  std::string stop_reason;

  const uint64_t start_ns = monotonic_ns();
  uint64_t next_tick = start_ns + uint64_t(options.interval_seconds * 1e9);
  const uint64_t end_ns = options.duration_seconds > 0 ? start_ns + uint64_t(options.duration_seconds * 1e9) : 0;
  while (true) {
    session->poll(100);
    if (g_signal) {
      stop_reason = "signal";
      break;
    }
    TargetStatus st = session->status();
    if (st == TargetStatus::Exited) {
      stop_reason = "target exited";
      break;
    }
    if (st == TargetStatus::Execed) {
      std::cerr << "goroscope: PID " << options.pid << " replaced its program (exec); stopping\n";
      stop_reason = "target exec";
      break;
    }
    uint64_t now = monotonic_ns();
    if (now >= next_tick) {
      if (!session->tick(now) && session->status() == TargetStatus::Exited) {
        stop_reason = "target exited";
        break;
      }
      now = monotonic_ns();
      AttachSnapshot s = session->snapshot(now);
      if (live_view) {
        TerminalSize ts = terminal_size();
        draw_attach_top(std::cout, s, pclntab, ts.rows, ts.cols);
      } else if (periodic_text) {
        print_attach_text(std::cout, s, pclntab, options.max_sites);
      }
      next_tick = now + uint64_t(options.interval_seconds * 1e9);
    }
    if (end_ns && now >= end_ns) {
      stop_reason = "duration";
      break;
    }
  }

  // Drain what the probes still hold, one last census while the target is
  // there to read, then detach before printing: the target runs unprobed.
  session->finish();
  AttachSnapshot final_snapshot = session->snapshot(monotonic_ns());
  session->detach();

  if (options.format == "json") {
    nlohmann::json j = attach_json(final_snapshot, pclntab);
    j["stopped_by"] = stop_reason;
    std::cout << j.dump(2) << std::endl;
  } else {
    if (live_view) std::cout << "\x1b[H\x1b[2J";
    std::cout << "final report (" << stop_reason << ")\n";
    print_attach_text(std::cout, final_snapshot, pclntab, options.max_sites);
  }
  return 0;
}

}  // namespace goroscope

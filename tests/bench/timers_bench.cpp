// Overhead of timer tracking on a timer-churn workload: timerzoo's "churn N"
// (a select loop that arms a time.After on every iteration and never lets it
// fire), timed bare and then while `goroscope attach` follows the process
// with its default probes (goroutine create/exit plus the timer probes). The
// slowdown ratio is monitored / bare wall time for the same N, best of
// three each. Go 1.26 in both timer regimes: the go 1.19 module (old regime
// by DefaultGODEBUG) and the go 1.23 module (new regime); the probes are the
// same (time.newTimer entry and RET), the runtime's work differs. Needs root
// and the fixture matrix.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>

#include "tests/support/fixture_matrix.h"
#include "tests/support/goroscope_cli.h"
#include "tests/support/running_fixture.h"

namespace goroscope {
namespace {

constexpr int kIterations = 50000;

// Seconds for one "churn N" round trip, best of `rounds`.
double time_churn(testing::RunningFixture& target, int rounds) {
  double best = 1e9;
  for (int i = 0; i < rounds; i++) {
    auto t0 = std::chrono::steady_clock::now();
    if (!target.send("churn " + std::to_string(kIterations))) return -1;
    if (!target.wait_for_line("done churn " + std::to_string(kIterations), std::chrono::seconds(120))) return -1;
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

// `goroscope attach` until SIGINT, output discarded.
class Monitor {
 public:
  explicit Monitor(pid_t target) {
    int err[2];
    if (pipe2(err, O_CLOEXEC) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, 1);
      dup2(err[1], 2);
      const std::string& g = testing::goroscope_path();
      execl(g.c_str(), g.c_str(), "attach", "--pid", std::to_string(target).c_str(), "--format", "json", nullptr);
      _exit(127);
    }
    close(err[1]);
    err_ = err[0];
  }
  ~Monitor() {
    if (pid_ > 0) {
      kill(pid_, SIGINT);
      waitpid(pid_, nullptr, 0);
    }
    if (err_ >= 0) close(err_);
  }
  bool attached() {
    std::string text;
    char buf[512];
    for (int i = 0; i < 100; i++) {
      pollfd p{err_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      ssize_t n = read(err_, buf, sizeof buf);
      if (n <= 0) return false;
      text.append(buf, n);
      if (text.find("attached to PID") != std::string::npos) return true;
    }
    return false;
  }

 private:
  pid_t pid_ = -1;
  int err_ = -1;
};

void BM_TimerChurnSlowdown(benchmark::State& state, const std::string& fixture) {
  testing::FixtureBinary fx;
  for (const auto& b : testing::fixtures(fixture, "default"))
    if (b.go.rfind("go1.26.", 0) == 0) fx = b;
  testing::RunningFixture target(fx.path, {"-scenarios", "none"});
  if (!target.wait_for_line("ready", std::chrono::seconds(10))) {
    state.SkipWithError("fixture did not start");
    return;
  }
  double bare = 0, monitored = 0;
  for (auto _ : state) {
    bare = time_churn(target, 3);
    Monitor m(target.pid());
    if (!m.attached()) {
      state.SkipWithError("goroscope attach failed (root needed)");
      return;
    }
    monitored = time_churn(target, 3);
    state.SetIterationTime(monitored);
  }
  state.counters["bare_ms"] = bare * 1e3;
  state.counters["monitored_ms"] = monitored * 1e3;
  state.counters["slowdown_ratio"] = bare > 0 ? monitored / bare : 0;
  state.counters["us_per_timer_bare"] = bare * 1e6 / kIterations;
  state.counters["us_per_timer_monitored"] = monitored * 1e6 / kIterations;
}
BENCHMARK_CAPTURE(BM_TimerChurnSlowdown, old_regime_go119_module, std::string("timerzoo"))
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1);
BENCHMARK_CAPTURE(BM_TimerChurnSlowdown, new_regime_go123_module, std::string("timerzoo@go123"))
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1);

}  // namespace
}  // namespace goroscope

BENCHMARK_MAIN();

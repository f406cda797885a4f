// GoroutineProbes on live spawnexit processes of every Go version and build
// variant: creations and exits are counted exactly and attributed to the `go`
// statement (gopc symbolized through pclntab), park/ready carry the goid and
// the runtime's wait reason, hit counters match the events, and the target
// survives both the probes and its own death while they are attached.
#include "daemon/goroutine_census.h"
#include "daemon/goroutine_probes.h"

#include <elf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <sstream>

#include "symbols/go_binary.h"
#include "symbols/probe_points.h"
#include "tests/support/fixture_matrix.h"
#include "tests/support/privileges.h"
#include "tests/support/running_fixture.h"

namespace goroscope {
namespace {

using testing::FixtureBinary;
using Clock = std::chrono::steady_clock;

// The line of the comment `marker` in the fixture's source: the test learns
// where the `go` statement is from the source, not from goroscope.
int source_line(const std::string& marker) {
  std::ifstream in(std::string(GOROSCOPE_SOURCE_DIR) + "/tests/fixtures/spawnexit/main.go");
  std::string line;
  for (int n = 1; std::getline(in, line); n++)
    if (line.find("// " + marker) != std::string::npos) return n;
  return 0;
}

// Runtime address minus link-time address (PIE), as the engine computes it.
uint64_t load_bias(pid_t pid, const GoBinary& binary) {
  auto bias = read_load_bias(pid, binary.elf());
  if (!bias) ADD_FAILURE() << bias.error().message;
  return bias ? *bias : 0;
}

class GoroutineProbesTest : public ::testing::TestWithParam<FixtureBinary> {
 protected:
  void SetUp() override {
    auto bin = GoBinary::open(GetParam().path);
    ASSERT_TRUE(bin) << bin.error().message;
    binary_ = *bin;
    plan_ = resolve_probe_points(*binary_);
  }

  Result<std::unique_ptr<GoroutineProbes>> attach(pid_t pid, bool park_ready) {
    GoroutineProbeOptions options;
    options.park_ready = park_ready;
    return GoroutineProbes::attach(*binary_, plan_, "/proc/" + std::to_string(pid) + "/exe", pid, options);
  }

  // Polls into `events` until `done` holds or timeout_ms pass.
  static bool collect_until(GoroutineProbes& probes, std::vector<goroutine_event>& events,
                            const std::function<bool()>& done, int timeout_ms = 20000) {
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    GoroutineProbes::EventHandler keep = [&](const goroutine_event& e) { events.push_back(e); };
    while (!done()) {
      if (Clock::now() > deadline) return false;
      if (probes.poll(50, keep) < 0) return false;
    }
    return true;
  }

  // Drains until the ring buffer stays empty across a read of the hit
  // counters, so counters and events describe the same moment.
  static std::array<uint64_t, PROBE_COUNT> settle(GoroutineProbes& probes, std::vector<goroutine_event>& events) {
    GoroutineProbes::EventHandler keep = [&](const goroutine_event& e) { events.push_back(e); };
    for (int i = 0; i < 50; i++) {
      while (probes.poll(200, keep) > 0) {
      }
      auto hits = probes.probe_hits();
      if (probes.poll(0, keep) == 0) return hits;
    }
    ADD_FAILURE() << "the target never went quiet";
    return probes.probe_hits();
  }

  // The physical function and line of a return address (gopc and gopark's
  // caller are both the PC after a CALL: look up the CALL itself).
  std::pair<std::string, int> site_of(uint64_t runtime_pc, uint64_t bias) const {
    FuncInfo func;
    std::string_view file;
    int line = 0;
    if (!binary_->pclntab().pc_to_line(runtime_pc - bias - binary_->pclntab().min_lc(), &func, &file, &line))
      return {"?", 0};
    return {std::string(func.name), line};
  }

  std::string start_function(uint64_t runtime_pc, uint64_t bias) const {
    auto f = binary_->pclntab().find_func(runtime_pc - bias);
    return f && f->entry == runtime_pc - bias ? std::string(f->name) : "?";
  }

  // Whether the function entered at `start` (link-time) runs `callee`: it is
  // `callee`, or inlines it, or CALLs it. `go work(i, &wg)` starts a wrapper
  // the compiler makes for calls with arguments (main.main.func2 up to Go
  // 1.21, main.main.gowrap1 from 1.22, which inlines work), not work itself.
  bool starts_in(uint64_t start, std::string_view callee) const {
    auto f = binary_->pclntab().find_func(start);
    auto target = binary_->pclntab().func_by_name(callee);
    if (!f || !target || f->entry != start) return false;
    if (f->entry == target->entry) return true;
    auto code = binary_->elf().read_vaddr(f->entry, f->end - f->entry, "start function");
    if (!code) return false;
    for (uint64_t off = 0; off < code->size(); off++) {
      for (const auto& frame : binary_->pclntab().frames(f->entry + off))
        if (frame.function == callee) return true;
      // amd64 CALL rel32.
      if (code->u8(off) == 0xe8 && code->has(off + 1, 4) &&
          f->entry + off + 5 + static_cast<int64_t>(code->i32(off + 1)) == target->entry)
        return true;
    }
    return false;
  }

  std::shared_ptr<const GoBinary> binary_;
  ProbePlan plan_;
};

std::array<uint64_t, PROBE_COUNT> count_kinds(const std::vector<goroutine_event>& events) {
  std::array<uint64_t, PROBE_COUNT> n{};
  for (const auto& e : events) {
    if (e.kind == GOROUTINE_CREATE) n[PROBE_CREATE]++;
    if (e.kind == GOROUTINE_EXIT) n[PROBE_EXIT]++;
    if (e.kind == GOROUTINE_PARK) n[PROBE_PARK]++;
    if (e.kind == GOROUTINE_READY) n[PROBE_READY]++;
  }
  return n;
}

TEST_P(GoroutineProbesTest, CountsCreationsAndExitsAtTheGoStatement) {
  GOROSCOPE_REQUIRE_PRIVILEGES();
  const int spawn_line = source_line("SPAWN_SITE");
  ASSERT_GT(spawn_line, 0);
  testing::RunningFixture target(GetParam().path, {});
  ASSERT_TRUE(target.wait_for_line("ready", std::chrono::seconds(60)));
  auto probes = attach(target.pid(), false);
  ASSERT_TRUE(probes) << probes.error().message;
  const uint64_t bias = load_bias(target.pid(), *binary_);

  ASSERT_TRUE(target.send("spawn 500"));
  ASSERT_TRUE(target.wait_for_line("spawned 500", std::chrono::seconds(60)));
  // The last goroutines call wg.Done before they reach the exit probe, so
  // "spawned" can be printed before every exit event is out.
  std::vector<goroutine_event> events;
  std::set<uint64_t> spawned, exited;
  size_t seen = 0;
  auto classify = [&] {
    for (; seen < events.size(); seen++) {
      const auto& e = events[seen];
      if (e.kind == GOROUTINE_CREATE && site_of(e.pc, bias) == std::pair<std::string, int>{"main.main", spawn_line})
        spawned.insert(e.goid);
      if (e.kind == GOROUTINE_EXIT && spawned.count(e.goid)) exited.insert(e.goid);
    }
    return exited.size() == 500;
  };
  EXPECT_TRUE(collect_until(**probes, events, classify)) << exited.size() << " of 500 exits seen";
  auto hits = settle(**probes, events);
  classify();

  std::map<uint64_t, int> creates, exits;
  for (const auto& e : events) {
    EXPECT_EQ(e.pid, static_cast<uint32_t>(target.pid()));
    EXPECT_NE(e.ts_ns, 0u);
    if (e.kind == GOROUTINE_CREATE) {
      auto [function, line] = site_of(e.pc, bias);
      if (function != "main.main" || line != spawn_line) {
        // The runtime may start its own goroutines meanwhile (e.g. the GC
        // mark workers at the first GC); the program starts none elsewhere.
        EXPECT_EQ(function.rfind("runtime.", 0), 0u) << "unexpected creation at " << function << ":" << line;
        continue;
      }
      creates[e.goid]++;
      EXPECT_TRUE(starts_in(e.start_pc - bias, "main.work")) << "starts in " << start_function(e.start_pc, bias);
      EXPECT_EQ(e.parent_goid, 1u) << "created by goroutine " << e.parent_goid;
    }
    if (e.kind == GOROUTINE_EXIT && spawned.count(e.goid)) {
      exits[e.goid]++;
      // The exiting g still names its go statement and start function.
      EXPECT_EQ(site_of(e.pc, bias).second, spawn_line);
      EXPECT_TRUE(starts_in(e.start_pc - bias, "main.work"));
    }
  }
  EXPECT_EQ(creates.size(), 500u) << "distinct goids created at line " << spawn_line;
  for (const auto& [goid, n] : creates) EXPECT_EQ(n, 1) << "goid " << goid << " created " << n << " times";
  EXPECT_EQ(creates.count(1), 0u);
  EXPECT_EQ(exits.size(), 500u);
  for (const auto& [goid, n] : exits) EXPECT_EQ(n, 1) << "goid " << goid << " exited " << n << " times";
  for (const auto& [goid, n] : creates) EXPECT_TRUE(exits.count(goid)) << "goid " << goid << " never exited";

  auto kinds = count_kinds(events);
  EXPECT_EQ(hits, kinds) << "hit counters disagree with the events received";
  EXPECT_EQ(hits[PROBE_PARK], 0u) << "park probe attached without park_ready";
  EXPECT_EQ(hits[PROBE_READY], 0u) << "ready probe attached without park_ready";
  EXPECT_EQ((*probes)->lost_events(), 0u);

  ASSERT_TRUE(target.send("quit"));
  int status = target.wait_exit(std::chrono::seconds(10));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
}

TEST_P(GoroutineProbesTest, ParkAndReadyCarryGoidAndWaitReason) {
  GOROSCOPE_REQUIRE_PRIVILEGES();
  const int block_line = source_line("BLOCK_SITE");
  ASSERT_GT(block_line, 0);
  const int chan_receive = binary_->wait_reasons().value_of("chan receive");
  ASSERT_GE(chan_receive, 0);
  testing::RunningFixture target(GetParam().path, {});
  ASSERT_TRUE(target.wait_for_line("ready", std::chrono::seconds(60)));
  auto probes = attach(target.pid(), true);
  ASSERT_TRUE(probes) << probes.error().message;
  const uint64_t bias = load_bias(target.pid(), *binary_);

  std::vector<goroutine_event> events;
  std::set<uint64_t> blockers;
  std::map<uint64_t, int> parked, readied, exited;
  size_t seen = 0;
  auto classify = [&] {
    for (; seen < events.size(); seen++) {
      const auto& e = events[seen];
      if (e.kind == GOROUTINE_CREATE && site_of(e.pc, bias) == std::pair<std::string, int>{"main.main", block_line})
        blockers.insert(e.goid);
      if (!blockers.count(e.goid)) continue;
      if (e.kind == GOROUTINE_PARK) {
        parked[e.goid]++;
        EXPECT_EQ(binary_->wait_reasons().name(static_cast<uint8_t>(e.wait_reason)), "chan receive");
        EXPECT_EQ(e.wait_reason, static_cast<uint32_t>(chan_receive));
        // [RSP] after gopark's stack check is still its return address.
        EXPECT_EQ(site_of(e.pc, bias).first, "runtime.chanrecv");
      }
      if (e.kind == GOROUTINE_READY) readied[e.goid]++;
      if (e.kind == GOROUTINE_EXIT) exited[e.goid]++;
    }
  };

  ASSERT_TRUE(target.send("block 50"));
  ASSERT_TRUE(target.wait_for_line("blocked 50", std::chrono::seconds(60)));
  auto all_parked = [&] {
    classify();
    return parked.size() == 50;
  };
  EXPECT_TRUE(collect_until(**probes, events, all_parked)) << parked.size() << " of 50 parks seen";
  EXPECT_EQ(blockers.size(), 50u);
  EXPECT_TRUE(readied.empty()) << "a blocked goroutine was readied before release";

  ASSERT_TRUE(target.send("release"));
  ASSERT_TRUE(target.wait_for_line("released", std::chrono::seconds(60)));
  auto all_readied_and_exited = [&] {
    classify();
    return readied.size() == 50 && exited.size() == 50;
  };
  EXPECT_TRUE(collect_until(**probes, events, all_readied_and_exited))
      << readied.size() << " readies and " << exited.size() << " exits of 50 seen";
  auto hits = settle(**probes, events);
  classify();

  for (uint64_t g : blockers) {
    EXPECT_EQ(parked[g], 1) << "goid " << g;
    EXPECT_EQ(readied[g], 1) << "goid " << g;
    EXPECT_EQ(exited[g], 1) << "goid " << g;
  }
  EXPECT_EQ(hits, count_kinds(events)) << "hit counters disagree with the events received";
  EXPECT_EQ((*probes)->lost_events(), 0u);
  auto attached = (*probes)->attached_probes();
  EXPECT_EQ(attached.size(), 4u);

  ASSERT_TRUE(target.send("quit"));
  int status = target.wait_exit(std::chrono::seconds(10));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
}

// A probe point the plan cannot back is refused with a reason naming it,
// before anything is attached (so any pid will do).
TEST_P(GoroutineProbesTest, RefusesProbePointsThePlanCannotBack) {
  const char* exit_function = binary_->go_version().at_least(1, 22) ? "runtime.gdestroy" : "runtime.goexit0";
  auto refused = [&](ProbePlan plan, bool park_ready) {
    GoroutineProbeOptions options;
    options.park_ready = park_ready;
    auto r = GoroutineProbes::attach(*binary_, plan, GetParam().path, getpid(), options);
    return r ? std::string("attached") : r.error().message;
  };
  auto without = [&](const std::string& function) {
    ProbePlan plan = plan_;
    std::erase_if(plan.points, [&](const ProbePoint& p) { return p.function == function; });
    return plan;
  };
  auto changed = [&](const std::string& function, const std::function<void(ProbePoint&)>& change) {
    ProbePlan plan = plan_;
    for (auto& p : plan.points)
      if (p.function == function) change(p);
    return plan;
  };

  auto expect_refusal = [](const std::string& message, const std::string& reason) {
    EXPECT_NE(message.find(reason), std::string::npos) << "got: " << message;
  };
  expect_refusal(refused(without("runtime.newproc1"), false), "runtime.newproc1 is not in this binary");
  expect_refusal(refused(without(exit_function), false), std::string(exit_function) + " is not in this binary");
  auto unanalyzable = changed("runtime.newproc1", [](ProbePoint& p) { p.code_ok = false; });
  expect_refusal(refused(unanalyzable, false), "runtime.newproc1 could not be disassembled");
  auto no_ret = changed("runtime.newproc1", [](ProbePoint& p) { p.ret_file_offsets.clear(); });
  expect_refusal(refused(no_ret, false), "runtime.newproc1 has no RET");
  auto no_stack_check = changed("runtime.gopark", [](ProbePoint& p) { p.after_stack_check_file_offset.reset(); });
  expect_refusal(refused(no_stack_check, true), "runtime.gopark has no recognizable stack check");
  expect_refusal(refused(without("runtime.ready"), true), "runtime.ready is not in this binary");
}

TEST_P(GoroutineProbesTest, TargetDyingWhileAttachedIsHarmless) {
  GOROSCOPE_REQUIRE_PRIVILEGES();
  testing::RunningFixture target(GetParam().path, {});
  ASSERT_TRUE(target.wait_for_line("ready", std::chrono::seconds(60)));
  const pid_t pid = target.pid();
  auto probes = attach(pid, true);
  ASSERT_TRUE(probes) << probes.error().message;

  ASSERT_TRUE(target.send("spawn 100000"));
  std::vector<goroutine_event> events;
  ASSERT_TRUE(collect_until(**probes, events, [&] { return events.size() >= 1000; }));
  target.kill_and_reap();

  // poll keeps returning (nothing more arrives) instead of blocking.
  for (int i = 0; i < 3; i++) {
    auto start = Clock::now();
    int n = (*probes)->poll(100, [&](const goroutine_event& e) { events.push_back(e); });
    EXPECT_GE(n, 0);
    EXPECT_LT(Clock::now() - start, std::chrono::seconds(2));
  }
  EXPECT_EQ((*probes)->probe_hits()[PROBE_CREATE] + (*probes)->probe_hits()[PROBE_EXIT] +
                (*probes)->probe_hits()[PROBE_PARK] + (*probes)->probe_hits()[PROBE_READY],
            events.size() + (*probes)->lost_events());
  probes->reset();

  // The process is gone: attaching again fails with a reason.
  auto again = attach(pid, true);
  ASSERT_FALSE(again);
  EXPECT_FALSE(again.error().message.empty());
}

TEST_P(GoroutineProbesTest, TargetKeepsWorkingAfterDetach) {
  GOROSCOPE_REQUIRE_PRIVILEGES();
  testing::RunningFixture target(GetParam().path, {});
  ASSERT_TRUE(target.wait_for_line("ready", std::chrono::seconds(60)));
  {
    auto probes = attach(target.pid(), true);
    ASSERT_TRUE(probes) << probes.error().message;
    ASSERT_TRUE(target.send("spawn 2000"));
    ASSERT_TRUE(target.wait_for_line("spawned 2000", std::chrono::seconds(60)));
    ASSERT_TRUE(target.send("block 10"));
    ASSERT_TRUE(target.wait_for_line("blocked 10", std::chrono::seconds(60)));
    ASSERT_TRUE(target.send("release"));
    ASSERT_TRUE(target.wait_for_line("released", std::chrono::seconds(60)));
  }
  ASSERT_TRUE(target.send("spawn 10"));
  ASSERT_TRUE(target.wait_for_line("spawned 10", std::chrono::seconds(60)));
  ASSERT_TRUE(target.send("quit"));
  int status = target.wait_exit(std::chrono::seconds(10));
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
}

INSTANTIATE_TEST_SUITE_P(Matrix, GoroutineProbesTest, ::testing::ValuesIn(testing::runnable_builds("spawnexit")),
                         testing::build_name);

}  // namespace
}  // namespace goroscope

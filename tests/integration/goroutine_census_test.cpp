// The census against the startupleak fixture, every Go version and build
// variant: it leaks a known number of goroutines at known source lines before
// anything could attach, so the census must find exactly those, with the
// runtime's state and wait reason, and walk each one's stack to the line it
// blocks on. Expected lines come from the fixture's marker comments, never
// from our own output.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include "daemon/goroutine_census.h"
#include "symbols/go_binary.h"
#include "tests/support/fixture_matrix.h"
#include "tests/support/privileges.h"
#include "tests/support/running_fixture.h"

namespace goroscope {
namespace testing {
// Test names and failures show the build, not a byte dump.
void PrintTo(const FixtureBinary& b, std::ostream* os) { *os << b.label(); }
}  // namespace testing

namespace {

using namespace std::chrono_literals;
using testing::FixtureBinary;
using testing::RunningFixture;

constexpr int kSenders = 3000;
constexpr int kSelects = 700;

const std::string kSource = std::string(GOROSCOPE_SOURCE_DIR) + "/tests/fixtures/startupleak/main.go";

std::vector<std::string> source_lines() {
  std::ifstream in(kSource);
  if (!in) throw std::runtime_error("cannot read " + kSource);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The line (1-based) of main.go carrying `// MARKER`.
int marker_line(const std::string& marker) {
  const std::vector<std::string> lines = source_lines();
  const std::string tag = "// " + marker;
  int found = 0;
  for (size_t i = 0; i < lines.size(); i++) {
    size_t at = lines[i].find(tag);
    if (at == std::string::npos) continue;
    size_t end = at + tag.size();
    if (end < lines[i].size() && (isalnum(static_cast<unsigned char>(lines[i][end])) || lines[i][end] == '_')) continue;
    if (found) throw std::runtime_error(marker + " appears twice in " + kSource);
    found = static_cast<int>(i) + 1;
  }
  if (!found) throw std::runtime_error(marker + " not in " + kSource);
  return found;
}

// The line of the `go` statement a site marker belongs to. Go attributes
// the creation PC to the line of the `go` keyword (its own traceback prints
// "created by main.leakSenders ... main.go:<that line>"), while a marker may
// sit on the line that closes the statement, `}(i) // SEND_SITE`.
int go_statement_line(const std::string& marker) {
  const std::vector<std::string> lines = source_lines();
  for (int n = marker_line(marker); n >= 1; n--) {
    std::string_view l = lines[n - 1];
    l.remove_prefix(std::min(l.find_first_not_of(" \t"), l.size()));
    if (l.starts_with("go ")) return n;
  }
  throw std::runtime_error("no go statement at or above " + marker + " in " + kSource);
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// The source line of a return address as Go's traceback would name it (the
// innermost inlined frame at pc-1), or 0 if it is not in main.go.
int line_in_main_go(const Pclntab& pcln, uint64_t return_pc) {
  if (return_pc == 0) return 0;
  auto frames = pcln.frames(return_pc - 1);
  if (frames.empty() || !ends_with(frames.front().file, "startupleak/main.go")) return 0;
  return frames.front().line;
}

std::string describe(const GoBinary& bin, const GoroutineRecord& r) {
  std::ostringstream o;
  o << "goid " << r.goid << " status " << r.status << " (" << bin.wait_reasons().name(r.wait_reason) << ") gopc 0x"
    << std::hex << r.gopc << " block_pc 0x" << r.block_pc << std::dec;
  for (const auto& f : bin.pclntab().frames(r.block_pc ? r.block_pc - 1 : 0))
    o << " [" << f.function << " " << f.file << ":" << f.line << "]";
  return o.str();
}

class GoroutineCensusTest : public ::testing::TestWithParam<FixtureBinary> {};

TEST_P(GoroutineCensusTest, FindsEveryLeakedGoroutineWithStateAndBlockingLine) {
  GOROSCOPE_REQUIRE_PRIVILEGES();
  const FixtureBinary& fx = GetParam();
  auto bin = GoBinary::open(fx.path);
  ASSERT_TRUE(bin) << bin.error().message;
  const GoBinary& b = **bin;

  struct Site {
    int site_line, block_line;
    std::string reason;
    int expected;
  };
  const std::map<std::string, Site> sites = {
      {"send", {go_statement_line("SEND_SITE"), marker_line("SEND_BLOCK"), "chan send", kSenders}},
      {"select", {go_statement_line("SELECT_SITE"), marker_line("SELECT_BLOCK"), "select", kSelects}},
  };

  RunningFixture proc(fx.path, {"-senders", std::to_string(kSenders), "-selects", std::to_string(kSelects)});
  ASSERT_TRUE(proc.wait_for_line("ready", 60s)) << fx.label() << " never printed ready";

  auto census = GoroutineCensus::open(proc.pid(), *bin);
  ASSERT_TRUE(census) << census.error().message;
  if (b.pie()) {
    EXPECT_NE((*census)->load_bias(), 0u);
    EXPECT_EQ((*census)->load_bias() % 4096, 0u);
  } else {
    EXPECT_EQ((*census)->load_bias(), 0u);
  }
  if (auto sym = b.elf().symbol("runtime.allgs")) {
    EXPECT_EQ((*census)->allgs_address(), sym->value);
  }

  // "ready" means the `go` statements ran, not that every goroutine has
  // reached its channel operation yet: until then one is runnable at its
  // entry, or running. Take snapshots until all are parked (or time is up;
  // then the last one is judged).
  struct Tally {
    std::map<std::string, int> found, good;
    std::vector<std::string> bad;
    bool main_goroutine = false;
  };
  auto tally = [&](const std::vector<GoroutineRecord>& snap) {
    Tally t;
    for (const GoroutineRecord& r : snap) {
      if (r.goid == 1) t.main_goroutine = true;
      int line = line_in_main_go(b.pclntab(), r.gopc);
      for (const auto& [name, site] : sites) {
        if (line != site.site_line) continue;
        t.found[name]++;
        // Created by main (goid 1; the field exists from Go 1.21), starting
        // at the entry of a function of package main.
        auto start = b.pclntab().find_func(r.start_pc);
        bool ok = r.status == uint32_t(GStatus::Waiting) && b.wait_reasons().name(r.wait_reason) == site.reason &&
                  line_in_main_go(b.pclntab(), r.block_pc) == site.block_line &&
                  r.parent_goid == (b.go_version().minor >= 21 ? 1u : 0u) && start && start->entry == r.start_pc &&
                  start->name.starts_with("main.");
        if (ok) {
          t.good[name]++;
        } else if (t.bad.size() < 5) {
          t.bad.push_back(name + ": " + describe(b, r));
        }
      }
    }
    return t;
  };
  Tally t;
  for (auto deadline = std::chrono::steady_clock::now() + 10s;;) {
    CensusStats stats;
    auto snap = (*census)->snapshot(&stats);
    ASSERT_TRUE(snap) << snap.error().message;
    EXPECT_EQ(stats.live, snap->size());
    EXPECT_GE(stats.allglen, stats.live);
    for (const GoroutineRecord& r : *snap) ASSERT_NE(r.status, uint32_t(GStatus::Dead));
    t = tally(*snap);
    bool settled = true;
    for (const auto& [name, site] : sites) settled &= t.good[name] == site.expected;
    if (settled || std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(20ms);
  }

  EXPECT_TRUE(t.main_goroutine) << "no goroutine with goid 1";
  for (const auto& [name, site] : sites) {
    EXPECT_EQ(t.found[name], site.expected) << name << " goroutines created at main.go:" << site.site_line;
    EXPECT_EQ(t.good[name], site.expected) << name << " goroutines waiting with \"" << site.reason
                                           << "\" blocked at main.go:" << site.block_line;
  }
  for (const auto& s : t.bad) ADD_FAILURE() << s;
}

class GoroutineCensusExitTest : public ::testing::TestWithParam<FixtureBinary> {};

TEST_P(GoroutineCensusExitTest, ProcessThatExitedGivesIoError) {
  GOROSCOPE_REQUIRE_PRIVILEGES();
  const FixtureBinary& fx = GetParam();
  auto bin = GoBinary::open(fx.path);
  ASSERT_TRUE(bin) << bin.error().message;
  RunningFixture proc(fx.path, {"-senders", "10", "-selects", "10"});
  ASSERT_TRUE(proc.wait_for_line("ready", 60s));
  const pid_t pid = proc.pid();
  auto census = GoroutineCensus::open(pid, *bin);
  ASSERT_TRUE(census) << census.error().message;
  ASSERT_TRUE((*census)->snapshot());

  proc.kill_and_reap();
  auto snap = (*census)->snapshot();
  ASSERT_FALSE(snap);
  EXPECT_EQ(snap.error().kind, ErrorKind::Io);
  EXPECT_NE(snap.error().message.find("exited"), std::string::npos) << snap.error().message;

  auto reopened = GoroutineCensus::open(pid, *bin);
  ASSERT_FALSE(reopened);
  EXPECT_EQ(reopened.error().kind, ErrorKind::Io) << reopened.error().message;
}

std::vector<FixtureBinary> runnable_startupleak() {
  std::vector<FixtureBinary> out;
  for (const auto& b : testing::fixtures("startupleak"))
    if (b.runnable()) out.push_back(b);
  return out;
}

std::string build_name(const ::testing::TestParamInfo<FixtureBinary>& info) {
  std::string n = info.param.go + "_" + info.param.variant;
  for (char& c : n)
    if (!isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
}

INSTANTIATE_TEST_SUITE_P(GoroutineCensus, GoroutineCensusTest, ::testing::ValuesIn(runnable_startupleak()), build_name);
// Losing the process is independent of how the binary was linked.
INSTANTIATE_TEST_SUITE_P(GoroutineCensus, GoroutineCensusExitTest,
                         ::testing::ValuesIn(testing::fixtures("startupleak", "default")), build_name);

}  // namespace
}  // namespace goroscope

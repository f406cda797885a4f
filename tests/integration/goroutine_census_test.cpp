// The census against real Go programs, every Go version and build variant
// (default, stripped, PIE). startupleak leaks a known number of goroutines at
// known source lines before anything could attach, so the census must find
// exactly those, with the runtime's state and wait reason, and walk each
// one's stack to the line it blocks on. mutexcontention blocks in
// sync.(*Mutex).Lock, which is inlined into the caller. Expected lines come
// from the fixtures' marker comments, never from our own output.
#include "daemon/goroutine_census.h"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <thread>

#include "symbols/go_binary.h"
#include "tests/support/fixture_matrix.h"
#include "tests/support/privileges.h"
#include "tests/support/running_fixture.h"

namespace goroscope {
namespace {

using namespace std::chrono_literals;
using testing::FixtureBinary;
using testing::RunningFixture;

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// A fixture's main.go, for the lines its marker comments name.
class FixtureSource {
 public:
  explicit FixtureSource(const std::string& fixture)
      : suffix_(fixture + "/main.go"), path_(std::string(GOROSCOPE_SOURCE_DIR) + "/tests/fixtures/" + suffix_) {
    std::ifstream in(path_);
    if (!in) throw std::runtime_error("cannot read " + path_);
    for (std::string line; std::getline(in, line);) lines_.push_back(line);
  }

  // The one line (1-based) carrying `// MARKER`.
  int marker_line(const std::string& marker) const {
    const std::string tag = "// " + marker;
    int found = 0;
    for (size_t i = 0; i < lines_.size(); i++) {
      size_t at = lines_[i].find(tag);
      if (at == std::string::npos) continue;
      size_t end = at + tag.size();
      if (end < lines_[i].size() && (isalnum(static_cast<unsigned char>(lines_[i][end])) || lines_[i][end] == '_'))
        continue;
      if (found) throw std::runtime_error(marker + " appears twice in " + path_);
      found = static_cast<int>(i) + 1;
    }
    if (!found) throw std::runtime_error(marker + " not in " + path_);
    return found;
  }

  // The line of the `go` statement a site marker belongs to. Go attributes
  // the creation PC to the line of the `go` keyword (its own traceback prints
  // "created by main.leakSenders ... main.go:<that line>"), while a marker
  // may sit on the line that closes the statement, `}(i) // SEND_SITE`.
  int go_statement_line(const std::string& marker) const {
    for (int n = marker_line(marker); n >= 1; n--) {
      std::string_view l = lines_[n - 1];
      l.remove_prefix(std::min(l.find_first_not_of(" \t"), l.size()));
      if (l.starts_with("go ")) return n;
    }
    throw std::runtime_error("no go statement at or above " + marker + " in " + path_);
  }

  // The one line containing `text`.
  int line_containing(const std::string& text) const {
    int found = 0;
    for (size_t i = 0; i < lines_.size(); i++) {
      if (lines_[i].find(text) == std::string::npos) continue;
      if (found) throw std::runtime_error("\"" + text + "\" appears twice in " + path_);
      found = static_cast<int>(i) + 1;
    }
    if (!found) throw std::runtime_error("\"" + text + "\" not in " + path_);
    return found;
  }

  // The line of a frame if it is in this main.go, else 0.
  int line_of(const SourceFrame& f) const { return ends_with(f.file, suffix_) ? f.line : 0; }

 private:
  std::string suffix_, path_;
  std::vector<std::string> lines_;
};

// A return address (gopc, block_pc) as Go's traceback names it: the
// innermost inlined frame at pc-1.
SourceFrame innermost_frame(const Pclntab& pcln, uint64_t return_pc) {
  if (return_pc == 0) return {};
  auto frames = pcln.frames(return_pc - 1);
  return frames.empty() ? SourceFrame{} : frames.front();
}

std::string describe(const GoBinary& bin, const GoroutineRecord& r) {
  std::ostringstream o;
  o << "goid " << r.goid << " status " << r.status << " (" << bin.wait_reasons().name(r.wait_reason) << ") gopc 0x"
    << std::hex << r.gopc << " block_pc 0x" << r.block_pc << std::dec;
  for (const auto& f : bin.pclntab().frames(r.block_pc ? r.block_pc - 1 : 0))
    o << " [" << f.function << " " << f.file << ":" << f.line << "]";
  return o.str();
}

std::unique_ptr<GoroutineCensus> open_census(pid_t pid, const std::shared_ptr<const GoBinary>& bin) {
  auto census = GoroutineCensus::open(pid, bin);
  EXPECT_TRUE(census) << census.error().message;
  if (!census) return nullptr;
  if (bin->pie()) {
    EXPECT_NE((*census)->load_bias(), 0u);
    EXPECT_EQ((*census)->load_bias() % 4096, 0u);
  } else {
    EXPECT_EQ((*census)->load_bias(), 0u);
  }
  if (auto sym = bin->elf().symbol("runtime.allgs")) {
    EXPECT_EQ((*census)->allgs_address(), sym->value);
  }
  return std::move(census.value());
}

// Snapshots until `settled` accepts one (or 10 s pass; then the last one is
// judged): a fixture's "ready" means its `go` statements ran, not that every
// goroutine has reached its blocking call yet — until then one is runnable
// at its entry, or running.
template <typename Tally>
Tally settle(GoroutineCensus& census, const std::function<Tally(const std::vector<GoroutineRecord>&)>& tally,
             const std::function<bool(const Tally&)>& settled) {
  Tally t;
  for (auto deadline = std::chrono::steady_clock::now() + 10s;;) {
    CensusStats stats;
    auto snap = census.snapshot(&stats);
    EXPECT_TRUE(snap) << snap.error().message;
    if (!snap) return t;
    EXPECT_EQ(stats.live, snap->size());
    EXPECT_GE(stats.allglen, stats.live);
    for (const GoroutineRecord& r : *snap) EXPECT_NE(r.status, uint32_t(GStatus::Dead));
    t = tally(*snap);
    if (settled(t) || std::chrono::steady_clock::now() > deadline) return t;
    std::this_thread::sleep_for(20ms);
  }
}

class GoroutineCensusTest : public ::testing::TestWithParam<FixtureBinary> {};

TEST_P(GoroutineCensusTest, FindsEveryLeakedGoroutineWithStateAndBlockingLine) {
  GOROSCOPE_REQUIRE_PRIVILEGES();
  constexpr int kSenders = 3000, kSelects = 700;
  const FixtureBinary& fx = GetParam();
  auto bin = GoBinary::open(fx.path);
  ASSERT_TRUE(bin) << bin.error().message;
  const GoBinary& b = **bin;
  const FixtureSource src("startupleak");

  struct Site {
    int site_line, block_line;
    std::string reason;
    int expected;
  };
  const std::map<std::string, Site> sites = {
      {"send", {src.go_statement_line("SEND_SITE"), src.marker_line("SEND_BLOCK"), "chan send", kSenders}},
      {"select", {src.go_statement_line("SELECT_SITE"), src.marker_line("SELECT_BLOCK"), "select", kSelects}},
  };
  const int main_sleep_line = src.line_containing("time.Sleep(");

  RunningFixture proc(fx.path, {"-senders", std::to_string(kSenders), "-selects", std::to_string(kSelects)});
  ASSERT_TRUE(proc.wait_for_line("ready", 60s)) << fx.label() << " never printed ready";
  auto census = open_census(proc.pid(), *bin);
  ASSERT_TRUE(census);

  struct Tally {
    std::map<std::string, int> found, good;
    std::vector<std::string> bad;
    bool main_goroutine = false, main_asleep = false;
  };
  std::function<Tally(const std::vector<GoroutineRecord>&)> tally = [&](const std::vector<GoroutineRecord>& snap) {
    Tally t;
    for (const GoroutineRecord& r : snap) {
      if (r.goid == 1) {
        // main sleeps in time.Sleep: the walk passes through package time.
        t.main_goroutine = true;
        t.main_asleep = r.status == uint32_t(GStatus::Waiting) && b.wait_reasons().name(r.wait_reason) == "sleep" &&
                        src.line_of(blocking_frame(b.pclntab(), r.block_pc)) == main_sleep_line;
      }
      const int line = src.line_of(innermost_frame(b.pclntab(), r.gopc));
      for (const auto& [name, site] : sites) {
        if (line != site.site_line) continue;
        t.found[name]++;
        // Parked where the marker says, created by main (goid 1; the field
        // exists from Go 1.21), starting at the entry of a function of main.
        auto start = b.pclntab().find_func(r.start_pc);
        bool ok = r.status == uint32_t(GStatus::Waiting) && b.wait_reasons().name(r.wait_reason) == site.reason &&
                  src.line_of(innermost_frame(b.pclntab(), r.block_pc)) == site.block_line &&
                  src.line_of(blocking_frame(b.pclntab(), r.block_pc)) == site.block_line &&
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
  std::function<bool(const Tally&)> settled = [&](const Tally& t) {
    bool all = t.main_asleep;
    for (const auto& [name, site] : sites) all &= t.good.count(name) && t.good.at(name) == site.expected;
    return all;
  };
  Tally t = settle(*census, tally, settled);

  EXPECT_TRUE(t.main_goroutine) << "no goroutine with goid 1";
  EXPECT_TRUE(t.main_asleep) << "goid 1 is not asleep at main.go:" << main_sleep_line;
  for (const auto& [name, site] : sites) {
    EXPECT_EQ(t.found[name], site.expected) << name << " goroutines created at main.go:" << site.site_line;
    EXPECT_EQ(t.good[name], site.expected)
        << name << " goroutines waiting with \"" << site.reason << "\" blocked at main.go:" << site.block_line;
  }
  for (const auto& s : t.bad) ADD_FAILURE() << s;
}

INSTANTIATE_TEST_SUITE_P(GoroutineCensus, GoroutineCensusTest, ::testing::ValuesIn(testing::runnable_builds("startupleak")),
                         testing::build_name);

class GoroutineCensusMutexTest : public ::testing::TestWithParam<FixtureBinary> {};

// sync.(*Mutex).Lock is inlined into the caller (and from Go 1.24 calls
// internal/sync's Lock, itself inlined), so the physical frame the walk
// stops at holds sync frames innermost; blocking_frame skips them.
TEST_P(GoroutineCensusMutexTest, LockWaitersBlockAtTheirLockCall) {
  GOROSCOPE_REQUIRE_PRIVILEGES();
  constexpr int kGoroutines = 16;
  const FixtureBinary& fx = GetParam();
  auto bin = GoBinary::open(fx.path);
  ASSERT_TRUE(bin) << bin.error().message;
  const GoBinary& b = **bin;
  const FixtureSource src("mutexcontention");
  const int site_line = src.go_statement_line("LOCK_SITE"), block_line = src.marker_line("LOCK_BLOCK");
  // The runtime says "sync.Mutex.Lock" from Go 1.20; before, "semacquire".
  const std::string reason = b.go_version().minor >= 20 ? "sync.Mutex.Lock" : "semacquire";

  RunningFixture proc(fx.path, {"-goroutines", std::to_string(kGoroutines)});
  ASSERT_TRUE(proc.wait_for_line("ready", 60s)) << fx.label() << " never printed ready";
  auto census = open_census(proc.pid(), *bin);
  ASSERT_TRUE(census);

  // The goroutines keep moving (lock, sleep, unlock), and the census reads a
  // g and its stack at two moments: one that woke in between has a stack
  // that no longer matches (its walk then fails, block_pc 0; about 1 in
  // 5,000 here). Judge a snapshot in which several wait for the lock and
  // none raced.
  struct Tally {
    int at_site = 0, waiting_for_lock = 0, at_lock_line = 0;
    std::vector<std::string> bad;
  };
  std::function<Tally(const std::vector<GoroutineRecord>&)> tally = [&](const std::vector<GoroutineRecord>& snap) {
    Tally t;
    for (const GoroutineRecord& r : snap) {
      if (src.line_of(innermost_frame(b.pclntab(), r.gopc)) != site_line) continue;
      t.at_site++;
      if (r.status != uint32_t(GStatus::Waiting) || b.wait_reasons().name(r.wait_reason) != reason) continue;
      t.waiting_for_lock++;
      if (src.line_of(blocking_frame(b.pclntab(), r.block_pc)) == block_line) {
        t.at_lock_line++;
      } else if (t.bad.size() < 5) {
        t.bad.push_back(describe(b, r));
      }
    }
    return t;
  };
  std::function<bool(const Tally&)> settled = [](const Tally& t) {
    return t.waiting_for_lock >= kGoroutines / 2 && t.at_lock_line == t.waiting_for_lock;
  };
  Tally t = settle(*census, tally, settled);

  EXPECT_EQ(t.at_site, kGoroutines);
  EXPECT_GE(t.waiting_for_lock, kGoroutines / 2);
  EXPECT_EQ(t.at_lock_line, t.waiting_for_lock) << "lock waiters blocked at main.go:" << block_line;
  for (const auto& s : t.bad) ADD_FAILURE() << s;
}

INSTANTIATE_TEST_SUITE_P(GoroutineCensus, GoroutineCensusMutexTest, ::testing::ValuesIn(testing::runnable_builds("mutexcontention")),
                         testing::build_name);

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

// Losing the process is independent of how the binary was linked.
INSTANTIATE_TEST_SUITE_P(GoroutineCensus, GoroutineCensusExitTest,
                         ::testing::ValuesIn(testing::fixtures("startupleak", "default")), testing::build_name);

}  // namespace
}  // namespace goroscope

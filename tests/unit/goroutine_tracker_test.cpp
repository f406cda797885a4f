// The tracker's reconciliation of census and events, and the leak verdicts,
// on scripted streams: what a real attach sees, in the orders it sees it.
#include <gtest/gtest.h>

#include "daemon/goroutine_tracker.h"
#include "daemon/leak_detector.h"

namespace goroscope {
namespace {

constexpr uint64_t kSec = 1'000'000'000;
constexpr uint8_t kChanSend = 1, kChanReceive = 2;
const std::vector<std::string> kReasons = {"", "chan send", "chan receive"};

GoroutineRecord waiting(uint64_t goid, uint64_t gopc, uint8_t reason, uint64_t block_pc = 0x999) {
  GoroutineRecord r;
  r.goid = goid;
  r.gopc = gopc;
  r.start_pc = gopc + 0x1000;
  r.status = static_cast<uint32_t>(GStatus::Waiting);
  r.wait_reason = reason;
  r.block_pc = block_pc;
  return r;
}

const SiteStats& site(const std::vector<SiteStats>& sites, uint64_t gopc) {
  for (const auto& s : sites)
    if (s.gopc == gopc) return s;
  throw std::runtime_error("no site");
}

TEST(GoroutineTracker, CensusSeesGoroutinesFromBeforeAttach) {
  GoroutineTracker t(kReasons);
  std::vector<GoroutineRecord> census;
  for (uint64_t g = 10; g < 110; g++) census.push_back(waiting(g, 0x100, kChanSend));
  census.push_back(waiting(1, 0x200, kChanReceive));
  t.on_census(census, 1 * kSec, 1 * kSec + 1000);
  auto sites = t.sites(5 * kSec);
  EXPECT_EQ(t.live(), 101u);
  EXPECT_EQ(site(sites, 0x100).live, 100u);
  EXPECT_EQ(site(sites, 0x100).seen_before_attach, 100u);
  EXPECT_EQ(site(sites, 0x100).created_total, 0u);
  EXPECT_EQ(site(sites, 0x100).states.at("chan send"), 100u);
  EXPECT_EQ(site(sites, 0x100).block_pcs.at(0x999), 100u);
  EXPECT_DOUBLE_EQ(site(sites, 0x100).max_blocked_seconds, 4.0);
}

TEST(GoroutineTracker, EventsCountCreationsExitsAndLifetimes) {
  GoroutineTracker t(kReasons);
  t.on_census({}, 1 * kSec, 1 * kSec);
  for (uint64_t g = 100; g < 150; g++) t.on_create(g, 1, 0x300, 0x4000, 2 * kSec);
  for (uint64_t g = 100; g < 140; g++) t.on_exit(g, 0x300, 0x4000, 2 * kSec + 5'000'000);  // 5 ms each
  auto sites = t.sites(3 * kSec);
  const SiteStats& s = site(sites, 0x300);
  EXPECT_EQ(s.created_total, 50u);
  EXPECT_EQ(s.exited_total, 40u);
  EXPECT_EQ(s.live, 10u);
  EXPECT_EQ(s.lifetimes.count, 40u);
  EXPECT_NEAR(s.lifetimes.sum_seconds, 40 * 0.005, 1e-9);
  EXPECT_EQ(t.created_total(), 50u);
  EXPECT_EQ(t.exited_total(), 40u);
}

TEST(GoroutineTracker, CensusAndEventsReconcileByGoid) {
  GoroutineTracker t(kReasons);
  // A creation the census also lists (event processed after the census
  // read it) is one goroutine, not two.
  t.on_census({waiting(7, 0x100, kChanSend)}, 1 * kSec, 1 * kSec);
  t.on_create(7, 1, 0x100, 0x1100, 1 * kSec - 10);
  EXPECT_EQ(t.live(), 1u);
  // An exit whose event was lost: the next census drops it and counts it.
  t.on_create(8, 1, 0x100, 0x1100, 2 * kSec);
  t.on_census({waiting(7, 0x100, kChanSend)}, 3 * kSec, 3 * kSec);
  EXPECT_EQ(t.live(), 1u);
  EXPECT_EQ(site(t.sites(3 * kSec), 0x100).exited_total, 1u);
  // ...and its late exit event does not count it twice.
  t.on_exit(8, 0x100, 0x1100, 3 * kSec + 1);
  EXPECT_EQ(site(t.sites(3 * kSec), 0x100).exited_total, 1u);
  // A goroutine created after the census started is not dropped by it.
  t.on_create(9, 1, 0x100, 0x1100, 4 * kSec + 5);
  t.on_census({waiting(7, 0x100, kChanSend)}, 4 * kSec, 4 * kSec + 10);
  EXPECT_EQ(t.live(), 2u);
}

TEST(GoroutineTracker, BlockDurationFollowsTheSameBlock) {
  GoroutineTracker t(kReasons);
  t.on_census({waiting(5, 0x100, kChanSend, 0xa)}, 10 * kSec, 10 * kSec);
  t.on_census({waiting(5, 0x100, kChanSend, 0xa)}, 20 * kSec, 20 * kSec);
  EXPECT_DOUBLE_EQ(site(t.sites(30 * kSec), 0x100).max_blocked_seconds, 20.0);
  // Blocked somewhere else now: a new block.
  t.on_census({waiting(5, 0x100, kChanReceive, 0xb)}, 25 * kSec, 25 * kSec);
  EXPECT_DOUBLE_EQ(site(t.sites(30 * kSec), 0x100).max_blocked_seconds, 5.0);
  // The GC's waitsince bounds a block from before the first census.
  GoroutineTracker u(kReasons);
  GoroutineRecord r = waiting(6, 0x100, kChanSend);
  r.wait_since = 2 * kSec;
  u.on_census({r}, 10 * kSec, 10 * kSec);
  EXPECT_DOUBLE_EQ(site(u.sites(12 * kSec), 0x100).max_blocked_seconds, 10.0);
}

TEST(GoroutineTracker, TrackingIsBounded) {
  GoroutineTracker t(kReasons, TrackerLimits{100});
  for (uint64_t g = 1; g <= 150; g++) t.on_create(g, 0, 0x100, 0x1100, kSec);
  EXPECT_EQ(t.live(), 150u);
  EXPECT_EQ(t.untracked(), 50u);
  EXPECT_EQ(t.created_total(), 150u);
}

// Feeds the detector one census a second: `live(i)` goroutines at one site,
// all blocked, `exits(i)` exited so far.
std::vector<LeakVerdict> run_detector(LeakPolicy policy, int seconds, const std::function<uint64_t(int)>& live,
                                      double blocked_fraction = 1.0, const std::function<uint64_t(int)>& exits = nullptr) {
  LeakDetector d(policy);
  std::vector<LeakVerdict> v;
  for (int i = 0; i <= seconds; i++) {
    SiteStats s;
    s.gopc = 0x100;
    s.live = live(i);
    s.blocked = uint64_t(double(s.live) * blocked_fraction);
    s.states["chan send"] = s.blocked;
    s.exited_total = exits ? exits(i) : 0;
    s.max_blocked_seconds = i;
    s.oldest_seconds = i;
    d.observe(uint64_t(i) * kSec, {s});
    v = d.verdicts(uint64_t(i) * kSec, {s});
  }
  return v;
}

TEST(LeakDetector, SteadyGrowthOfBlockedGoroutinesIsALeak) {
  LeakPolicy p;
  p.window_seconds = 10;
  auto v = run_detector(p, 15, [](int i) { return uint64_t(20 + 4 * i); });
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].kind, "growing");
  EXPECT_EQ(v[0].count, 80u);
  EXPECT_NEAR(v[0].growth_per_second, 4.0, 1e-9);
  EXPECT_NE(v[0].reason.find("+40"), std::string::npos) << v[0].reason;
  EXPECT_NE(v[0].reason.find("chan send"), std::string::npos) << v[0].reason;
}

TEST(LeakDetector, NotBeforeTheWindowHasPassed) {
  LeakPolicy p;
  p.window_seconds = 30;
  EXPECT_TRUE(run_detector(p, 20, [](int i) { return uint64_t(20 + 4 * i); }).empty());
}

TEST(LeakDetector, FixedIdlePoolIsNotALeak) {
  LeakPolicy p;
  p.window_seconds = 10;
  EXPECT_TRUE(run_detector(p, 30, [](int) { return uint64_t(64); }).empty());
}

TEST(LeakDetector, GrowthOfRunningGoroutinesIsNotALeak) {
  LeakPolicy p;
  p.window_seconds = 10;
  EXPECT_TRUE(run_detector(p, 15, [](int i) { return uint64_t(20 + 4 * i); }, 0.3).empty());
}

TEST(LeakDetector, SawtoothOfShortLivedWorkIsNotALeak) {
  LeakPolicy p;
  p.window_seconds = 10;
  // Bursts that drain: up 30, down to 5, repeatedly.
  EXPECT_TRUE(run_detector(p, 30, [](int i) { return uint64_t(i % 2 ? 35 : 5); }).empty());
}

TEST(LeakDetector, QuietBlockedPopulationBecomesStuck) {
  LeakPolicy p;
  p.window_seconds = 10;
  p.stuck_min = 1000;
  p.stuck_seconds = 20;
  auto v = run_detector(p, 25, [](int) { return uint64_t(5000); });
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].kind, "stuck");
  EXPECT_EQ(v[0].count, 5000u);
  // Exits during the span: not stuck.
  EXPECT_TRUE(run_detector(p, 25, [](int) { return uint64_t(5000); }, 1.0, [](int i) { return uint64_t(i); }).empty());
  // Too few to call: not stuck.
  EXPECT_TRUE(run_detector(p, 25, [](int) { return uint64_t(50); }).empty());
}

}  // namespace
}  // namespace goroscope

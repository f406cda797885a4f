// TimerTracker and the regime decision against synthetic event streams: no
// privileges, no target. Sites resolve through a real fixture binary's
// pclntab; the streams here use return addresses outside any function, so
// every timer lands on the "created before attach" site of its kind —
// what matters is the bookkeeping and the regime-dependent verdicts.
#include "daemon/timer_tracker.h"

#include <gtest/gtest.h>

#include "symbols/go_binary.h"
#include "tests/support/fixture_matrix.h"

namespace goroscope {
namespace {

BuildInfo build(const std::string& version, const std::string& default_godebug) {
  BuildInfo b;
  b.go_version = *GoVersion::parse(version);
  if (!default_godebug.empty()) b.settings.push_back({"DefaultGODEBUG", default_godebug});
  return b;
}

TEST(TimerRegime, DecidedByVersionDefaultGodebugAndEnvironment) {
  EXPECT_TRUE(decide_timer_regime(build("go1.22.12", ""), std::nullopt).old_regime);
  EXPECT_TRUE(decide_timer_regime(build("go1.19.8", ""), std::string("asynctimerchan=0")).old_regime);
  auto old_default = decide_timer_regime(build("go1.26.8", "asynctimerchan=1,panicnil=1"), std::nullopt);
  EXPECT_TRUE(old_default.old_regime);
  EXPECT_NE(old_default.reason.find("DefaultGODEBUG"), std::string::npos);
  EXPECT_FALSE(decide_timer_regime(build("go1.23.5", "panicnil=0"), std::nullopt).old_regime);
  auto env_old = decide_timer_regime(build("go1.26.8", ""), std::string("x=1,asynctimerchan=1"));
  EXPECT_TRUE(env_old.old_regime);
  EXPECT_NE(env_old.reason.find("GODEBUG=asynctimerchan=1"), std::string::npos);
  // The environment wins over the binary's default, and the last setting wins.
  EXPECT_FALSE(
      decide_timer_regime(build("go1.26.8", "asynctimerchan=1"), std::string("asynctimerchan=1,asynctimerchan=0"))
          .old_regime);
}

class TimerTrackerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto b = GoBinary::open(testing::symbol_matrix().front().path);
    ASSERT_TRUE(b) << b.error().message;
    binary_ = *b;
  }
  static inline std::shared_ptr<const GoBinary> binary_;
  static constexpr uint64_t kSendTime = 0x1000, kGoFunc = 0x2000, kS = 1'000'000'000;
  TimerTracker make(bool old) {
    TimerRegime regime{old, old ? "old" : "new"};
    TimerPolicy policy;
    policy.leak_min = 5;
    policy.ticker_leak_min = 3;
    policy.churn_min = 10;
    policy.long_seconds = 10;
    policy.ticker_firing_seconds = 1;
    return TimerTracker(binary_->pclntab(), 0, kSendTime, kGoFunc, old ? 0 : 16, regime, policy);
  }
  const uint64_t no_frames[1] = {0};
};

const TimerSiteStats* kind(const std::vector<TimerSiteStats>& sites, TimerKind k) {
  for (const auto& s : sites)
    if (s.kind == k) return &s;
  return nullptr;
}

TEST_F(TimerTrackerTest, ClassifiesByFunctionAndPeriod) {
  TimerTracker t = make(true);
  EXPECT_EQ(t.classify(kSendTime, 0), TimerKind::Timer);
  EXPECT_EQ(t.classify(kSendTime, 5), TimerKind::Ticker);
  EXPECT_EQ(t.classify(kGoFunc, 0), TimerKind::AfterFunc);
  EXPECT_EQ(t.classify(0x3000, 0), TimerKind::Unknown);
}

TEST_F(TimerTrackerTest, StopResetAndFireCorrelateByAddress) {
  TimerTracker t = make(true);
  const uint64_t now = 100 * kS;
  t.on_create(0xa000, now + 60 * kS, 0, kSendTime, no_frames, 0, now);
  t.on_create(0xb000, now + kS / 1000, 0, kSendTime, no_frames, 0, now);
  t.on_reset(0xa000, now + 120 * kS, std::nullopt, now);
  t.on_stop(0xa000, now);
  t.on_fire(0xb000, now + kS / 1000, 0, kSendTime, now + kS / 1000);
  auto sites = t.sites(now + kS);
  const TimerSiteStats* s = kind(sites, TimerKind::Timer);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->created_total, 2u);
  EXPECT_EQ(s->reset_total, 1u);
  EXPECT_EQ(s->stopped_total, 1u);
  EXPECT_EQ(s->fired_total, 1u);
  EXPECT_EQ(s->active, 0u);
}

TEST_F(TimerTrackerTest, FromGo123TheFireProbeSeesTheRuntimeTimerInsideTheTimeTimer) {
  TimerTracker t = make(false);
  const uint64_t now = 100 * kS;
  t.on_create(0xa000, now + kS / 1000, 0, kSendTime, no_frames, 0, now);
  t.on_fire(0xa000 + 16, now + kS / 1000, 0, kSendTime, now);
  auto sites = t.sites(now);
  const TimerSiteStats* s = kind(sites, TimerKind::Timer);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->fired_total, 1u);
  EXPECT_EQ(s->active, 0u);
}

TEST_F(TimerTrackerTest, LongTimersInALoopLeakInTheOldRegimeAndChurnInTheNew) {
  for (bool old : {true, false}) {
    SCOPED_TRACE(old ? "old" : "new");
    TimerTracker t = make(old);
    const uint64_t now = 100 * kS;
    for (uint64_t i = 0; i < 20; i++) t.on_create(0x10000 + i * 0x100, now + 60 * kS, 0, kSendTime, no_frames, 0, now);
    auto v = t.verdicts(now + kS);
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0].verdict, old ? "leak" : "churn");
    EXPECT_EQ(v[0].count, 20u);
  }
}

TEST_F(TimerTrackerTest, PendingAfterFuncsLeakInBothRegimes) {
  for (bool old : {true, false}) {
    TimerTracker t = make(old);
    const uint64_t now = 100 * kS;
    for (uint64_t i = 0; i < 6; i++) t.on_create(0x10000 + i * 0x100, now + 3600 * kS, 0, kGoFunc, no_frames, 0, now);
    auto v = t.verdicts(now);
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0].kind, TimerKind::AfterFunc);
    EXPECT_EQ(v[0].verdict, "leak");
  }
}

TEST_F(TimerTrackerTest, UnstoppedTickersLeakUnlessTheNewRegimeLetsThemGo) {
  const uint64_t now = 100 * kS;
  for (bool old : {true, false}) {
    SCOPED_TRACE(old ? "old" : "new");
    TimerTracker t = make(old);
    for (uint64_t i = 0; i < 4; i++) {
      t.on_create(0x10000 + i * 0x100, now + kS / 10, kS / 10, kSendTime, no_frames, 0, now);
      t.on_fire(0x10000 + i * 0x100 + (old ? 0 : 16), now + kS / 10, kS / 10, kSendTime, now + kS / 10);
    }
    // Three seconds later: the old regime's tickers are still armed (and
    // would still fire); the new regime's stopped firing once dropped.
    auto v = t.verdicts(now + 3 * kS);
    ASSERT_EQ(v.size(), 1u);
    EXPECT_EQ(v[0].verdict, old ? "leak" : "churn");
  }
  // New regime, still firing long after creation: still referenced, a leak.
  TimerTracker t = make(false);
  for (uint64_t i = 0; i < 4; i++) {
    t.on_create(0x10000 + i * 0x100, now + kS / 10, kS / 10, kSendTime, no_frames, 0, now);
    t.on_fire(0x10000 + i * 0x100 + 16, now + 3 * kS, kS / 10, kSendTime, now + 3 * kS);
  }
  auto v = t.verdicts(now + 3 * kS);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].verdict, "leak");
}

TEST_F(TimerTrackerTest, CensusTimersAreCountedOnceAndTheTableIsBounded) {
  TimerTracker t = make(true);
  const uint64_t now = 100 * kS;
  t.on_create(0xa000, now + 60 * kS, 0, kGoFunc, no_frames, 0, now);
  t.on_census({{0xa000, TimerKind::AfterFunc, int64_t(now + 60 * kS), 0},
               {0xb000, TimerKind::AfterFunc, int64_t(now + 60 * kS), 0}},
              now);
  EXPECT_EQ(t.census_timers(), 1u);
  auto sites = t.sites(now);
  const TimerSiteStats* s = kind(sites, TimerKind::AfterFunc);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->active, 2u);
  EXPECT_EQ(s->from_census, 1u);

  TimerRegime regime{true, "old"};
  TimerPolicy small;
  small.max_timers = 100;
  TimerTracker bounded(binary_->pclntab(), 0, kSendTime, kGoFunc, 0, regime, small);
  for (uint64_t i = 0; i < 1000; i++) bounded.on_create(0x10000 + i * 0x100, now, 0, kSendTime, no_frames, 0, now);
  EXPECT_EQ(bounded.tracked(), 100u);
  EXPECT_EQ(bounded.forgotten(), 900u);
}

}  // namespace
}  // namespace goroscope

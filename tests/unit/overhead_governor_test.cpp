// The overhead governor's decisions on synthetic hit streams: when it keeps a
// group attached, when it throttles it, what duty it picks, which events it
// keeps and how much they weigh, and that the weighted count of a steady
// stream estimates the real one. (The governor on real probes and a real
// hot loop: tests/integration/governor_test.cpp.)
#include <gtest/gtest.h>

#include <vector>

#include "daemon/monotonic_clock.h"
#include "daemon/overhead_governor.h"
#include "daemon/switchable_links.h"

namespace goroscope {
namespace {

constexpr uint64_t kMs = 1'000'000;

// A probe group with no real probes, fed by a synthetic CPU-bound loop on
// one thread: `rate` events per second bare; while the probes are attached
// each event also costs a hit, so the loop slows to 1 / (cost + 1 / rate)
// (what makes a plain period/window scaling a lower bound). Events are
// offered to weight() as the session offers ring events: held while
// pending, weighed when their window closes. `real` doubles as the
// runtime's exact counter (sched.goidgen for goroutines).
struct SyntheticGroup {
  static constexpr double kCost = 10e-6;
  SwitchableLinks links;  // no placements: attach/detach succeed at once
  double rate;
  uint64_t hits = 0;
  uint64_t now;
  const uint64_t start;
  double weighted = 0;  // the governor's estimate
  uint64_t real = 0;    // what really happened
  uint64_t kept = 0;
  std::vector<uint64_t> held;

  explicit SyntheticGroup(double rate) : rate(rate), now(monotonic_ns() + 1000 * kMs), start(now) {}

  void hook(GovernedGroup& g) {
    g.on_window_closed([this](uint64_t open, uint64_t close, double w) {
      for (uint64_t ts : held)
        if (ts >= open && ts <= close) {
          weighted += w;
          kept++;
        }
      held.clear();
    });
  }

  void offer(GovernedGroup& g, uint64_t ts) {
    double w = g.weight(ts);
    if (w == GovernedGroup::kPending) {
      held.push_back(ts);
    } else if (w > 0) {
      weighted += w;
      kept++;
    }
  }

  // Advances in 1 ms steps.
  void run(GovernedGroup& g, double seconds, double bare_rate = -1) {
    if (bare_rate >= 0) rate = bare_rate;
    double carry = 0;
    for (uint64_t end = now + uint64_t(seconds * 1e9); now < end; now += kMs) {
      const bool attached = g.mode() == GovernedGroup::Mode::AlwaysOn || g.mode() == GovernedGroup::Mode::Window;
      const double r = attached && rate > 0 ? 1 / (kCost + 1 / rate) : rate;
      carry += r / 1000;
      while (carry >= 1) {
        carry -= 1;
        real++;
        if (attached) {
          hits++;
          offer(g, now);
        }
      }
      g.step(now);
    }
  }
};

GovernedGroup make_group(SyntheticGroup& s, const GovernorOptions& o, bool exact_counter = true) {
  GovernedGroup::Counter counter;
  if (exact_counter) counter = [&s]() -> std::optional<uint64_t> { return s.real; };
  return GovernedGroup("goroutines", &s.links, [&s] { return s.hits; }, 0.01, o, s.now, counter);
}

GovernorOptions options() {
  GovernorOptions o;
  o.cost_per_hit_seconds = SyntheticGroup::kCost;
  o.burst_seconds = 0.05;
  return o;
}

TEST(OverheadGovernor, QuietGroupStaysAttachedAndCountsExactly) {
  SyntheticGroup s(100);  // 100 hits/s x 10 µs = 0.1% of a CPU, share 1%
  GovernedGroup g = make_group(s, options());
  s.hook(g);
  s.run(g, 10);
  EXPECT_EQ(g.mode(), GovernedGroup::Mode::AlwaysOn);
  EXPECT_FALSE(g.sampled_ever());
  EXPECT_DOUBLE_EQ(g.duty(), 1);
  EXPECT_EQ(s.kept, s.real);
  EXPECT_DOUBLE_EQ(s.weighted, double(s.real));
}

TEST(OverheadGovernor, BurstWithinAllowanceIsCountedExactly) {
  SyntheticGroup s(0);
  GovernedGroup g = make_group(s, options());
  s.hook(g);
  s.run(g, 1);
  s.run(g, 0.2, 20000);  // ~3,300 hits (slowed by the probes) = 33 ms of CPU: under the 50 ms burst
  s.run(g, 5, 0);
  EXPECT_EQ(g.mode(), GovernedGroup::Mode::AlwaysOn);
  EXPECT_FALSE(g.sampled_ever());
  EXPECT_GT(s.real, 3000u);
  EXPECT_DOUBLE_EQ(s.weighted, double(s.real));
}

TEST(OverheadGovernor, SustainedHotGroupIsSampledToItsShareAndEstimatedWell) {
  SyntheticGroup s(50000);  // attached: 33k hits/s x 10 µs = a third of a CPU; share 1% -> duty 3%
  GovernedGroup g = make_group(s, options());
  s.hook(g);
  s.run(g, 30);
  EXPECT_TRUE(g.sampled_ever());
  EXPECT_NE(g.mode(), GovernedGroup::Mode::AlwaysOn);
  EXPECT_NEAR(g.duty(), 0.03, 0.006);
  // The cost after the first second (the bucket's allowance and the first
  // check) stays near the share: 30 s x 1% = 0.3 s, plus the burst.
  const double cost = double(s.hits) * 10e-6;
  EXPECT_LT(cost, 0.3 * 1.3 + 0.05 + 0.1) << s.hits << " hits";
  EXPECT_GT(cost, 0.3 * 0.5);
  // Weighted events estimate the real count.
  EXPECT_NEAR(s.weighted / double(s.real), 1.0, 0.1) << s.weighted << " vs " << s.real;
  EXPECT_LT(s.kept, s.real / 10);
}

TEST(OverheadGovernor, WithoutAnExactCounterTimeScalingIsALowerBoundForLoopsTheProbesSlow) {
  SyntheticGroup s(50000);  // slowed to 1/(10 µs + 20 µs) = 33k/s while attached: 2/3 of the bare rate
  GovernedGroup g = make_group(s, options(), false);
  s.hook(g);
  s.run(g, 30);
  ASSERT_TRUE(g.sampled_ever());
  EXPECT_NEAR(s.weighted / double(s.real), 2.0 / 3.0, 0.1) << s.weighted << " vs " << s.real;
}

TEST(OverheadGovernor, EventsOutsideWindowsWeighNothing) {
  SyntheticGroup s(50000);
  GovernedGroup g = make_group(s, options());
  s.hook(g);
  s.run(g, 5);
  ASSERT_TRUE(g.sampled_ever());
  // Scan the last seconds: some instants are in a window (weight > 1),
  // most are not (0), none count 1 any more.
  int in = 0, out = 0;
  for (uint64_t t = s.now - 3000 * kMs; t < s.now; t += kMs) {
    double w = g.weight(t);
    if (w == 0) {
      out++;
    } else {
      in++;
      EXPECT_GT(w, 10);
    }
  }
  EXPECT_GT(in, 0);
  EXPECT_GT(out, 10 * in);
}

TEST(OverheadGovernor, ReturnsToAlwaysOnWhenTheLoadStops) {
  SyntheticGroup s(50000);
  GovernedGroup g = make_group(s, options());
  s.hook(g);
  s.run(g, 5);
  ASSERT_NE(g.mode(), GovernedGroup::Mode::AlwaysOn);
  s.run(g, 15, 10);
  EXPECT_EQ(g.mode(), GovernedGroup::Mode::AlwaysOn);
  EXPECT_TRUE(g.sampled_ever());  // the totals stay marked as estimates
  EXPECT_DOUBLE_EQ(g.weight(s.now - kMs), 1);
}

TEST(OverheadGovernor, VeryHotGroupIsStillSeenEveryMaxPeriod) {
  SyntheticGroup s(2'000'000);  // attached: ~98k hits/s, a whole CPU: duty 1% -> 20 ms every 2 s
  GovernorOptions o = options();
  GovernedGroup g = make_group(s, o);
  s.hook(g);
  s.run(g, 25);
  EXPECT_NEAR(g.duty(), 0.01, 0.002);
  EXPECT_GT(s.kept, 0u);
  EXPECT_NEAR(s.weighted / double(s.real), 1.0, 0.35);
}

TEST(OverheadGovernor, WindowClosedHookSeesEachWindow) {
  SyntheticGroup s(50000);
  GovernedGroup g = make_group(s, options());
  s.hook(g);
  int closes = 0;
  uint64_t last_close = 0;
  g.on_window_closed([&](uint64_t open, uint64_t close, double) {
    EXPECT_LT(open, close);
    EXPECT_GE(open, last_close);
    last_close = close;
    closes++;
  });
  s.run(g, 6);
  EXPECT_GE(closes, 4);  // the first throttle, then about one window a second
}

}  // namespace
}  // namespace goroscope

// RetryBackoff: doubling, the cap, jitter only ever shortening a wait, reset.
#include "exporters/retry_backoff.h"

#include <gtest/gtest.h>

namespace goroscope {
namespace {

using namespace std::chrono_literals;

TEST(RetryBackoff, DoublesUpToTheCapAndResets) {
  RetryBackoff b({100ms, 1000ms, 0.0}, 1);
  EXPECT_EQ(b.current(), 0ms);
  std::vector<std::chrono::milliseconds> got;
  for (int i = 0; i < 6; i++) got.push_back(b.next_delay());
  EXPECT_EQ(got, (std::vector<std::chrono::milliseconds>{100ms, 200ms, 400ms, 800ms, 1000ms, 1000ms}));
  EXPECT_EQ(b.consecutive_failures(), 6u);
  b.reset();
  EXPECT_EQ(b.current(), 0ms);
  EXPECT_EQ(b.consecutive_failures(), 0u);
  EXPECT_EQ(b.next_delay(), 100ms);
}

TEST(RetryBackoff, JitterShortensWithinItsFraction) {
  RetryBackoff b({1000ms, 1000ms, 0.25}, 7);
  bool varied = false;
  std::chrono::milliseconds first = b.next_delay();
  for (int i = 0; i < 200; i++) {
    auto d = b.next_delay();
    EXPECT_LE(d, 1000ms);
    EXPECT_GE(d, 750ms);
    varied |= d != first;
  }
  EXPECT_TRUE(varied);
}

}  // namespace
}  // namespace goroscope

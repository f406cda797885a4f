// RetryBackoff: how long to wait before the next attempt after consecutive
// failures: doubling from `initial` up to `max`, each wait jittered down by
// up to `jitter` of itself so that many daemons that lost one Alertmanager
// together (a restart, a network blip) do not come back in lock-step. The
// jitter only shortens a wait, so `max` is a true cap.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>

namespace goroscope {

struct BackoffPolicy {
  std::chrono::milliseconds initial{std::chrono::seconds(1)};
  std::chrono::milliseconds max{std::chrono::seconds(60)};
  double jitter = 0.2;  // fraction in [0, 1)
};

class RetryBackoff {
 public:
  explicit RetryBackoff(BackoffPolicy policy, uint64_t seed = std::random_device{}()) : policy_(policy), rng_(seed) {}

  // Records one more failure; returns the wait before the next attempt.
  std::chrono::milliseconds next_delay() {
    step_ = step_.count() == 0 ? policy_.initial : std::min(step_ * 2, policy_.max);
    failures_++;
    double cut = std::uniform_real_distribution<double>(0, std::clamp(policy_.jitter, 0.0, 0.99))(rng_);
    return std::chrono::milliseconds(static_cast<int64_t>(static_cast<double>(step_.count()) * (1 - cut)));
  }
  // A success: the next failure starts again from `initial`.
  void reset() {
    step_ = std::chrono::milliseconds(0);
    failures_ = 0;
  }
  // The un-jittered wait after the last failure; 0 when not backing off.
  std::chrono::milliseconds current() const { return step_; }
  uint64_t consecutive_failures() const { return failures_; }
  const BackoffPolicy& policy() const { return policy_; }

 private:
  BackoffPolicy policy_;
  std::mt19937_64 rng_;
  std::chrono::milliseconds step_{0};
  uint64_t failures_ = 0;
};

}  // namespace goroscope

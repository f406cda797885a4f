#include "daemon/overhead_governor.h"

#include <algorithm>
#include <limits>

#include "daemon/monotonic_clock.h"
#include "daemon/switchable_links.h"

namespace goroscope {

namespace {
constexpr uint64_t kOpenEnded = std::numeric_limits<uint64_t>::max();
constexpr uint64_t kMs = 1'000'000;
// Windows are remembered this long, for events read late from the ring.
constexpr uint64_t kWindowMemoryNs = 60'000 * kMs;
// A duty-cycled group goes back to always-on only when it would use at most
// this much of its share: no flapping at the boundary.
constexpr double kReturnBelowShare = 0.5;
constexpr double kMaxDuty = 0.9;
}  // namespace

GovernedGroup::GovernedGroup(std::string name, SwitchableLinks* links, std::function<uint64_t()> hits, double share,
                             const GovernorOptions& options, uint64_t now_ns, Counter exact_total)
    : name_(std::move(name)),
      links_(links),
      hits_(std::move(hits)),
      exact_total_(std::move(exact_total)),
      share_(share),
      options_(options),
      tokens_(options.burst_seconds),
      start_ns_(now_ns),
      last_check_ns_(now_ns) {
  last_check_hits_ = hits_();
  windows_.push_back({0, kOpenEnded, 1.0});  // whatever came before counts in full
  attached_since_ns_ = now_ns;
}

double GovernedGroup::duty() const {
  switch (mode_) {
    case Mode::AlwaysOn: return 1;
    case Mode::Failed: return 0;
    default: return period_ns_ ? double(window_ns_) / double(period_ns_) : 0;
  }
}

double GovernedGroup::attached_fraction(uint64_t now_ns) const {
  if (now_ns <= start_ns_) return 1;
  uint64_t attached = attached_ns_;
  if (mode_ == Mode::AlwaysOn || mode_ == Mode::Window) attached += now_ns - std::min(now_ns, attached_since_ns_);
  return std::min(1.0, double(attached) / double(now_ns - start_ns_));
}

double GovernedGroup::weight(uint64_t ts_ns) const {
  for (auto it = windows_.rbegin(); it != windows_.rend(); ++it)
    if (ts_ns >= it->open_ns) return ts_ns <= it->close_ns ? it->weight : 0;
  return 1;  // older than every remembered window: before the governor
}

void GovernedGroup::plan(double rate) {
  const double cost_share = rate * options_.cost_per_hit_seconds;  // of one CPU, if always attached
  double duty = cost_share > 0 ? std::min(kMaxDuty, share_ / cost_share) : kMaxDuty;
  uint64_t period = uint64_t(options_.period_ms) * kMs;
  uint64_t window = uint64_t(duty * double(period));
  const uint64_t min_window = uint64_t(options_.min_window_ms) * kMs;
  if (window < min_window) {
    window = min_window;
    period = std::min<uint64_t>(uint64_t(double(window) / duty), uint64_t(options_.max_period_ms) * kMs);
  }
  window_ns_ = window;
  period_ns_ = std::max(period, window);
}

void GovernedGroup::throttle(uint64_t now, double rate) {
  sampled_ever_ = true;
  windows_.back().close_ns = now;
  close_total_ = total();
  if (on_close_) on_close_(windows_.back().open_ns, now, 1.0);
  attached_ns_ += now - std::min(now, attached_since_ns_);
  plan(rate);
  links_->detach();
  mode_ = Mode::Off;
  last_close_ns_ = now;
  next_open_ns_ = now + (period_ns_ - window_ns_);
}

void GovernedGroup::open_window(uint64_t now) {
  if (auto err = links_->attach()) {
    mode_ = Mode::Failed;
    error_ = err->message;
    return;
  }
  const uint64_t open = std::max(now, monotonic_ns());
  open_total_ = total();
  window_hits_start_ = hits_();
  windows_.push_back({open, kOpenEnded, kPending});
  while (windows_.size() > 2 && windows_.front().close_ns + kWindowMemoryNs < open) windows_.pop_front();
  attached_since_ns_ = open;
  mode_ = Mode::Window;
}

void GovernedGroup::close_window(uint64_t now) {
  Window& w = windows_.back();
  w.close_ns = std::max(now, w.open_ns + 1);  // the events up to now count: the probes were there
  const uint64_t h = hits_();
  const uint64_t window_hits = h - window_hits_start_;
  const double seconds = double(w.close_ns - w.open_ns) / 1e9;
  const double rate = seconds > 0 ? double(window_hits) / seconds : 0;
  // What the window's events stand for: by the runtime's exact count when
  // there is one, else by time.
  const std::optional<uint64_t> closed_total = total();
  w.weight = double(w.close_ns - last_close_ns_) / double(w.close_ns - w.open_ns);
  if (closed_total && open_total_ && close_total_ && *closed_total > *open_total_ && *open_total_ >= *close_total_)
    w.weight = double(*closed_total - *close_total_) / double(*closed_total - *open_total_);
  close_total_ = closed_total;
  attached_ns_ += w.close_ns - w.open_ns;
  const uint64_t open = w.open_ns, close = w.close_ns;
  const double weight = w.weight;
  windows_closed_++;
  if (rate * options_.cost_per_hit_seconds <= share_ * kReturnBelowShare) {
    // Quiet again: stay attached from the window's end on, counting in full,
    // with an empty bucket (no burst credit right after a throttle).
    windows_.push_back({close + 1, kOpenEnded, 1.0});
    mode_ = Mode::AlwaysOn;
    tokens_ = 0;
    last_check_ns_ = now;
    last_check_hits_ = h;
    attached_since_ns_ = now;
  } else {
    plan(rate);
    links_->detach();
    mode_ = Mode::Off;
    last_close_ns_ = close;
    next_open_ns_ = std::max(now, close + (period_ns_ - window_ns_));
  }
  if (on_close_) on_close_(open, close, weight);
}

std::optional<uint64_t> GovernedGroup::events_since_close() const {
  if (mode_ != Mode::Off || !close_total_) return std::nullopt;
  auto now = total();
  if (!now || *now < *close_total_) return std::nullopt;
  return *now - *close_total_;
}

void GovernedGroup::finish(uint64_t now_ns) {
  if (mode_ == Mode::Window) close_window(now_ns);
}

void GovernedGroup::step(uint64_t now) {
  switch (mode_) {
    case Mode::AlwaysOn: {
      if (now < last_check_ns_ + uint64_t(options_.check_ms) * kMs) return;
      const uint64_t h = hits_();
      const double dt = double(now - last_check_ns_) / 1e9;
      const uint64_t dh = h - last_check_hits_;
      tokens_ = std::min(options_.burst_seconds, tokens_ + share_ * dt) - double(dh) * options_.cost_per_hit_seconds;
      last_check_ns_ = now;
      last_check_hits_ = h;
      if (tokens_ < 0) throttle(now, double(dh) / dt);
      return;
    }
    case Mode::Window:
      if (now >= windows_.back().open_ns + window_ns_) close_window(now);
      return;
    case Mode::Off:
      // The previous window's probes must be gone before they come back.
      if (now >= next_open_ns_ && !links_->detaching()) open_window(now);
      return;
    case Mode::Failed: return;
  }
}

GovernedGroup& OverheadGovernor::add(const std::string& name, SwitchableLinks* links, std::function<uint64_t()> hits,
                                     double share, uint64_t now_ns, GovernedGroup::Counter exact_total) {
  groups_.push_back(
      std::make_unique<GovernedGroup>(name, links, std::move(hits), share, options_, now_ns, std::move(exact_total)));
  return *groups_.back();
}

void OverheadGovernor::finish(uint64_t now_ns) {
  for (auto& g : groups_) g->finish(now_ns);
}

bool OverheadGovernor::cycling() const {
  for (const auto& g : groups_)
    if (g->mode() == GovernedGroup::Mode::Off || g->mode() == GovernedGroup::Mode::Window) return true;
  return false;
}

void OverheadGovernor::step(uint64_t now_ns) {
  for (auto& g : groups_) g->step(now_ns);
}

}  // namespace goroscope

#include "daemon/leak_detector.h"

#include <algorithm>
#include <cstdio>

namespace goroscope {

namespace {

std::string fmt(const char* f, double v) {
  char buf[64];
  snprintf(buf, sizeof buf, f, v);
  return buf;
}

// "chan send 98, select 2": the site's waiting states, most common first.
std::string blocked_states(const SiteStats& s) {
  std::vector<std::pair<uint64_t, std::string>> v;
  for (const auto& [name, n] : s.states)
    if (name != "running" && name != "runnable" && name != "syscall") v.emplace_back(n, name);
  std::sort(v.rbegin(), v.rend());
  std::string out;
  for (size_t i = 0; i < v.size() && i < 3; i++) out += (i ? ", " : "") + v[i].second + " " + std::to_string(v[i].first);
  return out;
}

}  // namespace

void LeakDetector::observe(uint64_t now_ns, const std::vector<SiteStats>& sites) {
  const uint64_t keep_ns = uint64_t(std::max(policy_.window_seconds, policy_.stuck_seconds) * 1e9) * 2;
  for (const SiteStats& s : sites) {
    auto& h = history_[s.gopc];
    h.push_back({now_ns, s.live, s.exited_total});
    // Keep one sample older than the longest span a verdict looks back over.
    while (h.size() > 2 && now_ns - h[1].t_ns > keep_ns) h.pop_front();
  }
}

std::vector<LeakVerdict> LeakDetector::verdicts(uint64_t now_ns, const std::vector<SiteStats>& sites) const {
  std::vector<LeakVerdict> out;
  const uint64_t window_ns = uint64_t(policy_.window_seconds * 1e9);
  const uint64_t stuck_ns = uint64_t(policy_.stuck_seconds * 1e9);
  for (const SiteStats& s : sites) {
    auto hit = history_.find(s.gopc);
    if (hit == history_.end() || s.live == 0) continue;
    const auto& h = hit->second;
    double blocked_fraction = double(s.blocked) / double(s.live);
    if (blocked_fraction < policy_.min_blocked_fraction) continue;

    // The newest sample at least a window old: where growth is measured from.
    const Sample* start = nullptr;
    size_t start_index = 0;
    for (size_t i = h.size(); i-- > 0;) {
      if (now_ns - h[i].t_ns >= window_ns) {
        start = &h[i];
        start_index = i;
        break;
      }
    }
    std::string blocked = fmt("%.0f%%", 100 * blocked_fraction) + " blocked (" + blocked_states(s) + ")";
    std::string age = "oldest " + fmt("%.0fs", s.oldest_seconds) + ", longest block " + fmt("%.0fs", s.max_blocked_seconds);

    if (start && s.live >= start->live + policy_.min_growth) {
      size_t steps = 0, rising = 0;
      for (size_t i = start_index + 1; i < h.size(); i++, steps++) rising += h[i].live >= h[i - 1].live;
      double span = double(now_ns - start->t_ns) / 1e9;
      if (steps > 0 && double(rising) / double(steps) >= policy_.min_rising_steps) {
        double rate = double(s.live - start->live) / span;
        out.push_back({s.gopc, "growing", s.live, rate,
                       "live " + std::to_string(start->live) + " -> " + std::to_string(s.live) + " (+" +
                           std::to_string(s.live - start->live) + ", " + fmt("%.2f/s", rate) + ") over " +
                           fmt("%.0fs", span) + "; " + blocked + "; " + age});
        continue;
      }
    }

    // Stuck: observed for stuck_seconds with no exit, all that time blocked.
    const Sample* stuck_start = nullptr;
    for (size_t i = h.size(); i-- > 0;) {
      if (now_ns - h[i].t_ns >= stuck_ns) {
        stuck_start = &h[i];
        break;
      }
    }
    if (stuck_start && s.live >= policy_.stuck_min && s.exited_total == stuck_start->exited_total &&
        s.max_blocked_seconds >= policy_.stuck_seconds) {
      out.push_back({s.gopc, "stuck", s.live, 0,
                     std::to_string(s.live) + " goroutines, none exited in " +
                         fmt("%.0fs", double(now_ns - stuck_start->t_ns) / 1e9) + "; " + blocked + "; " + age});
    }
  }
  std::sort(out.begin(), out.end(), [](const LeakVerdict& a, const LeakVerdict& b) { return a.count > b.count; });
  return out;
}

}  // namespace goroscope

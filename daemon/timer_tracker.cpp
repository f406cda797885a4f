#include "daemon/timer_tracker.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <sstream>

namespace goroscope {

const char* to_string(TimerKind k) {
  switch (k) {
    case TimerKind::Timer:
      return "timer";
    case TimerKind::Ticker:
      return "ticker";
    case TimerKind::AfterFunc:
      return "afterfunc";
    case TimerKind::Unknown:
      break;
  }
  return "unknown";
}

namespace {

// The value of `key` in a GODEBUG-style "k=v,k=v" list; the last setting
// wins, as in the runtime's own parser.
std::optional<std::string> godebug_value(const std::string& list, const std::string& key) {
  std::optional<std::string> v;
  std::istringstream in(list);
  for (std::string item; std::getline(in, item, ',');) {
    auto eq = item.find('=');
    if (eq != std::string::npos && item.substr(0, eq) == key) v = item.substr(eq + 1);
  }
  return v;
}

// The package of a Go function name: "time.NewTimer" -> "time",
// "runtime.(*timer).modify" -> "runtime", "net/http.(*Server).Serve" ->
// "net/http".
std::string_view package_of(std::string_view fn) {
  size_t slash = fn.rfind('/');
  size_t dot = fn.find('.', slash == std::string_view::npos ? 0 : slash);
  return dot == std::string_view::npos ? fn : fn.substr(0, dot);
}

bool timer_internal(std::string_view fn) {
  std::string_view pkg = package_of(fn);
  return pkg == "runtime" || pkg == "time" || pkg.rfind("runtime/", 0) == 0;
}

std::string seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, s >= 10 ? "%.0fs" : "%.1fs", s);
  return buf;
}

}  // namespace

TimerRegime decide_timer_regime(const BuildInfo& build, const std::optional<std::string>& process_godebug) {
  const GoVersion& v = build.go_version;
  if (!v.at_least(1, 23))
    return {true, v.minor_key() +
                      " predates the Go 1.23 timer rewrite: every started timer stays in the runtime's "
                      "timer heap until it fires or is stopped"};
  if (process_godebug) {
    if (auto env = godebug_value(*process_godebug, "asynctimerchan")) {
      if (*env == "1")
        return {true, "GODEBUG=asynctimerchan=1 in the process environment restores the pre-1.23 timers"};
      return {false, "GODEBUG=asynctimerchan=" + *env + " in the process environment: Go 1.23 timers"};
    }
  }
  if (build.default_godebug("asynctimerchan") == "1")
    return {true,
            "built with DefaultGODEBUG asynctimerchan=1 (the main module's go line predates 1.23): pre-1.23 "
            "timers, unstopped timers are retained"};
  return {false, v.minor_key() +
                     " with asynctimerchan=0: unreferenced timers and tickers are garbage-collectable, "
                     "timer channels are synchronous"};
}

std::optional<std::string> read_process_godebug(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
  if (!in) return std::nullopt;
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::optional<std::string> v;
  size_t start = 0;
  while (start < all.size()) {
    size_t end = all.find('\0', start);
    if (end == std::string::npos) end = all.size();
    std::string_view var(all.data() + start, end - start);
    if (var.rfind("GODEBUG=", 0) == 0) v = std::string(var.substr(8));
    start = end + 1;
  }
  return v;
}

TimerTracker::TimerTracker(const Pclntab& pclntab, uint64_t load_bias, uint64_t send_time, uint64_t go_func,
                           uint64_t fired_timer_offset, TimerRegime regime, TimerPolicy policy)
    : pclntab_(pclntab),
      bias_(load_bias),
      send_time_(send_time),
      go_func_(go_func),
      fired_offset_(fired_timer_offset),
      regime_(std::move(regime)),
      policy_(policy) {}

TimerKind TimerTracker::classify(uint64_t fn_runtime, int64_t period) const {
  uint64_t fn = fn_runtime ? fn_runtime - bias_ : 0;
  if (fn && fn == send_time_) return period > 0 ? TimerKind::Ticker : TimerKind::Timer;
  if (fn && fn == go_func_) return TimerKind::AfterFunc;
  return TimerKind::Unknown;
}

uint32_t TimerTracker::site_id(const std::string& function, const std::string& file, int line, TimerKind kind) {
  auto key = std::make_tuple(function, file, line, kind);
  auto it = site_index_.find(key);
  if (it != site_index_.end()) return it->second;
  uint32_t id = static_cast<uint32_t>(sites_.size());
  sites_.push_back({function, file, line, kind});
  site_index_.emplace(std::move(key), id);
  return id;
}

std::optional<uint32_t> TimerTracker::creation_site(const uint64_t* frames, uint32_t nframes, TimerKind kind) {
  for (uint32_t i = 0; i < nframes; i++) {
    uint64_t pc = frames[i];
    if (pc <= bias_) break;
    auto cached = frame_cache_.find(pc);
    if (cached == frame_cache_.end()) {
      std::optional<std::tuple<std::string, std::string, int>> user;
      // A return address: the call is the instruction before it.
      for (const auto& f : pclntab_.frames(pc - bias_ - 1)) {
        if (timer_internal(f.function)) continue;
        user = std::make_tuple(std::string(f.function), std::string(f.file), f.line);
        break;
      }
      cached = frame_cache_.emplace(pc, std::move(user)).first;
    }
    if (cached->second) {
      const auto& [fn, file, line] = *cached->second;
      return site_id(fn, file, line, kind);
    }
  }
  return std::nullopt;
}

void TimerTracker::remember(uint64_t key, const Timer& t) {
  auto [it, inserted] = timers_.insert_or_assign(key, t);
  (void)it;
  (void)inserted;
  order_.emplace_back(key, t.created_ns);
  while (timers_.size() > policy_.max_timers && !order_.empty()) {
    auto [old_key, old_ns] = order_.front();
    order_.pop_front();
    auto o = timers_.find(old_key);
    if (o != timers_.end() && o->second.created_ns == old_ns) {
      timers_.erase(o);
      forgotten_++;
    }
  }
  // The queue also holds entries for timers already replaced; keep it from
  // outgrowing the table by much.
  if (order_.size() > 2 * policy_.max_timers + 1024) {
    std::deque<std::pair<uint64_t, uint64_t>> live;
    for (const auto& e : order_) {
      auto o = timers_.find(e.first);
      if (o != timers_.end() && o->second.created_ns == e.second) live.push_back(e);
    }
    order_.swap(live);
  }
}

void TimerTracker::on_create(uint64_t timer, int64_t when, int64_t period, uint64_t fn, const uint64_t* frames,
                             uint32_t nframes, uint64_t ts_ns, double weight) {
  if (!timer) return;
  TimerKind kind = classify(fn, period);
  uint32_t site = creation_site(frames, nframes, kind).value_or(unknown_site(kind));
  auto prev = timers_.find(timer);
  if (prev != timers_.end() && prev->second.armed) {
    // The address is in use again while the old timer never fired or
    // stopped: the garbage collector took it (possible from Go 1.23).
    sites_[prev->second.site].collected += prev->second.weight;
  }
  sites_[site].created += weight;
  created_total_ += weight;
  Timer t;
  t.weight = float(weight);
  t.site = site;
  t.kind = kind;
  t.armed = true;
  t.created_ns = ts_ns;
  t.when = when;
  t.period = period;
  remember(timer, t);
}

void TimerTracker::on_stop(uint64_t timer, uint64_t ts_ns) {
  auto it = timers_.find(timer);
  if (it == timers_.end()) {
    if (!sampled_) sites_[unknown_site(TimerKind::Unknown)].stopped++;
    return;
  }
  sites_[it->second.site].stopped += it->second.weight;
  it->second.armed = false;
  it->second.fate_unknown = false;
}

void TimerTracker::on_reset(uint64_t timer, int64_t when, std::optional<int64_t> period, uint64_t ts_ns) {
  auto it = timers_.find(timer);
  if (it == timers_.end()) {
    if (!sampled_) sites_[unknown_site(TimerKind::Unknown)].reset++;
    return;
  }
  Timer& t = it->second;
  sites_[t.site].reset += t.weight;
  t.armed = true;
  t.fate_unknown = false;
  t.when = when;
  if (period) t.period = *period;
}

void TimerTracker::on_fire(uint64_t fired_timer, int64_t when, int64_t period, uint64_t fn, uint64_t ts_ns) {
  uint64_t key = fired_timer - fired_offset_;
  auto it = timers_.find(key);
  if (it == timers_.end()) {
    if (sampled_) return;  // created while the probes were detached
    // Created before attach and not in the census (from 1.23 a channel
    // timer is in a heap only while someone waits on it).
    TimerKind kind = classify(fn, period);
    Timer t;
    t.site = unknown_site(kind);
    t.kind = kind;
    t.armed = period > 0;
    t.created_ns = ts_ns;
    t.last_fire_ns = ts_ns;
    t.when = when + period;
    t.period = period;
    sites_[t.site].fired++;
    remember(key, t);
    return;
  }
  Timer& t = it->second;
  sites_[t.site].fired += t.weight;
  t.last_fire_ns = ts_ns;
  t.fate_unknown = false;
  if (period > 0) {
    t.when = when + period;
  } else {
    t.armed = false;
  }
}

void TimerTracker::on_census(const std::vector<PendingTimer>& pending, uint64_t now_ns) {
  for (const auto& p : pending) {
    if (!p.key || timers_.count(p.key)) continue;
    Timer t;
    t.site = unknown_site(p.kind);
    t.kind = p.kind;
    t.armed = true;
    t.from_census = true;
    t.created_ns = now_ns;
    t.when = p.when;
    t.period = p.period;
    remember(p.key, t);
    census_timers_++;
  }
}

void TimerTracker::on_window_closed(uint64_t open_ns, uint64_t close_ns) {
  sampled_ = true;
  for (auto& [key, t] : timers_)
    if (t.armed && t.created_ns >= open_ns && t.created_ns <= close_ns) t.fate_unknown = true;
}

bool TimerTracker::counts_as_active(const Timer& t, uint64_t now_ns) const {
  if (!t.armed) return false;
  if (t.fate_unknown && (sites_[t.site].stopped > 0 || sites_[t.site].reset > 0)) return false;
  // From Go 1.23 a channel timer that nobody waits on is in no heap; once it
  // is due it only holds the value a receive would compute. It is no longer
  // a pending timer.
  if (!regime_.old_regime && t.kind == TimerKind::Timer && t.period == 0 && t.when + int64_t(1e9) < int64_t(now_ns))
    return false;
  return true;
}

void TimerTracker::apply_verdict(TimerSiteStats& s) const {
  const bool old = regime_.old_regime;
  const std::string where = old ? "old timer regime" : "Go 1.23 timer regime";
  if (s.kind == TimerKind::Ticker) {
    if (old && s.active >= policy_.ticker_leak_min) {
      s.verdict = "leak";
      s.reason = std::to_string(s.active) + " tickers created here were never stopped; in the " + where +
                 " each stays in the runtime's timer heap and keeps firing until Stop";
    } else if (!old && s.firing >= policy_.ticker_leak_min) {
      s.verdict = "leak";
      s.reason = std::to_string(s.firing) + " unstopped tickers created here more than " +
                 seconds(policy_.ticker_firing_seconds) +
                 " ago still fire: they are still referenced (someone receives), so never collected";
    } else if (!old && s.active >= policy_.ticker_leak_min) {
      s.verdict = "churn";
      s.reason = std::to_string(s.active) + " tickers created here were never stopped but no longer fire: in the " +
                 where + " unreferenced tickers are garbage-collected (allocation churn, not a leak)";
    }
    return;
  }
  if (s.kind == TimerKind::AfterFunc || (old && s.kind == TimerKind::Timer)) {
    if (s.active_long >= policy_.leak_min) {
      s.verdict = "leak";
      s.reason = std::to_string(s.active_long) + (s.kind == TimerKind::AfterFunc ? " AfterFunc callbacks" : " timers") +
                 " armed here for at least " + seconds(policy_.long_seconds) +
                 " each and not stopped: each is retained in the runtime's timer heap until it fires" +
                 (s.kind == TimerKind::AfterFunc ? ", with its closure" : " (" + where + ")");
    }
    return;
  }
  if (!old && s.kind == TimerKind::Timer && s.created_total >= policy_.churn_min && s.fired_total == 0 &&
      s.stopped_total == 0) {
    s.verdict = "churn";
    s.reason = std::to_string(s.created_total) + " channel timers created here, none fired or stopped: in the " +
               where + " unreferenced timers are garbage-collected (allocation churn, not a leak)";
  }
}

std::vector<TimerSiteStats> TimerTracker::sites(uint64_t now_ns) const {
  std::vector<TimerSiteStats> out(sites_.size());
  for (size_t i = 0; i < sites_.size(); i++) {
    const Site& s = sites_[i];
    TimerSiteStats& o = out[i];
    o.function = s.function;
    o.file = s.file;
    o.line = s.line;
    o.kind = s.kind;
    o.created_total = uint64_t(std::llround(s.created));
    o.stopped_total = uint64_t(std::llround(s.stopped));
    o.reset_total = uint64_t(std::llround(s.reset));
    o.fired_total = uint64_t(std::llround(s.fired));
    o.collected_total = uint64_t(std::llround(s.collected));
    double dt = double(now_ns - last_tick_ns_) / 1e9;
    if (last_tick_ns_ && dt > 0) o.creation_rate = double(s.created - s.created_at_tick) / dt;
  }
  const int64_t long_ns = int64_t(policy_.long_seconds * 1e9);
  const uint64_t firing_ns = uint64_t(policy_.ticker_firing_seconds * 1e9);
  // Weighted, then rounded: a sampled timer stands for several.
  std::vector<std::array<double, 2>> active(sites_.size());
  for (const auto& [key, t] : timers_) {
    if (!counts_as_active(t, now_ns)) continue;
    TimerSiteStats& o = out[t.site];
    active[t.site][0] += t.weight;
    if (t.period == 0 && t.when - int64_t(now_ns) >= long_ns) active[t.site][1] += t.weight;
    // Still firing after a whole window: someone keeps receiving from it.
    // (A ticker fresh from creation fires even if it is dropped right after.)
    if (t.period > 0 && t.last_fire_ns && now_ns - t.last_fire_ns <= firing_ns && now_ns - t.created_ns > firing_ns)
      o.firing++;
    if (t.from_census) o.from_census++;
    o.oldest_active_seconds = std::max(o.oldest_active_seconds, double(now_ns - std::min(now_ns, t.created_ns)) / 1e9);
  }
  for (size_t i = 0; i < out.size(); i++) {
    out[i].active = uint64_t(std::llround(active[i][0]));
    out[i].active_long = uint64_t(std::llround(active[i][1]));
  }
  std::vector<TimerSiteStats> kept;
  for (auto& o : out) {
    if (!o.created_total && !o.active && !o.fired_total && !o.stopped_total && !o.reset_total) continue;
    apply_verdict(o);
    kept.push_back(std::move(o));
  }
  std::sort(kept.begin(), kept.end(), [](const TimerSiteStats& a, const TimerSiteStats& b) {
    if (a.active != b.active) return a.active > b.active;
    if (a.created_total != b.created_total) return a.created_total > b.created_total;
    return std::tie(a.file, a.line, a.kind) < std::tie(b.file, b.line, b.kind);
  });
  return kept;
}

std::vector<TimerVerdict> TimerTracker::verdicts(uint64_t now_ns) const {
  std::vector<TimerVerdict> out;
  for (const auto& s : sites(now_ns)) {
    if (s.verdict.empty()) continue;
    uint64_t n = s.verdict == "churn"          ? (s.kind == TimerKind::Ticker ? s.active : s.created_total)
                 : s.kind == TimerKind::Ticker ? (regime_.old_regime ? s.active : s.firing)
                                               : s.active_long;
    out.push_back({s.function, s.file, s.line, s.kind, s.verdict, n, s.reason});
  }
  return out;
}

void TimerTracker::tick(uint64_t now_ns) {
  for (auto& s : sites_) s.created_at_tick = s.created;
  last_tick_ns_ = now_ns;
}

}  // namespace goroscope

#include "exporters/prometheus_metrics.h"

#include <algorithm>
#include <functional>
#include <set>
#include <tuple>

namespace goroscope {

namespace pm = prometheus;

std::string valid_utf8(std::string_view in) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
  std::string out;
  out.reserve(in.size());
  size_t i = 0;
  while (i < in.size()) {
    const auto c = static_cast<unsigned char>(in[i]);
    size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
    bool ok = len != 0 && i + len <= in.size();
    uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
    for (size_t k = 1; ok && k < len; k++) {
      const auto cc = static_cast<unsigned char>(in[i + k]);
      ok = (cc & 0xC0) == 0x80;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, UTF-16 surrogates and code points past U+10FFFF are
    // invalid UTF-8 too (Go's utf8.ValidString, which Prometheus uses, says so).
    if (ok && len == 2) ok = cp >= 0x80;
    if (ok && len == 3) ok = cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF);
    if (ok && len == 4) ok = cp >= 0x10000 && cp <= 0x10FFFF;
    if (ok) {
      out.append(in.substr(i, len));
      i += len;
    } else {
      out.append(kReplacement);
      i++;
    }
  }
  return out;
}

namespace {

using Labels = std::vector<pm::ClientMetric::Label>;

// Every family, in exposition order. HELP texts carry no backslash or
// newline: prometheus-cpp 1.0.1 writes HELP unescaped.
struct FamilySpec {
  const char* name;
  pm::MetricType type;
  const char* help;
};
constexpr FamilySpec kFamilies[] = {
    {"goroscope_goroutines", pm::MetricType::Gauge,
     "Live goroutines by creation site (the go statement) and state (running, runnable, syscall, or the wait "
     "reason); state unknown: beyond the tracking limit."},
    {"goroscope_goroutines_created_total", pm::MetricType::Counter,
     "Goroutines created at the site since goroscope attached."},
    {"goroscope_goroutines_exited_total", pm::MetricType::Counter,
     "Goroutines of the site that exited since goroscope attached."},
    {"goroscope_goroutine_lifetime_seconds", pm::MetricType::Histogram,
     "Lifetimes of the site's goroutines created and exited while goroscope was attached."},
    {"goroscope_goroutine_longest_block_seconds", pm::MetricType::Gauge,
     "How long the site's longest-blocked live goroutine has been waiting."},
    {"goroscope_timers_active", pm::MetricType::Gauge,
     "Timers created at the site that are armed (not yet fired or stopped), by kind."},
    {"goroscope_timers_created_total", pm::MetricType::Counter, "Timers created at the site, by kind."},
    {"goroscope_timers_stopped_total", pm::MetricType::Counter, "Stops of timers created at the site, by kind."},
    {"goroscope_timers_reset_total", pm::MetricType::Counter, "Resets of timers created at the site, by kind."},
    {"goroscope_timers_fired_total", pm::MetricType::Counter, "Firings of timers created at the site, by kind."},
    {"goroscope_allocated_bytes_total", pm::MetricType::Counter,
     "Estimated bytes allocated at the site: sampled span refills and large allocations scaled by elapsed over "
     "sampled time; an estimate, not an exact count."},
    {"goroscope_allocated_objects_total", pm::MetricType::Counter,
     "Estimated objects allocated at the site, scaled like goroscope_allocated_bytes_total; an estimate."},
    {"goroscope_leak_suspected", pm::MetricType::Gauge,
     "1 for each current leak verdict: kind goroutine (verdict growing or stuck) or timer (verdict leak, or churn "
     "which is not a leak)."},
    {"goroscope_gc_cycles_total", pm::MetricType::Counter, "Completed GC cycles of the process since attach."},
    {"goroscope_target_info", pm::MetricType::Gauge,
     "1 for each attached process, with its Go version and timer regime (old: asynchronous timer channels)."},
    {"goroscope_events_received_total", pm::MetricType::Counter,
     "Events read from the probes' ring buffers for the process."},
    {"goroscope_events_lost_total", pm::MetricType::Counter,
     "Probe events dropped because a ring buffer was full; counts derived from events are then low."},
    {"goroscope_probe_hits_total", pm::MetricType::Counter, "Times each probe fired in the process."},
    {"goroscope_probe_duty_ratio", pm::MetricType::Gauge,
     "Fraction of the time the probe group is attached: 1 is always; below 1 the group's counts are scaled "
     "estimates."},
    {"goroscope_probe_group_estimated", pm::MetricType::Gauge,
     "1 when the probe group has been sampled by the overhead governor since attach: its site counts "
     "(goroutines created/exited, timers) are scaled estimates; 0 when they are exact."},
    {"goroscope_estimated_overhead_seconds_total", pm::MetricType::Counter,
     "Estimated CPU seconds the process spent in goroscope's probes (hits times measured cost per hit)."},
    {"goroscope_overhead_budget_ratio", pm::MetricType::Gauge,
     "The probe overhead goroscope keeps the process under, as a fraction of one CPU; 0: no budget."},
    {"goroscope_census_duration_seconds", pm::MetricType::Gauge,
     "Duration of the last goroutine census (a read of the runtime's goroutine table)."},
    {"goroscope_attach_errors_total", pm::MetricType::Counter, "Failed attach attempts since the daemon started."},
    {"goroscope_target_attach_failed", pm::MetricType::Gauge,
     "1 for each process goroscope should follow but cannot attach to now."},
    {"goroscope_build_info", pm::MetricType::Gauge, "1, labelled with the running goroscope's version."},
};

class Families {
 public:
  Families() {
    for (const auto& f : kFamilies) {
      index_[f.name] = families_.size();
      families_.push_back({f.name, f.help, f.type, {}});
    }
  }
  void add(const std::string& name, Labels labels, double value) {
    pm::MetricFamily& f = at(name);
    pm::ClientMetric m;
    m.label = std::move(labels);
    if (f.type == pm::MetricType::Counter)
      m.counter.value = value;
    else
      m.gauge.value = value;
    f.metric.push_back(std::move(m));
  }
  void add_histogram(const std::string& name, Labels labels, pm::ClientMetric::Histogram h) {
    pm::ClientMetric m;
    m.label = std::move(labels);
    m.histogram = std::move(h);
    at(name).metric.push_back(std::move(m));
  }
  std::vector<pm::MetricFamily> take() {
    // A family with no series would be a bare HELP/TYPE pair; leave it out.
    std::vector<pm::MetricFamily> out;
    for (auto& f : families_)
      if (!f.metric.empty()) out.push_back(std::move(f));
    return out;
  }

 private:
  pm::MetricFamily& at(const std::string& name) { return families_.at(index_.at(name)); }
  std::vector<pm::MetricFamily> families_;
  std::map<std::string, size_t> index_;
};

void add_label(Labels& labels, const char* name, std::string_view value) {
  // An empty value is the same as no label to Prometheus; leaving it out keeps
  // series identical whichever way a caller spells "absent".
  if (!value.empty()) labels.push_back({name, valid_utf8(value)});
}

Labels with(Labels base, std::initializer_list<std::pair<const char*, std::string_view>> more) {
  for (const auto& [name, value] : more) add_label(base, name, value);
  return base;
}

Labels process_labels(const std::string& exe, int pid, const PodLabels& pod) {
  Labels l;
  add_label(l, "exe", exe);
  add_label(l, "pid", std::to_string(pid));
  add_label(l, "namespace", pod.namespace_name);
  add_label(l, "pod", pod.pod);
  add_label(l, "container", pod.container);
  return l;
}

// A source location as labelled: function, file, line.
struct SiteName {
  std::string function, file;
  int line = 0;
  auto operator<=>(const SiteName&) const = default;
};
const SiteName kOther{"other", "", 0};

Labels with_site(const Labels& base, const SiteName& s) {
  std::string line = s.line > 0 ? std::to_string(s.line) : "";
  return with(base, {{"function", s.function}, {"file", s.file}, {"line", line}});
}

// Orders sites by `ranks_before`, keeps the first `cap` and sums the rest
// into one "other" entry per `fold_key` (timers keep their kind).
template <class Site, class Rank, class FoldKey>
std::vector<Site> capped(std::vector<Site> sites, size_t cap, Rank ranks_before, FoldKey fold_key) {
  std::stable_sort(sites.begin(), sites.end(), ranks_before);
  if (sites.size() <= cap) return sites;
  std::map<std::invoke_result_t<FoldKey, const Site&>, Site> others;
  for (size_t i = cap; i < sites.size(); i++) {
    auto key = fold_key(sites[i]);
    auto it = others.find(key);
    if (it == others.end()) {
      Site o = sites[i];
      o.name = kOther;
      others.emplace(key, std::move(o));
    } else {
      it->second.merge(sites[i]);
    }
  }
  sites.resize(cap);
  for (auto& [key, o] : others) sites.push_back(std::move(o));
  return sites;
}

// --- goroutines -----------------------------------------------------------

struct GoroutineSite {
  SiteName name;
  uint64_t live = 0, created = 0, exited = 0;
  std::map<std::string, uint64_t> states;
  LifetimeHistogram lifetimes;
  double longest_block = 0;
  std::set<std::string> verdicts;

  void merge(const GoroutineSite& o) {
    live += o.live;
    created += o.created;
    exited += o.exited;
    for (const auto& [state, n] : o.states) states[state] += n;
    for (size_t b = 0; b < lifetimes.counts.size(); b++) lifetimes.counts[b] += o.lifetimes.counts[b];
    lifetimes.sum_seconds += o.lifetimes.sum_seconds;
    lifetimes.count += o.lifetimes.count;
    longest_block = std::max(longest_block, o.longest_block);
    verdicts.insert(o.verdicts.begin(), o.verdicts.end());
  }
};

SiteName goroutine_site_name(const GoBinary* binary, const SiteStats& s) {
  if (!binary) return {"?", "?", 0};
  SourceSite where = creation_site(binary->pclntab(), s);
  return {where.function, where.file, where.line};
}

// Sites merged by name (two `go` statements can share a line, and inlining
// gives one statement several gopcs), with their leak verdicts.
std::vector<GoroutineSite> goroutine_sites(const AttachSnapshot& snap, const GoBinary* binary) {
  std::map<SiteName, GoroutineSite> by_name;
  std::map<uint64_t, SiteName> name_of_gopc;
  for (const auto& s : snap.sites) {
    SiteName name = goroutine_site_name(binary, s);
    name_of_gopc[s.gopc] = name;
    GoroutineSite g;
    g.name = name;
    g.live = s.live;
    g.created = s.created_total;
    g.exited = s.exited_total;
    g.states = s.states;
    g.lifetimes = s.lifetimes;
    g.longest_block = s.max_blocked_seconds;
    auto [it, fresh] = by_name.try_emplace(name, g);
    if (!fresh) it->second.merge(g);
  }
  for (const auto& l : snap.leaks) {
    auto known = name_of_gopc.find(l.gopc);
    SiteName name;
    if (known != name_of_gopc.end()) {
      name = known->second;
    } else if (binary) {
      SourceSite w = site_of_return_address(binary->pclntab(), l.gopc);
      name = {w.function, w.file, w.line};
    } else {
      name = {"?", "?", 0};
    }
    GoroutineSite& g = by_name[name];
    g.name = name;
    g.verdicts.insert(l.kind);
  }
  std::vector<GoroutineSite> out;
  for (auto& [name, g] : by_name) out.push_back(std::move(g));
  return out;
}

void add_goroutine_sites(Families& fam, const Labels& proc, const AttachSnapshot& snap, const GoBinary* binary,
                         size_t cap) {
  auto rank = [](const GoroutineSite& a, const GoroutineSite& b) {
    return std::make_tuple(!a.verdicts.empty(), a.live, a.created) >
           std::make_tuple(!b.verdicts.empty(), b.live, b.created);
  };
  auto one_other = [](const GoroutineSite&) { return 0; };
  for (const auto& g : capped(goroutine_sites(snap, binary), cap, rank, one_other)) {
    Labels site = with_site(proc, g.name);
    uint64_t with_state = 0;
    for (const auto& [state, n] : g.states) {
      fam.add("goroscope_goroutines", with(site, {{"state", state}}), double(n));
      with_state += n;
    }
    // Goroutines beyond the tracker's limit are counted but have no state;
    // listing them keeps sum(goroscope_goroutines) equal to the live count.
    if (g.live > with_state)
      fam.add("goroscope_goroutines", with(site, {{"state", "unknown"}}), double(g.live - with_state));
    fam.add("goroscope_goroutines_created_total", site, double(g.created));
    fam.add("goroscope_goroutines_exited_total", site, double(g.exited));
    if (g.live) fam.add("goroscope_goroutine_longest_block_seconds", site, g.longest_block);
    if (g.lifetimes.count) {
      pm::ClientMetric::Histogram h;
      h.sample_count = g.lifetimes.count;
      h.sample_sum = g.lifetimes.sum_seconds;
      uint64_t cumulative = 0;
      int next = 0;
      for (int bound : kExportedLifetimeBuckets) {
        for (; next <= bound; next++) cumulative += g.lifetimes.counts[next];
        h.bucket.push_back({cumulative, LifetimeHistogram::upper_bound_seconds(bound)});
      }
      // The serializer adds le="+Inf" with sample_count.
      fam.add_histogram("goroscope_goroutine_lifetime_seconds", site, std::move(h));
    }
    for (const auto& verdict : g.verdicts)
      fam.add("goroscope_leak_suspected", with(site, {{"kind", "goroutine"}, {"verdict", verdict}}), 1);
  }
}

// --- timers -----------------------------------------------------------------

struct TimerSite {
  SiteName name;
  TimerKind kind = TimerKind::Unknown;
  uint64_t active = 0, created = 0, stopped = 0, reset = 0, fired = 0;
  std::set<std::string> verdicts;

  void merge(const TimerSite& o) {
    active += o.active;
    created += o.created;
    stopped += o.stopped;
    reset += o.reset;
    fired += o.fired;
    verdicts.insert(o.verdicts.begin(), o.verdicts.end());
  }
};

// The tracker leaves timers created before attach without a site.
SiteName timer_site_name(const std::string& function, const std::string& file, int line) {
  if (function.empty()) return {"(created before attach)", "", 0};
  return {function, file, line};
}

std::vector<TimerSite> timer_sites(const AttachSnapshot& snap) {
  std::map<std::pair<SiteName, TimerKind>, TimerSite> by_key;
  for (const auto& t : snap.timer_sites) {
    SiteName name = timer_site_name(t.function, t.file, t.line);
    TimerSite s{name, t.kind, t.active, t.created_total, t.stopped_total, t.reset_total, t.fired_total, {}};
    auto [it, fresh] = by_key.try_emplace({name, t.kind}, s);
    if (!fresh) it->second.merge(s);
  }
  for (const auto& v : snap.timer_verdicts) {
    SiteName name = timer_site_name(v.function, v.file, v.line);
    TimerSite& s = by_key[{name, v.kind}];
    s.name = name;
    s.kind = v.kind;
    s.verdicts.insert(v.verdict);
  }
  std::vector<TimerSite> out;
  for (auto& [key, s] : by_key) out.push_back(std::move(s));
  return out;
}

void add_timer_sites(Families& fam, const Labels& proc, const AttachSnapshot& snap, size_t cap) {
  auto rank = [](const TimerSite& a, const TimerSite& b) {
    return std::make_tuple(!a.verdicts.empty(), a.active, a.created) >
           std::make_tuple(!b.verdicts.empty(), b.active, b.created);
  };
  auto by_kind = [](const TimerSite& s) { return s.kind; };
  // One timer site can have several kinds but leak_suspected has no timer
  // kind label: its verdicts are merged per site.
  std::set<std::pair<SiteName, std::string>> verdicts;
  for (const auto& t : capped(timer_sites(snap), cap, rank, by_kind)) {
    Labels site = with(with_site(proc, t.name), {{"kind", to_string(t.kind)}});
    fam.add("goroscope_timers_active", site, double(t.active));
    fam.add("goroscope_timers_created_total", site, double(t.created));
    fam.add("goroscope_timers_stopped_total", site, double(t.stopped));
    fam.add("goroscope_timers_reset_total", site, double(t.reset));
    fam.add("goroscope_timers_fired_total", site, double(t.fired));
    for (const auto& v : t.verdicts) verdicts.insert({t.name, v});
  }
  for (const auto& [name, verdict] : verdicts)
    fam.add("goroscope_leak_suspected", with(with_site(proc, name), {{"kind", "timer"}, {"verdict", verdict}}), 1);
}

// --- allocations ------------------------------------------------------------

struct AllocationSum {
  SiteName name;
  double bytes = 0, objects = 0;
  void merge(const AllocationSum& o) {
    bytes += o.bytes;
    objects += o.objects;
  }
};

void add_allocation_sites(Families& fam, const Labels& proc, const AllocationSnapshot& allocs, size_t cap) {
  std::map<SiteName, AllocationSum> by_name;
  for (const auto& a : allocs.sites) {
    SiteName name{a.function, a.file, a.line};
    AllocationSum s{name, a.bytes_total, a.objects_total};
    auto [it, fresh] = by_name.try_emplace(name, s);
    if (!fresh) it->second.merge(s);
  }
  std::vector<AllocationSum> sites;
  for (auto& [name, s] : by_name) sites.push_back(std::move(s));
  auto rank = [](const AllocationSum& a, const AllocationSum& b) {
    return std::tie(a.bytes, a.objects) > std::tie(b.bytes, b.objects);
  };
  auto one_other = [](const AllocationSum&) { return 0; };
  for (const auto& a : capped(std::move(sites), cap, rank, one_other)) {
    Labels site = with_site(proc, a.name);
    fam.add("goroscope_allocated_bytes_total", site, a.bytes);
    fam.add("goroscope_allocated_objects_total", site, a.objects);
  }
}

// --- per process and daemon -------------------------------------------------

void add_target(Families& fam, const ScrapeTarget& target, const PrometheusOptions& options) {
  const AttachSnapshot& snap = *target.snapshot;
  const Labels proc = process_labels(snap.exe, snap.pid, target.pod);
  fam.add("goroscope_target_info", with(proc, {{"go_version", snap.go_version}, {"timer_regime", snap.timer_regime}}),
          1);
  add_goroutine_sites(fam, proc, snap, target.binary.get(), options.max_sites_per_process);
  add_timer_sites(fam, proc, snap, options.max_sites_per_process);
  if (snap.allocations) {
    add_allocation_sites(fam, proc, *snap.allocations, options.max_sites_per_process);
    fam.add("goroscope_gc_cycles_total", proc, double(snap.allocations->gc.cycles));
  }
  fam.add("goroscope_events_received_total", proc, double(snap.events_received));
  fam.add("goroscope_events_lost_total", proc, double(snap.lost_events));
  for (const auto& [probe, hits] : snap.probe_hits)
    fam.add("goroscope_probe_hits_total", with(proc, {{"probe", probe}}), double(hits));
  for (const auto& [group, duty] : snap.probe_duty)
    fam.add("goroscope_probe_duty_ratio", with(proc, {{"probe_group", group}}), duty);
  for (const auto& g : snap.probe_groups)
    fam.add("goroscope_probe_group_estimated", with(proc, {{"probe_group", g.name}}), g.estimated ? 1 : 0);
  fam.add("goroscope_estimated_overhead_seconds_total", proc, snap.estimated_overhead_seconds);
  fam.add("goroscope_overhead_budget_ratio", proc, snap.overhead_budget);
  if (snap.census_available) fam.add("goroscope_census_duration_seconds", proc, snap.census_seconds);
}

void add_daemon(Families& fam, const DaemonStatus& daemon) {
  for (const auto& [reason, n] : daemon.attach_errors_total)
    fam.add("goroscope_attach_errors_total", with({}, {{"reason", reason}}), double(n));
  std::set<Labels> failing;  // a target listed twice is still one series
  for (const auto& f : daemon.failing)
    failing.insert(with(process_labels(f.exe, f.pid, f.pod), {{"reason", f.reason}}));
  for (const auto& labels : failing) fam.add("goroscope_target_attach_failed", labels, 1);
  fam.add("goroscope_build_info", with({}, {{"version", daemon.version}, {"revision", daemon.revision}}), 1);
}

}  // namespace

std::vector<pm::MetricFamily> metric_families(const std::vector<ScrapeTarget>& targets, const DaemonStatus& daemon,
                                              const PrometheusOptions& options) {
  Families fam;
  std::set<int> seen_pids;
  for (const auto& t : targets) {
    if (!t.snapshot || !seen_pids.insert(t.snapshot->pid).second) continue;
    add_target(fam, t, options);
  }
  add_daemon(fam, daemon);
  return fam.take();
}

}  // namespace goroscope

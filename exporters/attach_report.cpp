#include "exporters/attach_report.h"

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <tuple>

#include "daemon/goroutine_census.h"

namespace goroscope {

SourceSite site_of_return_address(const Pclntab& pclntab, uint64_t pc) {
  if (!pc) return {};
  auto frames = pclntab.frames(pc - 1);
  if (frames.empty()) return {"?", "?", 0};
  return {std::string(frames.front().function), std::string(frames.front().file), frames.front().line};
}

SourceSite function_at(const Pclntab& pclntab, uint64_t pc) {
  auto f = pclntab.find_func(pc);
  if (!f) return {};
  FuncInfo fi;
  std::string_view file;
  int line = 0;
  pclntab.pc_to_line(pc, &fi, &file, &line);
  return {std::string(f->name), std::string(file), line};
}

// The main goroutine has no `go` statement: the runtime's assembly starts
// it (its gopc is in a runtime.newproc wrapper), so it is named by what it
// runs, runtime.main, as Go's tracebacks do.
SourceSite creation_site(const Pclntab& pclntab, const SiteStats& s) {
  SourceSite start = function_at(pclntab, s.start_pc);
  if (start.function == "runtime.main") return start;
  return site_of_return_address(pclntab, s.gopc);
}

namespace {

// Sites in report order: most live first, then most created.
std::vector<const SiteStats*> ranked(const std::vector<SiteStats>& sites) {
  std::vector<const SiteStats*> v;
  for (const auto& s : sites) v.push_back(&s);
  std::sort(v.begin(), v.end(), [](const SiteStats* a, const SiteStats* b) {
    if (a->live != b->live) return a->live > b->live;
    if (a->created_total != b->created_total) return a->created_total > b->created_total;
    return a->gopc < b->gopc;
  });
  return v;
}

std::string states_summary(const SiteStats& s, size_t max_items) {
  std::vector<std::pair<uint64_t, std::string>> v;
  for (const auto& [name, n] : s.states) v.emplace_back(n, name);
  std::sort(v.rbegin(), v.rend());
  std::string out;
  for (size_t i = 0; i < v.size() && i < max_items; i++) out += (i ? ", " : "") + v[i].second + " " + std::to_string(v[i].first);
  if (v.size() > max_items) out += ", ...";
  return out;
}

const LeakVerdict* leak_for(const AttachSnapshot& snap, uint64_t gopc) {
  for (const auto& l : snap.leaks)
    if (l.gopc == gopc) return &l;
  return nullptr;
}

std::string fixed(double v, int digits) {
  char buf[64];
  snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

std::string short_file(const std::string& path) {
  auto slash = path.rfind('/');
  if (slash == std::string::npos) return path;
  auto prev = path.rfind('/', slash - 1);
  return path.substr(prev == std::string::npos ? 0 : prev + 1);
}

}  // namespace

nlohmann::json attach_json(const AttachSnapshot& snap, const Pclntab& pclntab) {
  using nlohmann::json;
  json sites = json::array();
  for (const SiteStats* s : ranked(snap.sites)) {
    SourceSite where = creation_site(pclntab, *s);
    json states = json::object();
    for (const auto& [name, n] : s->states) states[name] = n;
    json blocking = json::array();
    for (const auto& [pc, n] : s->block_pcs) {
      // The frame outside runtime/sync/time: a mutex wait names the caller's
      // Lock line, not sync/mutex.go where Lock is inlined.
      SourceFrame b = blocking_frame(pclntab, pc);
      if (b.function.empty()) continue;
      blocking.push_back({{"function", b.function}, {"file", b.file}, {"line", b.line}, {"count", n}});
    }
    json hist = json::object();
    if (s->lifetimes.count) {
      json buckets = json::array();
      for (int i = 0; i <= LifetimeHistogram::kBuckets; i++) {
        if (!s->lifetimes.counts[i]) continue;
        buckets.push_back({{"le", i < LifetimeHistogram::kBuckets ? json(LifetimeHistogram::upper_bound_seconds(i))
                                                                   : json("+Inf")},
                           {"count", s->lifetimes.counts[i]}});
      }
      hist = {{"count", s->lifetimes.count}, {"sum_seconds", s->lifetimes.sum_seconds}, {"buckets", buckets}};
    }
    auto rate = snap.site_creation_rate.find(s->gopc);
    json site = {{"function", where.function},
                 {"file", where.file},
                 {"line", where.line},
                 {"start_function", function_at(pclntab, s->start_pc).function},
                 {"live", s->live},
                 {"created_total", s->created_total},
                 {"exited_total", s->exited_total},
                 {"alive_at_attach", s->seen_before_attach},
                 {"creation_rate", rate == snap.site_creation_rate.end() ? 0.0 : rate->second},
                 {"states", states},
                 {"blocked", s->blocked},
                 {"blocking_sites", blocking},
                 {"max_blocked_seconds", s->max_blocked_seconds},
                 {"oldest_seconds", s->oldest_seconds},
                 {"lifetime", hist}};
    sites.push_back(site);
  }
  // Where goroutines wait, across creation sites: several frames can
  // resolve to one source line (e.g. two calls on it); they are merged.
  std::map<std::tuple<std::string, std::string, int>, json> waits;
  for (const auto& b : snap.blocking_sites) {
    SourceFrame f = blocking_frame(pclntab, b.block_pc);
    if (f.function.empty()) continue;
    json& w = waits[{std::string(f.function), std::string(f.file), f.line}];
    if (w.is_null()) {
      w = {{"function", f.function}, {"file", f.file}, {"line", f.line}, {"count", 0}, {"states", json::object()},
           {"created_at", json::array()}, {"max_blocked_seconds", 0.0}};
    }
    w["count"] = w["count"].get<uint64_t>() + b.count;
    for (const auto& [state, n] : b.states) w["states"][state] = w["states"].value(state, uint64_t{0}) + n;
    for (const auto& [gopc, n] : b.creation_sites) {
      SourceSite c = site_of_return_address(pclntab, gopc);
      w["created_at"].push_back({{"function", c.function}, {"file", c.file}, {"line", c.line}, {"count", n}});
    }
    w["max_blocked_seconds"] = std::max(w["max_blocked_seconds"].get<double>(), b.max_blocked_seconds);
  }
  json blocking_sites = json::array();
  for (auto& [key, w] : waits) blocking_sites.push_back(std::move(w));
  std::sort(blocking_sites.begin(), blocking_sites.end(),
            [](const json& a, const json& b) { return a["count"].get<uint64_t>() > b["count"].get<uint64_t>(); });

  json leaks = json::array();
  for (const auto& l : snap.leaks) {
    SourceSite where = site_of_return_address(pclntab, l.gopc);
    leaks.push_back({{"kind", "goroutine"},
                     {"verdict", l.kind},
                     {"function", where.function},
                     {"file", where.file},
                     {"line", where.line},
                     {"count", l.count},
                     {"growth_per_second", l.growth_per_second},
                     {"reason", l.reason}});
  }
  for (const auto& v : snap.timer_verdicts) {
    if (v.verdict != "leak") continue;  // churn is reported in the timer site, it is not a leak
    leaks.push_back({{"kind", "timer"},
                     {"verdict", v.verdict},
                     {"timer_kind", to_string(v.kind)},
                     {"function", v.function},
                     {"file", v.file},
                     {"line", v.line},
                     {"count", v.count},
                     {"reason", v.reason}});
  }
  json timer_sites = json::array();
  for (const auto& t : snap.timer_sites) {
    timer_sites.push_back({{"function", t.function},
                           {"file", t.file},
                           {"line", t.line},
                           {"kind", to_string(t.kind)},
                           {"created_total", t.created_total},
                           {"stopped_total", t.stopped_total},
                           {"reset_total", t.reset_total},
                           {"fired_total", t.fired_total},
                           {"collected_total", t.collected_total},
                           {"active", t.active},
                           {"active_long", t.active_long},
                           {"firing", t.firing},
                           {"from_census", t.from_census},
                           {"oldest_active_seconds", t.oldest_active_seconds},
                           {"creation_rate", t.creation_rate},
                           {"verdict", t.verdict},
                           {"reason", t.reason}});
  }
  json timers = {{"probed", snap.timers_probed},
                 {"regime", snap.timer_regime},
                 {"regime_reason", snap.timer_regime_reason},
                 {"created_total", snap.timers_created_total},
                 {"census", {{"available", snap.timer_census_available}, {"pending_at_attach", snap.timer_census_pending}}},
                 {"sites", timer_sites}};
  if (!snap.timers_note.empty()) timers["note"] = snap.timers_note;
  json groups = json::array();
  bool goroutines_estimated = false;
  for (const auto& g : snap.probe_groups) {
    groups.push_back({{"name", g.name},
                      {"mode", g.mode},
                      {"duty", g.duty},
                      {"attached_fraction", g.attached_fraction},
                      {"hits", g.hits},
                      {"estimated_seconds", g.estimated_overhead_seconds},
                      {"estimated", g.estimated},
                      {"windows", g.windows}});
    if (g.name == "goroutines" && g.estimated) goroutines_estimated = true;
    if (g.name == "timers") timers["estimated"] = g.estimated;
  }
  json hits = json::object();
  uint64_t total_hits = 0;
  for (const auto& [name, n] : snap.probe_hits) {
    hits[name] = n;
    total_hits += n;
  }
  return {{"pid", snap.pid},
          {"exe", snap.exe},
          {"go_version", snap.go_version},
          {"duration_seconds", snap.elapsed_seconds},
          {"goroutines",
           {{"live", snap.live},
            {"created_total", snap.created_total},
            {"exited_total", snap.exited_total},
            {"creation_rate", snap.creation_rate},
            // created/exited totals are scaled from sampling windows
            {"estimated", goroutines_estimated},
            {"sites", sites},
            {"blocking_sites", blocking_sites}}},
          {"timers", timers},
          {"allocations", snap.allocations ? allocations_json(*snap.allocations)
                                           : json{{"sites", json::array()}, {"note", snap.allocations_note}}},
          {"leaks", leaks},
          {"census", {{"available", snap.census_available}, {"last_duration_seconds", snap.census_seconds}}},
          {"events", {{"lost", snap.lost_events}}},
          {"overhead",
           {{"probe_hits", hits},
            {"cost_per_hit_seconds", snap.cost_per_hit_seconds},
            {"estimated_seconds", snap.estimated_overhead_seconds},
            {"budget", snap.overhead_budget},
            {"groups", groups},
            {"sampled_probes", snap.sampled_probes}}},
          {"warnings", snap.warnings}};
}

namespace {

void header(std::ostream& out, const AttachSnapshot& snap) {
  out << "goroscope  pid " << snap.pid << "  " << snap.exe << "  " << snap.go_version << "  "
      << fixed(snap.elapsed_seconds, 0) << "s\n";
  out << "goroutines: " << snap.live << " live, " << snap.created_total << " created (" << fixed(snap.creation_rate, 1)
      << "/s), " << snap.exited_total << " exited";
  if (!snap.census_available) out << "  [census unavailable: only goroutines created since attach]";
  if (snap.lost_events) out << "  [" << snap.lost_events << " events lost]";
  out << "\n";
}

void table(std::ostream& out, const AttachSnapshot& snap, const Pclntab& pclntab, size_t max_sites, size_t width) {
  char buf[512];
  snprintf(buf, sizeof buf, "%8s %9s %9s %8s %9s  %-5s %s\n", "LIVE", "CREATED", "EXITED", "RATE/s", "MAXBLOCK", "LEAK",
           "SITE / STATES");
  out << buf;
  size_t shown = 0;
  for (const SiteStats* s : ranked(snap.sites)) {
    if (shown++ >= max_sites) break;
    SourceSite where = creation_site(pclntab, *s);
    auto rate = snap.site_creation_rate.find(s->gopc);
    const LeakVerdict* leak = leak_for(snap, s->gopc);
    snprintf(buf, sizeof buf, "%8llu %9llu %9llu %8.1f %8.0fs  %-5s ", (unsigned long long)s->live,
             (unsigned long long)s->created_total, (unsigned long long)s->exited_total,
             rate == snap.site_creation_rate.end() ? 0.0 : rate->second, s->max_blocked_seconds,
             leak ? "LEAK" : "");
    std::string line = buf + where.function + " " + short_file(where.file) + ":" + std::to_string(where.line);
    std::string states = states_summary(*s, 3);
    if (!states.empty()) line += "  [" + states + "]";
    if (width && line.size() > width) line = line.substr(0, width);
    out << line << "\n";
  }
}

// The timers block: regime, then the busiest sites.
void timer_table(std::ostream& out, const AttachSnapshot& snap, size_t max_sites, size_t width) {
  if (snap.timer_regime.empty()) return;
  out << "timers: " << snap.timer_regime << " regime (" << snap.timer_regime_reason << ")";
  if (!snap.timers_probed && !snap.timers_note.empty()) out << "  [" << snap.timers_note << "]";
  out << "\n";
  if (snap.timer_sites.empty()) return;
  char buf[512];
  snprintf(buf, sizeof buf, "%-9s %8s %9s %8s %8s %9s %8s  %-5s %s\n", "KIND", "ACTIVE", "CREATED", "STOPPED", "RESET",
           "FIRED", "RATE/s", "FLAG", "SITE");
  out << buf;
  size_t shown = 0;
  for (const auto& t : snap.timer_sites) {
    if (shown++ >= max_sites) break;
    snprintf(buf, sizeof buf, "%-9s %8llu %9llu %8llu %8llu %9llu %8.1f  %-5s ", to_string(t.kind),
             (unsigned long long)t.active, (unsigned long long)t.created_total, (unsigned long long)t.stopped_total,
             (unsigned long long)t.reset_total, (unsigned long long)t.fired_total, t.creation_rate,
             t.verdict == "leak" ? "LEAK" : t.verdict == "churn" ? "CHURN" : "");
    std::string line = buf + (t.file.empty() ? std::string("(created before attach)")
                                             : t.function + " " + short_file(t.file) + ":" + std::to_string(t.line));
    if (width && line.size() > width) line = line.substr(0, width);
    out << line << "\n";
  }
}

}  // namespace

void print_attach_text(std::ostream& out, const AttachSnapshot& snap, const Pclntab& pclntab, size_t max_sites) {
  header(out, snap);
  table(out, snap, pclntab, max_sites, 0);
  timer_table(out, snap, max_sites, 0);
  if (snap.allocations) print_allocations_text(out, *snap.allocations, max_sites);
  for (const auto& l : snap.leaks) {
    SourceSite where = site_of_return_address(pclntab, l.gopc);
    out << "LEAK (" << l.kind << ") " << where.function << " " << where.file << ":" << where.line << ": " << l.reason
        << "\n";
  }
  for (const auto& v : snap.timer_verdicts)
    out << (v.verdict == "leak" ? "LEAK" : "CHURN") << " (" << to_string(v.kind) << ") "
        << (v.file.empty() ? std::string("(created before attach)")
                           : v.function + " " + v.file + ":" + std::to_string(v.line))
        << ": " << v.reason << "\n";
  for (const auto& w : snap.warnings) out << "warning: " << w << "\n";
  out << "\n";
  out.flush();
}

void draw_attach_top(std::ostream& out, const AttachSnapshot& snap, const Pclntab& pclntab, int rows, int cols) {
  std::ostringstream frame;
  frame << "\x1b[H\x1b[2J";  // home, clear
  header(frame, snap);
  frame << "\n";
  size_t leak_lines = std::min<size_t>(snap.leaks.size(), 5);
  int room = rows - 5 - int(leak_lines);
  size_t timer_rows = snap.timer_sites.empty() ? (snap.timer_regime.empty() ? 0 : 1)
                                               : std::min<size_t>(snap.timer_sites.size(), 5) + 2;
  room -= int(timer_rows);
  // Allocations: a header and the top 3 sites.
  size_t alloc_rows = snap.allocations ? std::min<size_t>(snap.allocations->sites.size(), 3) + 2 : 0;
  room -= int(alloc_rows);
  table(frame, snap, pclntab, room > 1 ? size_t(room) : 1, cols > 0 ? size_t(cols) : 0);
  if (timer_rows) timer_table(frame, snap, 5, cols > 0 ? size_t(cols) : 0);
  if (alloc_rows) print_allocations_text(frame, *snap.allocations, 3);
  for (size_t i = 0; i < leak_lines; i++) {
    SourceSite where = site_of_return_address(pclntab, snap.leaks[i].gopc);
    std::string line = "LEAK " + where.function + " " + short_file(where.file) + ":" + std::to_string(where.line) +
                       ": " + snap.leaks[i].reason;
    if (cols > 0 && line.size() > size_t(cols)) line = line.substr(0, cols);
    frame << line << "\n";
  }
  out << frame.str();
  out.flush();
}

}  // namespace goroscope

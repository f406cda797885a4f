#include "exporters/allocation_report.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include "daemon/allocation_profiler.h"

namespace goroscope {

using nlohmann::json;

AllocationSnapshot snapshot_allocations(const AllocationProfiler& profiler, uint64_t now_ns) {
  AllocationSnapshot s;
  s.sites = profiler.sites(now_ns);
  s.gc = profiler.gc_cycles();
  s.every_allocation = profiler.every_allocation();
  s.elapsed_seconds = profiler.elapsed_seconds(now_ns);
  s.sampled_seconds = profiler.sampled_seconds(now_ns);
  s.scale = profiler.scale(now_ns);
  s.duty = profiler.duty();
  s.probe_hits = profiler.probe_hits();
  s.lost_events = profiler.lost_events();
  s.estimated_overhead_seconds = profiler.estimated_overhead_seconds();
  s.warnings = profiler.warnings();
  return s;
}

namespace {

std::string scheme(const AllocationSnapshot& s) {
  if (s.every_allocation) return "every allocation (runtime.mallocgc) for one window, scaled to the whole run";
  return "span refills (runtime.(*mcache).refill: one span of objects per hit) and large allocations "
         "(runtime.(*mcache).allocLarge), in duty-cycled windows, scaled by elapsed/sampled time";
}

json site_json(const AllocationSite& a) {
  return {{"function", a.function},
          {"file", a.file},
          {"line", a.line},
          {"bytes_total", static_cast<uint64_t>(a.bytes_total + 0.5)},
          {"objects_total", static_cast<uint64_t>(a.objects_total + 0.5)},
          {"growslice_total", static_cast<uint64_t>(a.growslice_total + 0.5)},
          {"large_bytes_total", static_cast<uint64_t>(a.large_bytes_total + 0.5)},
          {"samples", a.samples},
          {"estimated", a.estimated}};
}

// The sites to show: the top max_sites by bytes and by slice growth, in
// byte order; the others are summed into "other".
std::vector<AllocationSite> capped(const std::vector<AllocationSite>& sites, size_t max_sites) {
  if (sites.size() <= max_sites) return sites;
  std::vector<size_t> by_bytes(sites.size()), by_growth(sites.size());
  for (size_t i = 0; i < sites.size(); i++) by_bytes[i] = by_growth[i] = i;
  std::stable_sort(by_growth.begin(), by_growth.end(),
                   [&](size_t a, size_t b) { return sites[a].growslice_total > sites[b].growslice_total; });
  std::set<size_t> keep;
  size_t half = std::max<size_t>(1, max_sites / 2);
  for (size_t i = 0; i < half; i++) keep.insert(by_growth[i]);
  for (size_t i = 0; i < sites.size() && keep.size() < max_sites; i++) keep.insert(by_bytes[i]);
  std::vector<AllocationSite> out;
  AllocationSite other;
  other.function = "other";
  for (size_t i = 0; i < sites.size(); i++) {
    if (keep.count(i)) {
      out.push_back(sites[i]);
      continue;
    }
    other.bytes_total += sites[i].bytes_total;
    other.objects_total += sites[i].objects_total;
    other.growslice_total += sites[i].growslice_total;
    other.large_bytes_total += sites[i].large_bytes_total;
    other.samples += sites[i].samples;
    other.estimated = other.estimated || sites[i].estimated;
  }
  out.push_back(other);
  return out;
}

}  // namespace

json allocations_json(const AllocationSnapshot& s, size_t max_sites) {
  json sites = json::array();
  for (const auto& a : capped(s.sites, max_sites)) sites.push_back(site_json(a));
  json triggers = json::object();
  for (const auto& [k, v] : s.gc.triggers) triggers[k] = v;
  json hits = json::object();
  for (uint32_t i = 0; i < APROBE_COUNT; i++) hits[alloc_probe_name(i)] = s.probe_hits[i];
  return {{"estimated", true},
          {"scheme", scheme(s)},
          {"elapsed_seconds", s.elapsed_seconds},
          {"sampled_seconds", s.sampled_seconds},
          {"scale", s.scale},
          {"sites", sites},
          {"gc",
           {{"cycles", s.gc.cycles},
            {"timed_cycles", s.gc.timed_cycles},
            {"total_seconds", s.gc.total_seconds},
            {"max_seconds", s.gc.max_seconds},
            {"last_seconds", s.gc.last_seconds},
            {"start_calls", s.gc.start_calls},
            {"triggers", triggers}}},
          {"probe_hits", hits},
          {"lost_events", s.lost_events},
          {"estimated_overhead_seconds", s.estimated_overhead_seconds},
          {"warnings", s.warnings}};
}

namespace {
std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    u++;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u ? "%.1f %s" : "%.0f %s", b, units[u]);
  return buf;
}
}  // namespace

void print_allocations_text(std::ostream& out, const AllocationSnapshot& s, size_t max_sites) {
  char line[512];
  std::snprintf(
      line, sizeof line, "allocations (estimates; sampled %.1f s of %.1f s, x%.1f)  GC: %llu cycles, %.3f s max\n",
      s.sampled_seconds, s.elapsed_seconds, s.scale, static_cast<unsigned long long>(s.gc.cycles), s.gc.max_seconds);
  out << line;
  std::snprintf(line, sizeof line, "%12s %12s %10s  %s\n", "~bytes", "~objects", "~growslice", "site");
  out << line;
  for (const auto& a : capped(s.sites, max_sites)) {
    std::string where = a.function;
    if (!a.file.empty()) where += " " + a.file + ":" + std::to_string(a.line);
    std::snprintf(line, sizeof line, "%12s %12.0f %10.0f  %s\n", human_bytes(a.bytes_total).c_str(), a.objects_total,
                  a.growslice_total, where.c_str());
    out << line;
  }
}

}  // namespace goroscope

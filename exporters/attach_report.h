// The report of `goroscope attach`: one process's goroutines per creation
// site, with states, lifetimes, blocking sites and leak verdicts. Rendered as
// the JSON document of the contract in DESIGN.md, as a live top-like table on
// a terminal, or as plain periodic text.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "daemon/goroutine_tracker.h"
#include "exporters/allocation_report.h"
#include "daemon/leak_detector.h"
#include "daemon/timer_tracker.h"
#include "symbols/pclntab.h"

namespace goroscope {

// A source location named from pclntab: the innermost (inlined) frame.
struct SourceSite {
  std::string function, file;
  int line = 0;
};
// The site of a return address (a `go` statement's gopc, a blocking frame):
// looked up at pc - 1, the call instruction, with inlined frames expanded.
SourceSite site_of_return_address(const Pclntab& pclntab, uint64_t pc);
SourceSite function_at(const Pclntab& pclntab, uint64_t pc);
// A goroutine creation site's name: its `go` statement, or runtime.main for
// the main goroutine. Every exporter names sites this way.
SourceSite creation_site(const Pclntab& pclntab, const SiteStats& s);

// One probe group under the overhead governor (daemon/overhead_governor.h).
struct ProbeGroupStatus {
  std::string name;  // goroutines | timers | allocations
  std::string mode;  // always-on | sampled | failed
  double duty = 1;   // current fraction of time attached
  double attached_fraction = 1;  // since attach
  uint64_t hits = 0;
  double estimated_overhead_seconds = 0;
  bool estimated = false;  // sampled at some point: its totals are scaled estimates
  uint64_t windows = 0;    // sampling windows so far
};

struct AttachSnapshot {
  int pid = 0;
  std::string exe;
  std::string go_version;
  double elapsed_seconds = 0;
  uint64_t live = 0, created_total = 0, exited_total = 0;
  double creation_rate = 0;  // per second, since the previous snapshot
  std::vector<SiteStats> sites;
  std::vector<BlockingSiteStats> blocking_sites;
  std::map<uint64_t, double> site_creation_rate;  // gopc -> per second
  std::vector<LeakVerdict> leaks;
  bool census_available = false;
  double census_seconds = 0;
  uint64_t events_received = 0;  // from every ring buffer, since attach
  uint64_t lost_events = 0;
  std::map<std::string, uint64_t> probe_hits;
  double cost_per_hit_seconds = 0;
  // CPU seconds the target spent in probe hits since attach (hits x cost),
  // and the budget the overhead governor keeps it under (fraction of one CPU).
  double estimated_overhead_seconds = 0;
  double overhead_budget = 0;
  std::vector<std::string> sampled_probes;
  // Probe group -> fraction of the time its probes are attached (1: always;
  // below 1 the group's counts are scaled estimates).
  std::map<std::string, double> probe_duty;
  std::vector<ProbeGroupStatus> probe_groups;
  std::vector<std::string> warnings;
  // Allocations: estimated hot spots, slice growth and GC cycles.
  std::optional<AllocationSnapshot> allocations;  // absent: not followed
  std::string allocations_note;                    // why not
  // Timers: per creation site and kind, the regime and its verdicts.
  bool timers_probed = false;
  std::string timers_note;  // why timers are not followed, if they are not
  std::string timer_regime, timer_regime_reason;
  std::vector<TimerSiteStats> timer_sites;
  std::vector<TimerVerdict> timer_verdicts;
  uint64_t timers_created_total = 0;
  bool timer_census_available = false;
  uint64_t timer_census_pending = 0;  // time-package timers in the heaps at attach
};

nlohmann::json attach_json(const AttachSnapshot& snap, const Pclntab& pclntab);
// Plain text: a header and a table of the top `max_sites` sites.
void print_attach_text(std::ostream& out, const AttachSnapshot& snap, const Pclntab& pclntab, size_t max_sites);
// The live view: clears the terminal and draws the table sized to it.
void draw_attach_top(std::ostream& out, const AttachSnapshot& snap, const Pclntab& pclntab, int rows, int cols);

}  // namespace goroscope

// The Prometheus exposition of `goroscope daemon`: the engine's state at
// scrape time, as prometheus-cpp metric families (DESIGN.md "Metrics").
// Built afresh at each scrape from the targets' latest AttachSnapshots, so
// the daemon registers one Collectable that calls metric_families().
//
// Per-site series are capped per process (options.max_sites_per_process per
// domain: goroutine sites, timer sites, allocation sites); the others are
// summed into function="other", file="", line="" in every family of that
// domain. Sites with a current leak verdict are ranked first so that an
// alert can name them, then by live count (goroutines) or active timers,
// then by created total; allocation sites by bytes.
//
// Because the kept set is chosen per scrape, a site's counters move into
// "other" (and out of it) when its rank crosses the cap; Prometheus sees a
// counter reset there, which rate() tolerates.
#pragma once

#include <prometheus/metric_family.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "exporters/attach_report.h"
#include "symbols/go_binary.h"

namespace goroscope {

// Where a process runs in Kubernetes; each non-empty field becomes a label
// (namespace, pod, container) on all of the process's series.
struct PodLabels {
  std::string namespace_name, pod, container;
};

// One attached process as the daemon holds it. `binary` names goroutine
// sites from its pclntab; without it they are all named "?".
struct ScrapeTarget {
  std::shared_ptr<const AttachSnapshot> snapshot;
  std::shared_ptr<const GoBinary> binary;
  PodLabels pod;
};

// A process the daemon wants to follow but cannot attach to, now.
struct FailingTarget {
  int pid = 0;
  std::string exe;
  std::string reason;  // a short fixed token ("permission", "not_go", ...): it is a label
  PodLabels pod;
};

// What the daemon knows about itself.
struct DaemonStatus {
  std::string version = GOROSCOPE_VERSION;
  std::string revision;                                 // source revision, if known
  std::map<std::string, uint64_t> attach_errors_total;  // reason -> failed attach attempts since start
  std::vector<FailingTarget> failing;
};

struct PrometheusOptions {
  size_t max_sites_per_process = 50;  // per domain (goroutines, timers, allocations)
};

// Every goroscope_* family with at least one series. Targets without a
// snapshot are skipped, as is a second target with an already seen pid (one
// process, one set of series).
std::vector<prometheus::MetricFamily> metric_families(const std::vector<ScrapeTarget>& targets,
                                                      const DaemonStatus& daemon,
                                                      const PrometheusOptions& options = {});

// The exported lifetime histogram keeps every 4th of the tracker's log2
// bounds (4 µs, 64 µs, ... ~18 min): 8 buckets plus +Inf per site instead of
// 33. These are the tracker bucket indices, ascending.
inline constexpr int kExportedLifetimeBuckets[] = {2, 6, 10, 14, 18, 22, 26, 30};

// A label value the text format can carry: Prometheus rejects a scrape with
// invalid UTF-8 in a label value, and pclntab or /proc strings are bytes.
// Each invalid byte becomes U+FFFD. (Quotes, backslashes and newlines are
// escaped by prometheus-cpp's TextSerializer; see the exposition test.)
std::string valid_utf8(std::string_view bytes);

}  // namespace goroscope

#include "daemon/allocation_tracker.h"

#include <algorithm>
#include <tuple>

namespace goroscope {

namespace {

// runtime/sizeclasses.go (Go 1.19 … 1.26): class_to_size, class_to_allocnpages.
constexpr uint16_t kClassToSize[68] = {
    0,    8,    16,   24,    32,    48,    64,    80,    96,    112,   128,   144,   160,   176,   192,   208,   224,
    240,  256,  288,  320,   352,   384,   416,   448,   480,   512,   576,   640,   704,   768,   896,   1024,  1152,
    1280, 1408, 1536, 1792,  2048,  2304,  2688,  3072,  3200,  3456,  4096,  4864,  5376,  6144,  6528,  6784,  6912,
    8192, 9472, 9728, 10240, 10880, 12288, 13568, 14336, 16384, 18432, 19072, 20480, 21760, 24576, 27264, 28672, 32768};
constexpr uint8_t kClassToPages[68] = {0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,  1, 1, 1,
                                       1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 1, 2, 1, 2, 1, 3, 2,  3, 1, 3,
                                       2, 3, 4, 5, 6, 1, 7, 6, 5, 4, 3, 5, 7, 2, 9, 7, 5, 8, 3, 10, 7, 4};
constexpr uint32_t kPageSize = 8192;

bool has_prefix(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// "encoding/json.(*decodeState).object" -> "encoding/json"; the package path
// ends at the first '.' after the last '/'.
std::string_view package_of(std::string_view function) {
  size_t slash = function.rfind('/');
  size_t start = slash == std::string_view::npos ? 0 : slash + 1;
  size_t dot = function.find('.', start);
  return dot == std::string_view::npos ? function : function.substr(0, dot);
}

bool in_module(std::string_view package, const std::string& module) {
  if (module.empty()) return false;
  return package == module ||
         (has_prefix(package, module) && package.size() > module.size() && package[module.size()] == '/');
}

}  // namespace

SpanClassInfo span_class_info(uint8_t span_class) {
  unsigned size_class = span_class >> 1;
  if (size_class == 0 || size_class >= 68) return {};
  uint32_t size = kClassToSize[size_class];
  return {size, kClassToPages[size_class] * kPageSize / size};
}

bool is_standard_library(std::string_view function, const BuildInfo& build_info) {
  if (function.empty() || has_prefix(function, "type:") || has_prefix(function, "type.") ||
      has_prefix(function, "go:") || has_prefix(function, "go."))
    return true;
  std::string_view package = package_of(function);
  if (package == "main") return false;
  if (in_module(package, build_info.main_module.path)) return false;
  for (const auto& dep : build_info.deps)
    if (in_module(package, dep.path)) return false;
  std::string_view first = package.substr(0, package.find('/'));
  return first.find('.') == std::string_view::npos;
}

AllocationTracker::AllocationTracker(std::shared_ptr<const GoBinary> binary, uint64_t load_bias)
    : binary_(std::move(binary)), bias_(load_bias) {
  // Go 1.26: growsliceBuf falls back to growslice, growsliceBufNoAlias calls
  // growsliceBuf (slice.go:513, 548 @1.26); growsliceNoAlias wraps growslice.
  for (const char* name :
       {"runtime.growslice", "runtime.growsliceNoAlias", "runtime.growsliceBuf", "runtime.growsliceBufNoAlias"})
    if (auto f = binary_->pclntab().func_by_name(name)) growslice_ranges_.emplace_back(f->entry, f->end);
}

bool AllocationTracker::called_from_growslice(uint64_t runtime_pc) const {
  uint64_t pc = runtime_pc - bias_;
  for (const auto& [lo, hi] : growslice_ranges_)
    if (pc > lo && pc <= hi) return true;
  return false;
}

const std::optional<AllocationTracker::Key>& AllocationTracker::site_of_pc(uint64_t runtime_pc) {
  auto it = pc_cache_.find(runtime_pc);
  if (it != pc_cache_.end()) return it->second;
  std::optional<Key> site;
  // A return address: the call is the instruction before it.
  if (runtime_pc > bias_) {
    for (const auto& f : binary_->pclntab().frames(runtime_pc - bias_ - 1)) {
      if (is_standard_library(f.function, binary_->build_info())) continue;
      site = Key{std::string(f.function), std::string(f.file), f.line};
      break;
    }
  }
  return pc_cache_.emplace(runtime_pc, std::move(site)).first->second;
}

std::optional<AllocationTracker::Key> AllocationTracker::site_of_stack(const alloc_event& e) {
  uint32_t depth = std::min<uint32_t>(e.depth, ALLOC_STACK_DEPTH);
  for (uint32_t i = 0; i < depth; i++)
    if (const auto& site = site_of_pc(e.stack[i])) return site;
  return std::nullopt;
}

void AllocationTracker::on_event(const alloc_event& e) {
  events_++;
  switch (e.kind) {
    case GO_ALLOC_GC_START:
      gc_.start_calls++;
      if (!cycle_start_ns_) {
        cycle_start_ns_ = e.ts_ns;
        static const char* kinds[] = {"heap", "time", "cycle"};
        gc_.triggers[e.arg < 3 ? kinds[e.arg] : "other"]++;
      }
      return;
    case GO_ALLOC_GC_END:
      gc_.cycles++;
      if (cycle_start_ns_ && e.ts_ns >= *cycle_start_ns_) {
        double s = (e.ts_ns - *cycle_start_ns_) / 1e9;
        gc_.timed_cycles++;
        gc_.total_seconds += s;
        gc_.max_seconds = std::max(gc_.max_seconds, s);
        gc_.last_seconds = s;
      }
      cycle_start_ns_.reset();
      return;
    default:
      break;
  }
  double bytes = 0, objects = 0, growslice = 0, large = 0;
  switch (e.kind) {
    case GO_ALLOC_REFILL: {
      SpanClassInfo c = span_class_info(static_cast<uint8_t>(e.arg));
      if (!c.elem_size) return;
      objects = c.objects;
      bytes = double(c.objects) * c.elem_size;
      break;
    }
    case GO_ALLOC_LARGE:
      objects = 1;
      bytes = large = double(e.arg);
      break;
    case GO_ALLOC_MALLOC:
      objects = 1;
      bytes = double(e.arg);
      break;
    case GO_ALLOC_GROWSLICE:
      // One growth, however many growslice variants it passes through: the
      // inner call of a variant is not counted again.
      if (e.depth && called_from_growslice(e.stack[0])) return;
      growslice = 1;
      break;
    default:
      return;
  }
  auto site = site_of_stack(e);
  if (!site) {
    unattributed_++;
    // Nothing outside the standard library within ALLOC_STACK_DEPTH frames
    // (runtime-internal allocations, or a very deep library stack).
    site = Key{std::string(kUnattributedSite), "", 0};
  }
  Sums& s = sites_[*site];
  s.bytes += bytes;
  s.objects += objects;
  s.growslice += growslice;
  s.large_bytes += large;
  s.samples++;
}

std::vector<AllocationSite> AllocationTracker::sites(double scale, bool estimated) const {
  std::vector<AllocationSite> out;
  out.reserve(sites_.size());
  for (const auto& [k, s] : sites_) {
    AllocationSite a;
    a.function = k.function;
    a.file = k.file;
    a.line = k.line;
    a.bytes_total = s.bytes * scale;
    a.objects_total = s.objects * scale;
    a.growslice_total = s.growslice * scale;
    a.large_bytes_total = s.large_bytes * scale;
    a.samples = s.samples;
    a.estimated = estimated;
    out.push_back(std::move(a));
  }
  std::sort(out.begin(), out.end(), [](const AllocationSite& a, const AllocationSite& b) {
    if (a.bytes_total != b.bytes_total) return a.bytes_total > b.bytes_total;
    return a.growslice_total > b.growslice_total;
  });
  return out;
}

}  // namespace goroscope

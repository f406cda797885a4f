#include "daemon/allocation_probes.h"
#include "daemon/uprobe_multi.h"
#include "daemon/uprobe_plumbing.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>

#include "allocations.skel.h"

namespace goroscope {

namespace {

std::string hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// The site after `function`'s stack check: every function here runs on the
// goroutine's own (growable) stack, where an entry probe would fire twice
// when morestack re-enters it (go-runtime.md §1).
Result<uint64_t> after_stack_check(const ProbePlan& plan, const std::string& function, const std::string& purpose) {
  const ProbePoint* p = plan.find(function);
  if (!p) return Error{ErrorKind::NotFound, function + " is not in this binary; cannot probe " + purpose};
  if (!p->code_ok || !p->after_stack_check_file_offset)
    return Error{ErrorKind::NotFound, function +
                                          " has no recognizable stack check; an entry probe could fire twice, "
                                          "refusing to probe " +
                                          purpose};
  return *p->after_stack_check_file_offset;
}

}  // namespace

const char* alloc_probe_name(uint32_t probe) {
  switch (probe) {
    case APROBE_REFILL:
      return "runtime.(*mcache).refill";
    case APROBE_LARGE:
      return "runtime.(*mcache).allocLarge";
    case APROBE_GROWSLICE:
      return "runtime.growslice";
    case APROBE_MALLOC:
      return "runtime.mallocgc";
    case APROBE_GC_START:
      return "runtime.gcStart";
    case APROBE_GC_END:
      return "runtime.gcMarkTermination";
  }
  return "?";
}

Result<std::unique_ptr<AllocationProbes>> AllocationProbes::attach(const GoBinary& binary, const ProbePlan& plan,
                                                                   const std::string& exe, pid_t pid,
                                                                   const AllocationProbeOptions& options) {
  if (pid <= 0) return Error{ErrorKind::NotFound, "allocation probes need a target process id"};
  if (binary.elf().arch() != kHostArch)
    return Error{ErrorKind::UnsupportedArch,
                 exe + " is " + to_string(binary.elf().arch()) + ", this goroscope probes " + to_string(kHostArch)};
  uint32_t ring = static_cast<uint32_t>(sysconf(_SC_PAGESIZE));
  while (ring < options.ring_buffer_bytes && ring < (1u << 31)) ring <<= 1;

  std::unique_ptr<AllocationProbes> t(new AllocationProbes());
  t->pid_ = pid;
  t->exe_ = exe;
  t->skel_ = allocations_bpf__open();
  if (!t->skel_) return Error{ErrorKind::Io, libbpf_error("opening the allocations BPF object", errno)};
  auto* progs = &t->skel_->progs;

  // Everything this binary could refuse is resolved before anything loads.
  std::vector<Placement> always, sampled;
  auto gc_start = after_stack_check(plan, "runtime.gcStart", "GC cycle starts");
  if (!gc_start) return gc_start.error();
  always.push_back({progs->gc_start, "runtime.gcStart+stackcheck@" + hex(*gc_start), *gc_start});
  auto gc_end = after_stack_check(plan, "runtime.gcMarkTermination", "GC cycle ends");
  if (!gc_end) return gc_end.error();
  always.push_back({progs->gc_end, "runtime.gcMarkTermination+stackcheck@" + hex(*gc_end), *gc_end});

  auto sample = [&](const std::string& function, bpf_program* program,
                    const std::string& purpose) -> std::optional<Error> {
    auto off = after_stack_check(plan, function, purpose);
    if (!off) return off.error();
    sampled.push_back({program, function + "+stackcheck@" + hex(*off), *off});
    return std::nullopt;
  };
  if (options.every_allocation) {
    // Go 1.24+: mallocgc is a dispatcher to mallocgcTiny/Small*/Large, but
    // every allocation still enters it first (go-runtime.md §7).
    if (auto e = sample("runtime.mallocgc", progs->alloc_malloc, "every allocation")) return *e;
    bpf_program__set_autoload(progs->alloc_refill, false);
    bpf_program__set_autoload(progs->alloc_large, false);
  } else {
    if (auto e = sample("runtime.(*mcache).refill", progs->alloc_refill, "small allocations")) return *e;
    if (auto e = sample("runtime.(*mcache).allocLarge", progs->alloc_large, "large allocations")) return *e;
    bpf_program__set_autoload(progs->alloc_malloc, false);
  }
  if (options.growslice) {
    if (auto e = sample("runtime.growslice", progs->alloc_growslice, "slice growth")) return *e;
    // Go 1.26 variants, linked only when the program's code calls them.
    for (const char* variant : {"runtime.growsliceNoAlias", "runtime.growsliceBuf", "runtime.growsliceBufNoAlias"})
      if (plan.find(variant))
        if (auto e = sample(variant, progs->alloc_growslice, "slice growth")) return *e;
  } else {
    bpf_program__set_autoload(progs->alloc_growslice, false);
  }

  t->skel_->rodata->target_tgid = static_cast<__u32>(pid);
  if (int err = bpf_map__set_max_entries(t->skel_->maps.events, ring))
    return Error{ErrorKind::Io, libbpf_error("sizing the allocation event ring buffer", err)};
  // Duty-cycled probes detach cleanly only as uprobe_multi links.
  const bool multi = uprobe_multi_supported();
  if (multi)
    for (const auto& p : sampled) prepare_uprobe_multi(p.program);
  if (int err = load_one_at_a_time(allocations_bpf__load, t->skel_))
    return Error{ErrorKind::Io, libbpf_error("loading the allocations BPF programs (needs root or CAP_BPF)", err)};

  for (const auto& p : always) {
    auto attached = attach_uprobe(p, pid, exe);
    if (!attached) return attached.error();
    bpf_link* link = attached.value();
    t->links_.push_back(link);
    t->labels_.push_back(p.label);
  }
  for (const auto& p : sampled) t->labels_.push_back(p.label + " (sampled)");
  t->sampled_links_ = std::make_unique<SwitchableLinks>(pid, exe, std::move(sampled), multi);

  if (auto err = t->events_.open(bpf_map__fd(t->skel_->maps.events), "the allocation event ring buffer")) return *err;
  return t;
}

AllocationProbes::~AllocationProbes() {
  sampled_links_.reset();
  for (bpf_link* link : links_) bpf_link__destroy(link);
  if (skel_) allocations_bpf__destroy(skel_);
}

std::optional<Error> AllocationProbes::set_sampling(bool on) {
  if (!on) {
    if (!sampled_links_->attached()) return std::nullopt;
    // Close the window first: the probes keep firing while the kernel
    // detaches them (in the background; detaching() says when).
    skel_->bss->sampling_on = 0;
    sampled_links_->detach();
    return std::nullopt;
  }
  if (sampling()) return std::nullopt;
  if (auto err = sampled_links_->attach()) return err;
  skel_->bss->sampling_on = 1;
  return std::nullopt;
}

int AllocationProbes::poll(int timeout_ms, const EventHandler& handler) {
  return events_.poll(timeout_ms, handler);
}

uint64_t AllocationProbes::lost_events() const { return sum_percpu(bpf_map__fd(skel_->maps.lost_events), 0); }

std::array<uint64_t, APROBE_COUNT> AllocationProbes::probe_hits() const {
  return sum_percpu_all<APROBE_COUNT>(bpf_map__fd(skel_->maps.probe_hits));
}

std::vector<std::string> AllocationProbes::attached_probes() const { return labels_; }

}  // namespace goroscope

#include "daemon/goroutine_probes.h"
#include "daemon/uprobe_multi.h"
#include "daemon/uprobe_plumbing.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>

#include "goroutines.skel.h"

namespace goroscope {

namespace {

std::string hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// Where on a function a uprobe goes.
enum class Site {
  Entry,            // first instruction: only for functions that run on g0,
                    // where morestack never re-enters them
  AfterStackCheck,  // first instruction after the stack-bound check
  Returns,          // every RET (never a uretprobe on Go code)
};

using Placement = UprobePlacement;

// The file offsets at which `function` gets a uprobe, or why it cannot: a
// missing or unanalyzable function is refused rather than guessed at.
Result<std::vector<Placement>> place(const ProbePlan& plan, const std::string& function, Site site,
                                     bpf_program* program, const std::string& purpose) {
  const ProbePoint* p = plan.find(function);
  if (!p) return Error{ErrorKind::NotFound, function + " is not in this binary; cannot probe " + purpose};
  if (!p->code_ok)
    return Error{ErrorKind::Corrupt, function + " could not be disassembled; refusing to probe " + purpose};
  std::vector<Placement> out;
  switch (site) {
    case Site::Entry:
      out.push_back({program, function + "@" + hex(p->file_offset), p->file_offset});
      break;
    case Site::AfterStackCheck:
      if (!p->after_stack_check_file_offset)
        return Error{ErrorKind::NotFound,
                     function +
                         " has no recognizable stack check; an entry probe could fire twice, refusing to probe " +
                         purpose};
      out.push_back({program, function + "+stackcheck@" + hex(*p->after_stack_check_file_offset),
                     *p->after_stack_check_file_offset});
      break;
    case Site::Returns:
      if (p->ret_file_offsets.empty())
        return Error{ErrorKind::NotFound, function + " has no RET instruction; cannot probe " + purpose};
      for (uint64_t off : p->ret_file_offsets) out.push_back({program, function + "+ret@" + hex(off), off});
      break;
  }
  return out;
}

Result<uint64_t> offset(const GoBinary& binary, const std::string& key) {
  auto v = binary.offsets().get(key);
  if (!v)
    return Error{ErrorKind::NotFound,
                 key + " offset is unknown for " + binary.go_version().raw + "; cannot read goroutines"};
  return v->value;
}

}  // namespace

Result<std::unique_ptr<GoroutineProbes>> GoroutineProbes::attach(const GoBinary& binary, const ProbePlan& plan,
                                                                 const std::string& exe, pid_t pid,
                                                                 const GoroutineProbeOptions& options) {
  if (pid <= 0) return Error{ErrorKind::NotFound, "goroutine probes need a target process id"};
  // The BPF object reads the Go registers of the architecture it was built
  // for; a foreign-arch binary cannot run here anyway.
  if (binary.elf().arch() != kHostArch)
    return Error{ErrorKind::UnsupportedArch,
                 exe + " is " + to_string(binary.elf().arch()) + ", this goroscope probes " + to_string(kHostArch)};
  const uint32_t ring = ring_buffer_size(options.ring_buffer_bytes);

  // Everything that can be refused for this binary is checked before any
  // kernel object exists.
  const bool parent_field = binary.go_version().at_least(1, 21);
  std::vector<std::string> keys = {"runtime.g.goid", "runtime.g.gopc", "runtime.g.startpc"};
  if (parent_field) {
    keys.push_back("runtime.g.parentGoid");
  } else {
    keys.push_back("runtime.g.m");
    keys.push_back("runtime.m.curg");
  }
  std::map<std::string, uint64_t> offs;
  for (const auto& k : keys) {
    auto v = offset(binary, k);
    if (!v) return v.error();
    offs[k] = *v;
  }

  std::unique_ptr<GoroutineProbes> t(new GoroutineProbes());
  t->skel_ = goroutines_bpf__open();
  if (!t->skel_) return Error{ErrorKind::Io, libbpf_error("opening the goroutines BPF object", errno)};
  auto* progs = &t->skel_->progs;

  std::vector<Placement> placements;
  auto add = [&](const std::string& function, Site site, bpf_program* program,
                 const std::string& purpose) -> std::optional<Error> {
    auto p = place(plan, function, site, program, purpose);
    if (!p) return p.error();
    placements.insert(placements.end(), p->begin(), p->end());
    return std::nullopt;
  };
  // newproc1 runs on g0 (via systemstack) in every version and has a single
  // RET; its result register holds the new g with every field set.
  if (auto e = add("runtime.newproc1", Site::Returns, progs->goroutine_create, "goroutine creation")) return *e;
  // Go 1.22 split the teardown out of goexit0 into gdestroy, which coroutine
  // exit also calls; both run on g0 with the dying g as the argument.
  const char* exit_function = binary.go_version().at_least(1, 22) ? "runtime.gdestroy" : "runtime.goexit0";
  if (auto e = add(exit_function, Site::Entry, progs->goroutine_exit, "goroutine exit")) return *e;
  if (options.park_ready) {
    // gopark runs on the parking goroutine's own stack, which can grow.
    if (auto e = add("runtime.gopark", Site::AfterStackCheck, progs->goroutine_park, "goroutine park")) return *e;
    // ready runs on g0: goready calls it through systemstack (goready is
    // inlined into its callers from Go 1.21, ready never is).
    if (auto e = add("runtime.ready", Site::Entry, progs->goroutine_ready, "goroutine ready")) return *e;
  } else {
    bpf_program__set_autoload(progs->goroutine_park, false);
    bpf_program__set_autoload(progs->goroutine_ready, false);
  }

  auto* ro = t->skel_->rodata;
  ro->target_tgid = static_cast<__u32>(pid);
  ro->g_goid_offset = offs["runtime.g.goid"];
  ro->g_gopc_offset = offs["runtime.g.gopc"];
  ro->g_startpc_offset = offs["runtime.g.startpc"];
  ro->has_parent_goid = parent_field;
  if (parent_field) {
    ro->g_parent_goid_offset = offs["runtime.g.parentGoid"];
  } else {
    ro->g_m_offset = offs["runtime.g.m"];
    ro->m_curg_offset = offs["runtime.m.curg"];
  }
  if (int err = bpf_map__set_max_entries(t->skel_->maps.events, ring))
    return Error{ErrorKind::Io, libbpf_error("sizing the goroutine event ring buffer", err)};
  // Duty-cycled probes detach cleanly only as uprobe_multi links.
  const bool multi = uprobe_multi_supported();
  if (multi)
    for (const auto& p : placements) prepare_uprobe_multi(p.program);
  if (int err = load_one_at_a_time(goroutines_bpf__load, t->skel_))
    return Error{ErrorKind::Io, libbpf_error("loading the goroutines BPF programs (needs root or CAP_BPF)", err)};

  for (const auto& p : placements) t->attached_.push_back(p.label);
  t->links_ = std::make_unique<SwitchableLinks>(pid, exe, std::move(placements), multi);
  if (auto err = t->links_->attach()) return *err;

  if (auto err = t->events_.open(bpf_map__fd(t->skel_->maps.events), "the goroutine event ring buffer")) return *err;
  return t;
}

GoroutineProbes::~GoroutineProbes() {
  links_.reset();  // before the programs they run
  if (skel_) goroutines_bpf__destroy(skel_);
}

int GoroutineProbes::poll(int timeout_ms, const EventHandler& handler) {
  return events_.poll(timeout_ms, handler);
}

uint64_t GoroutineProbes::lost_events() const { return sum_percpu(bpf_map__fd(skel_->maps.lost_events), 0); }

std::array<uint64_t, PROBE_COUNT> GoroutineProbes::probe_hits() const {
  return sum_percpu_all<PROBE_COUNT>(bpf_map__fd(skel_->maps.probe_hits));
}

std::vector<std::string> GoroutineProbes::attached_probes() const { return attached_; }

}  // namespace goroscope

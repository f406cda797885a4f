#include "daemon/timer_probes.h"
#include "daemon/uprobe_multi.h"
#include "daemon/uprobe_plumbing.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>

#include "timers.skel.h"

namespace goroscope {

const char* const kTimerProbeNames[TIMER_PROBE_COUNT] = {"timer_create", "timer_stop", "timer_reset", "timer_fire"};

namespace {

std::string hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

using Placement = UprobePlacement;

}  // namespace

TimerFunctions timer_functions(const GoBinary& binary) {
  TimerFunctions f;
  f.runtime_timer_v2 = binary.go_version().at_least(1, 23);
  if (auto s = binary.pclntab().func_by_name("time.sendTime")) f.send_time = s->entry;
  if (auto g = binary.pclntab().func_by_name("time.goFunc")) f.go_func = g->entry;
  if (f.runtime_timer_v2) {
    if (auto o = binary.offsets().get("runtime.timeTimer.timer")) f.fired_timer_offset = o->value;
  }
  return f;
}

Result<std::unique_ptr<TimerProbes>> TimerProbes::attach(const GoBinary& binary, const ProbePlan& plan,
                                                         const std::string& exe, pid_t pid, uint64_t load_bias,
                                                         const TimerProbeOptions& options) {
  if (pid <= 0) return Error{ErrorKind::NotFound, "timer probes need a target process id"};
  if (binary.elf().arch() != Arch::Amd64)
    return Error{ErrorKind::UnsupportedArch, "timer probes are built for amd64 targets only"};
  const TimerFunctions fns = timer_functions(binary);
  const bool v2 = fns.runtime_timer_v2;
  const char* create_fn = v2 ? "time.newTimer" : "time.startTimer";
  const ProbePoint* create = plan.find(create_fn);
  if (!create)
    return Error{ErrorKind::NotFound,
                 std::string("no timer probes: the program never creates a time.Timer, Ticker or AfterFunc (") +
                     create_fn + " is not linked)"};

  std::vector<std::string> keys = {"runtime.g.goid", "runtime.timer.when", "runtime.timer.period", "runtime.timer.f"};
  if (v2) keys.push_back("runtime.timeTimer.timer");
  std::map<std::string, uint64_t> offs;
  for (const auto& k : keys) {
    auto v = binary.offsets().get(k);
    if (!v)
      return Error{ErrorKind::NotFound,
                   k + " offset is unknown for " + binary.go_version().raw + "; cannot follow timers"};
    offs[k] = v->value;
  }

  uint32_t ring = static_cast<uint32_t>(sysconf(_SC_PAGESIZE));
  while (ring < options.ring_buffer_bytes && ring < (1u << 31)) ring <<= 1;

  std::unique_ptr<TimerProbes> t(new TimerProbes());
  t->skel_ = timers_bpf__open();
  if (!t->skel_) return Error{ErrorKind::Io, libbpf_error("opening the timers BPF object", errno)};
  auto* progs = &t->skel_->progs;

  std::vector<Placement> placements;
  std::vector<bpf_program*> used;
  // An entry probe goes after the stack check: morestack re-runs the
  // function from its first instruction, which would count a call twice.
  auto entry = [&](const ProbePoint* p, bpf_program* prog, const std::string& purpose) -> std::optional<Error> {
    if (!p->code_ok)
      return Error{ErrorKind::Corrupt, p->function + " could not be disassembled; refusing to probe " + purpose};
    if (!p->after_stack_check_file_offset)
      return Error{ErrorKind::NotFound, p->function + " has no recognizable stack check; refusing to probe " + purpose};
    placements.push_back({prog, p->function + "+stackcheck@" + hex(*p->after_stack_check_file_offset),
                          *p->after_stack_check_file_offset});
    used.push_back(prog);
    return std::nullopt;
  };
  // Stop/reset are linked only if the program calls them; a program that
  // never stops a timer has nothing to see there.
  auto optional_entry = [&](const char* function, bpf_program* prog,
                            const std::string& purpose) -> std::optional<Error> {
    const ProbePoint* p = plan.find(function);
    if (!p) return std::nullopt;
    return entry(p, prog, purpose);
  };

  if (v2) {
    if (!create->code_ok || create->ret_file_offsets.empty())
      return Error{ErrorKind::NotFound, "time.newTimer has no analyzable RET; cannot learn new timers' addresses"};
    for (uint64_t off : create->ret_file_offsets)
      placements.push_back({progs->timer_new_ret, "time.newTimer+ret@" + hex(off), off});
    used.push_back(progs->timer_new_ret);
  } else {
    if (auto e = entry(create, progs->timer_start, "timer creation")) return *e;
  }
  if (auto e = optional_entry("time.stopTimer", progs->timer_stop, "timer stop")) return *e;
  if (auto e = optional_entry("time.resetTimer", progs->timer_reset, "timer reset")) return *e;
  if (!v2)
    if (auto e = optional_entry("time.modTimer", progs->timer_modify, "ticker reset")) return *e;
  const char* fire_fn = v2 ? "runtime.(*timer).unlockAndRun" : "runtime.runOneTimer";
  const ProbePoint* fire = plan.find(fire_fn);
  if (!fire) return Error{ErrorKind::NotFound, std::string(fire_fn) + " is not in this binary; cannot see timers fire"};
  if (auto e = entry(fire, v2 ? progs->timer_fire : progs->timer_fire_arg1, "timer fire")) return *e;

  bpf_program* all[] = {progs->timer_start,  progs->timer_new_ret, progs->timer_stop,     progs->timer_reset,
                        progs->timer_modify, progs->timer_fire,    progs->timer_fire_arg1};
  for (bpf_program* p : all)
    if (std::find(used.begin(), used.end(), p) == used.end()) bpf_program__set_autoload(p, false);

  auto* ro = t->skel_->rodata;
  ro->target_tgid = static_cast<__u32>(pid);
  ro->g_goid_offset = offs["runtime.g.goid"];
  ro->timer_when_offset = offs["runtime.timer.when"];
  ro->timer_period_offset = offs["runtime.timer.period"];
  ro->timer_f_offset = offs["runtime.timer.f"];
  if (v2) ro->timetimer_timer_offset = offs["runtime.timeTimer.timer"];
  ro->send_time_pc = fns.send_time ? fns.send_time + load_bias : 0;
  ro->go_func_pc = fns.go_func ? fns.go_func + load_bias : 0;
  ro->reset_has_period = v2;  // resetTimer(t, when, period) from 1.23
  if (int err = bpf_map__set_max_entries(t->skel_->maps.events, ring))
    return Error{ErrorKind::Io, libbpf_error("sizing the timer event ring buffer", err)};
  // Duty-cycled probes detach cleanly only as uprobe_multi links.
  const bool multi = uprobe_multi_supported();
  if (multi)
    for (const auto& p : placements) prepare_uprobe_multi(p.program);
  if (int err = load_one_at_a_time(timers_bpf__load, t->skel_))
    return Error{ErrorKind::Io, libbpf_error("loading the timers BPF programs (needs root or CAP_BPF)", err)};

  // Creation last: a timer seen created must have its stop, reset and fire
  // probes in place already (attaching takes milliseconds per uprobe), or
  // the counts of the first fraction of a second would not add up.
  std::stable_partition(placements.begin(), placements.end(), [&](const Placement& p) {
    return p.program != progs->timer_start && p.program != progs->timer_new_ret;
  });
  for (const auto& p : placements) t->attached_.push_back(p.label);
  t->links_ = std::make_unique<SwitchableLinks>(pid, exe, std::move(placements), multi);
  if (auto err = t->links_->attach()) return *err;
  if (auto err = t->events_.open(bpf_map__fd(t->skel_->maps.events), "the timer event ring buffer")) return *err;
  return t;
}

TimerProbes::~TimerProbes() {
  links_.reset();  // before the programs they run
  if (skel_) timers_bpf__destroy(skel_);
}

int TimerProbes::poll(int timeout_ms, const EventHandler& handler) {
  return events_.poll(timeout_ms, handler);
}

uint64_t TimerProbes::lost_events() const { return sum_percpu(bpf_map__fd(skel_->maps.lost_events), 0); }

std::array<uint64_t, TIMER_PROBE_COUNT> TimerProbes::probe_hits() const {
  return sum_percpu_all<TIMER_PROBE_COUNT>(bpf_map__fd(skel_->maps.probe_hits));
}

std::vector<std::string> TimerProbes::attached_probes() const { return attached_; }

}  // namespace goroscope

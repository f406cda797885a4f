#include "symbols/probe_points.h"

#include "symbols/go_binary.h"
#include "symbols/machine_code.h"

namespace goroscope {

const std::vector<ProbePointSpec>& probe_point_catalog() {
  static const std::vector<ProbePointSpec> catalog = {
      // Goroutine creation (§2): newproc gives parent and gopc on the user
      // stack; newproc1's single RET gives the new g; runqput called from
      // newproc.func1 is the alternative entry-only creation probe.
      {"runtime.newproc", "goroutine creation (parent g, go statement PC)"},
      {"runtime.newproc1", "goroutine creation (new g at RET)"},
      {"runtime.newproc.func1", "caller filter for runqput creation probe"},
      {"runtime.runqput", "goroutine creation (new g, entry from newproc.func1)"},
      // Goroutine exit (§3): goexit0 does the teardown up to 1.21, gdestroy
      // from 1.22 (also reached by coroutine exit).
      {"runtime.goexit1", "goroutine exit (on the exiting goroutine)"},
      {"runtime.goexit0", "goroutine exit (g0, teardown until 1.21)"},
      {"runtime.gdestroy", "goroutine exit (g0, teardown)", 22},
      // Park / unpark (§4): hot, governed.
      {"runtime.gopark", "goroutine park with wait reason"},
      {"runtime.ready", "goroutine made runnable"},
      {"runtime.casgstatus", "every goroutine status change (very hot)"},
      // Census fallback for stripped binaries (§5): allgadd references allgs.
      {"runtime.allgadd", "census: locates runtime.allgs without .symtab"},
      // Timers (§6): the runtime/time linknamed entry points per regime.
      {"time.startTimer", "timer start (old timer implementation)", 18, 22, false},
      {"time.stopTimer", "timer stop", 18, 99, false},
      {"time.resetTimer", "timer reset", 18, 99, false},
      {"time.modTimer", "ticker reset (old timer implementation)", 18, 22, false},
      {"time.newTimer", "timer creation (timer address at RET)", 23, 99, false},
      {"runtime.runOneTimer", "timer fire (old timer implementation)", 18, 22},
      {"runtime.(*timer).unlockAndRun", "timer fire", 23},
      // Allocation and GC (§7).
      {"runtime.mallocgc", "allocation entry (hot; sampled)"},
      {"runtime.profilealloc", "runtime's own sampled allocation path"},
      {"runtime.growslice", "slice growth"},
      // Go 1.26 adds growslice variants the compiler calls instead of
      // growslice (slice.go:303, 510, 547 @1.26.10); linked only when used.
      {"runtime.growsliceNoAlias", "slice growth (1.26, no-alias variant)", 26, 99, false},
      {"runtime.growsliceBuf", "slice growth (1.26, stack-buffer variant)", 26, 99, false},
      {"runtime.growsliceBufNoAlias", "slice growth (1.26, stack-buffer no-alias variant)", 26, 99, false},
      // The span-refill slow path: one hit per span's worth of small
      // allocations (spanClass argument -> bytes), on the allocating
      // goroutine's stack in every version. Sampled, duty-cycled.
      {"runtime.(*mcache).refill", "sampled small allocations (span refill)"},
      // Every allocation larger than 32 KiB goes through allocLarge, with the
      // requested size as its argument (called from mallocgc up to 1.23 and
      // from mallocgcLarge from 1.24).
      {"runtime.(*mcache).allocLarge", "large allocations (> 32 KiB)"},
      {"runtime.gcStart", "GC cycle start"},
      // Once per completed cycle, on the goroutine that finished marking.
      {"runtime.gcMarkTermination", "GC cycle end (mark termination)"},
  };
  return catalog;
}

const ProbePoint* ProbePlan::find(const std::string& function) const {
  for (const auto& p : points)
    if (p.function == function) return &p;
  return nullptr;
}

ProbePlan resolve_probe_points(const GoBinary& binary) {
  ProbePlan plan;
  const int minor = binary.go_version().minor;
  const ElfImage& elf = binary.elf();
  for (const auto& spec : probe_point_catalog()) {
    if (minor < spec.since_minor || minor > spec.until_minor) continue;
    auto func = binary.pclntab().func_by_name(spec.function);
    if (!func) {
      std::string msg = std::string(spec.function) + " is not in this binary";
      if (spec.always_linked) {
        plan.warnings.push_back(msg + " (needed for " + spec.purpose + ")");
      } else {
        plan.notes.push_back(msg + " (not linked: the program does not use it)");
      }
      continue;
    }
    ProbePoint p;
    p.function = spec.function;
    p.purpose = spec.purpose;
    p.address = func->entry;
    p.end = func->end;
    auto off = elf.file_offset(func->entry);
    if (!off) {
      plan.warnings.push_back(p.function + ": entry is not backed by the file; cannot probe it");
      continue;
    }
    p.file_offset = *off;
    auto code = analyze_function(elf, *func);
    if (code) {
      p.ret_addresses = code->ret_addresses;
      for (uint64_t r : p.ret_addresses) p.ret_file_offsets.push_back(*elf.file_offset(r));
      if (code->after_stack_check) {
        p.after_stack_check = code->after_stack_check;
        p.after_stack_check_file_offset = elf.file_offset(*code->after_stack_check);
      }
    } else {
      p.code_ok = false;
      plan.warnings.push_back(p.function + ": " + code.error().message + "; no return probes will be placed");
    }
    plan.points.push_back(std::move(p));
  }
  return plan;
}

}  // namespace goroscope

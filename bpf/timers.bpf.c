// SPDX-License-Identifier: GPL-2.0
/* Timer probes for one Go process (see shared go-runtime.md §6, §9, §10).
 * Two regimes, chosen by user space from the binary's Go version:
 *  - Go <= 1.22: time.startTimer(t *runtime.timer) creates (t = &Timer.r, its
 *    f/period tell timer, ticker or AfterFunc), time.stopTimer(t),
 *    time.resetTimer(t, when) and time.modTimer(t, when, period, ...)
 *    (Ticker.Reset) stop and re-arm, runtime.runOneTimer(pp, t, now) fires.
 *  - Go >= 1.23: time.newTimer(when, period, f, arg, c) creates; a uprobe
 *    on its RET instruction (never a uretprobe) sees the new timer (RAX),
 *    already armed, and the caller chain. time.stopTimer(t)/time.resetTimer(t, when, period)
 *    take the *timeTimer newTimer returned; runtime.(*timer).unlockAndRun(t,
 *    now) fires the runtime timer inside it.
 * Every entry probe sits after the function's stack check, so morestack
 * re-entering the function does not count a call twice. Struct offsets and
 * the addresses of time.sendTime/time.goFunc come from user space (symbols/)
 * through rodata; none is hard-coded here. */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "timers.h"

const volatile __u32 target_tgid = 0; /* 0: any process */
const volatile __u64 g_goid_offset = 0;
const volatile __u64 timer_when_offset = 0;
const volatile __u64 timer_period_offset = 0;
const volatile __u64 timer_f_offset = 0;
/* Go >= 1.23: offset of the runtime timer inside runtime.timeTimer. */
const volatile __u64 timetimer_timer_offset = 0;
/* Runtime (load-bias applied) entry addresses of time.sendTime and
 * time.goFunc: a fire is reported only for timers the time package made;
 * time.Sleep, netpoll deadlines and the runtime's own timers run through the
 * same function and are only counted as hits. 0 = not linked. */
const volatile __u64 send_time_pc = 0;
const volatile __u64 go_func_pc = 0;

#define PROBE_COUNTERS TIMER_PROBE_COUNT
#include "go_probe_common.bpf.h"

static __always_inline bool is_target(void) {
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	return !target_tgid || tgid == target_tgid;
}

/* The caller chain at an entry probe placed before the prologue has touched
 * the frame pointer: [RSP] is the return address, RBP the caller's frame;
 * then pc = *(fp+8), fp = *fp (go-runtime.md §9). Stops when the chain stops
 * going up the stack. */
static __always_inline void walk_frames(struct pt_regs *ctx, struct timer_event *e) {
	e->frames[0] = go_return_address(ctx);
	__u64 fp = GO_FP(ctx);
	__u32 n = 1;
#pragma unroll
	for (int i = 1; i < TIMER_MAX_FRAMES; i++) {
		if (!fp)
			break;
		__u64 pc = read_u64(fp + 8);
		__u64 next = read_u64(fp);
		if (!pc)
			break;
		e->frames[i] = pc;
		n = i + 1;
		if (next <= fp)
			break;
		fp = next;
	}
	e->nframes = n;
}

static __always_inline struct timer_event *reserve(__u32 kind) {
	struct timer_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(&lost_events, 0);
		return NULL;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->kind = kind;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->ts_ns = bpf_ktime_get_ns();
	return e;
}

/* The code address a func value points at: timer.f is a *funcval whose first
 * word is the function's entry. */
static __always_inline __u64 timer_fn(__u64 t) {
	__u64 fv = read_u64(t + timer_f_offset);
	return fv ? read_u64(fv) : 0;
}

/* Go <= 1.22: time.startTimer(t *runtime.timer), t = &Timer.r with when,
 * period, f and arg already set by NewTimer/NewTicker/AfterFunc. */
SEC("uprobe")
int BPF_KPROBE(timer_start) {
	if (!is_target())
		return 0;
	count(&probe_hits, TIMER_PROBE_CREATE);
	struct timer_event *e = reserve(TIMER_CREATE);
	if (!e)
		return 0;
	__u64 t = GO_ARG0(ctx);
	e->timer = t;
	e->when = (__s64)read_u64(t + timer_when_offset);
	e->period = (__s64)read_u64(t + timer_period_offset);
	e->fn = timer_fn(t);
	e->goid = read_u64(GO_G(ctx) + g_goid_offset);
	walk_frames(ctx, e);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* Go >= 1.23: a RET of time.newTimer. RAX is the new *timeTimer; the
 * runtime timer inside it (at timetimer_timer_offset) already holds when,
 * period and f (newTimer's t.modify set them), and at the RET instruction
 * the frame is popped: [RSP] is the return address into time.NewTimer /
 * NewTicker / AfterFunc and RBP the caller's frame, as at an entry. So one
 * probe per creation suffices — no entry probe, no entry/RET pairing. */
SEC("uprobe")
int BPF_KPROBE(timer_new_ret) {
	if (!is_target())
		return 0;
	count(&probe_hits, TIMER_PROBE_CREATE);
	struct timer_event *e = reserve(TIMER_CREATE);
	if (!e)
		return 0;
	__u64 tt = GO_ARG0(ctx);
	__u64 t = tt + timetimer_timer_offset;
	e->timer = tt;
	e->when = (__s64)read_u64(t + timer_when_offset);
	e->period = (__s64)read_u64(t + timer_period_offset);
	e->fn = timer_fn(t);
	e->goid = read_u64(GO_G(ctx) + g_goid_offset);
	walk_frames(ctx, e);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(timer_stop) {
	if (!is_target())
		return 0;
	count(&probe_hits, TIMER_PROBE_STOP);
	struct timer_event *e = reserve(TIMER_STOP);
	if (!e)
		return 0;
	e->timer = GO_ARG0(ctx);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* time.resetTimer: (t, when) to 1.22, (t, when, period) from 1.23; and
 * time.modTimer(t, when, period, f, arg, seq) to 1.22 (Ticker.Reset). Which
 * registers mean something is decided in user space (has_period). */
static __always_inline int reset(struct pt_regs *ctx, bool with_period) {
	if (!is_target())
		return 0;
	count(&probe_hits, TIMER_PROBE_RESET);
	struct timer_event *e = reserve(TIMER_RESET);
	if (!e)
		return 0;
	e->timer = GO_ARG0(ctx);
	e->when = (__s64)GO_ARG1(ctx);
	e->period = (__s64)GO_ARG2(ctx);
	e->has_period = with_period;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

const volatile bool reset_has_period = false;

SEC("uprobe")
int BPF_KPROBE(timer_reset) { return reset(ctx, reset_has_period); }

SEC("uprobe")
int BPF_KPROBE(timer_modify) { return reset(ctx, true); }

static __always_inline int fire(__u64 t) {
	if (!is_target())
		return 0;
	count(&probe_hits, TIMER_PROBE_FIRE);
	if (!t)
		return 0;
	__u64 fn = timer_fn(t);
	if (!fn || (fn != send_time_pc && fn != go_func_pc))
		return 0;
	struct timer_event *e = reserve(TIMER_FIRE);
	if (!e)
		return 0;
	e->timer = t;
	e->fn = fn;
	e->when = (__s64)read_u64(t + timer_when_offset);
	e->period = (__s64)read_u64(t + timer_period_offset);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* Go >= 1.23: runtime.(*timer).unlockAndRun(now), the timer is the receiver. */
SEC("uprobe")
int BPF_KPROBE(timer_fire) { return fire(GO_ARG0(ctx)); }

/* Go <= 1.22: runtime.runOneTimer(pp, t, now). Two programs rather than a
 * rodata switch: the verifier refuses a context access at a computed offset. */
SEC("uprobe")
int BPF_KPROBE(timer_fire_arg1) { return fire(GO_ARG1(ctx)); }

char LICENSE[] SEC("license") = "GPL";

/* Shared between bpf/timers.bpf.c and daemon/timer_probes.cpp: the events
 * the timer probes emit and the ids of the probes whose hits are counted.
 * Plain fixed-width fields only, no logic. */
#ifndef GOROSCOPE_BPF_TIMERS_H
#define GOROSCOPE_BPF_TIMERS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Return addresses sent with a creation: [RSP] and then the frame-pointer
 * chain. time.NewTimer/NewTicker/AfterFunc sit between the probed function
 * and the user, and time.After/time.Tick are inlined into the user frame, so
 * the user call site is within the first three. */
#define TIMER_MAX_FRAMES 6

enum timer_event_kind {
	TIMER_CREATE = 1, /* timer, when, period, fn, goid, frames */
	TIMER_STOP = 2,	  /* timer */
	TIMER_RESET = 3,  /* timer, when, period (period only from Go 1.23 and modTimer) */
	TIMER_FIRE = 4,	  /* timer (the runtime timer as fired), when, period, fn */
};

/* Indexes of the per-probe hit counters (the overhead governor's input). */
enum timer_probe_id {
	TIMER_PROBE_CREATE = 0, /* time.startTimer (<=1.22) or the RET of time.newTimer (>=1.23) */
	TIMER_PROBE_STOP = 1,
	TIMER_PROBE_RESET = 2, /* time.resetTimer, and time.modTimer (<=1.22) */
	TIMER_PROBE_FIRE = 3,  /* every runtime timer run, filtered to time-package timers */
	TIMER_PROBE_COUNT = 4,
};

struct timer_event {
	__u32 kind;
	__u32 pid;
	__u64 ts_ns; /* bpf_ktime_get_ns(): CLOCK_MONOTONIC, the clock of Go's nanotime and
			timer.when */
	__u64 timer; /* address as the probed function saw it (runtime address) */
	__s64 when;
	__s64 period;
	__u64 fn; /* code address of timer.f (time.sendTime / time.goFunc), runtime address */
	__u64 goid;
	__u32 nframes;
	__u32 has_period;		/* RESET: period is meaningful */
	__u64 frames[TIMER_MAX_FRAMES]; /* return addresses, innermost first (runtime addresses) */
};

#endif

/* Shared between bpf/goroutines.bpf.c and daemon/goroutine_probes.cpp: the
 * events the goroutine probes emit and the ids of the probes whose hits are
 * counted. Plain fixed-width fields only, no logic. */
#ifndef GOROSCOPE_BPF_GOROUTINES_H
#define GOROSCOPE_BPF_GOROUTINES_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

enum goroutine_event_kind {
	GOROUTINE_CREATE = 1, /* goid, parent_goid, pc = gopc, start_pc */
	GOROUTINE_EXIT = 2,   /* goid, pc = gopc, start_pc (the g is intact at exit) */
	GOROUTINE_PARK = 3,   /* goid, wait_reason, pc = gopark's return address */
	GOROUTINE_READY = 4,  /* goid of the goroutine made runnable */
};

/* Indexes of the per-probe hit counters (the overhead governor's input). */
enum goroutine_probe_id {
	PROBE_CREATE = 0,
	PROBE_EXIT = 1,
	PROBE_PARK = 2,
	PROBE_READY = 3,
	PROBE_COUNT = 4,
};

struct goroutine_event {
	__u32 kind;
	__u32 pid;
	__u64 ts_ns; /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u64 goid;
	__u64 parent_goid;
	__u64 pc;       /* runtime address (PIE: add nothing, user space removes the load bias) */
	__u64 start_pc; /* runtime address */
	__u32 wait_reason;
	__u32 pad;
};

#endif

/* Shared between bpf/allocations.bpf.c and daemon/allocation_probes.cpp: the
 * events the allocation and GC probes emit and the ids of the probes whose
 * hits are counted. Plain fixed-width fields only, no logic. */
#ifndef GOROSCOPE_BPF_ALLOCATIONS_H
#define GOROSCOPE_BPF_ALLOCATIONS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Return addresses kept per event: the allocating goroutine's frame-pointer
 * chain from the probed runtime function up to (usually) the first frame
 * outside the standard library. */
#define ALLOC_STACK_DEPTH 48

enum alloc_event_kind {
	GO_ALLOC_REFILL = 1,	/* arg = span class (size class << 1 | noscan) */
	GO_ALLOC_LARGE = 2,	/* arg = requested size in bytes (> 32 KiB) */
	GO_ALLOC_GROWSLICE = 3, /* arg = 0 */
	GO_ALLOC_MALLOC = 4,	/* every allocation (diagnostic mode): arg = size */
	GO_ALLOC_GC_START = 5,	/* arg = gcTrigger.kind (0 heap, 1 time, 2 cycle) */
	GO_ALLOC_GC_END = 6,	/* mark termination: one per completed cycle */
};

/* Indexes of the per-probe hit counters (the overhead governor's input). */
enum alloc_probe_id {
	APROBE_REFILL = 0,
	APROBE_LARGE = 1,
	APROBE_GROWSLICE = 2,
	APROBE_MALLOC = 3,
	APROBE_GC_START = 4,
	APROBE_GC_END = 5,
	APROBE_COUNT = 6,
};

struct alloc_event {
	__u32 kind;
	__u32 pid;
	__u64 ts_ns; /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u64 arg;
	__u32 depth; /* valid entries in stack[] */
	__u32 pad;
	__u64 stack[ALLOC_STACK_DEPTH]; /* runtime return addresses, innermost first */
};

#endif

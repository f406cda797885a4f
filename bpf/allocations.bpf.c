// SPDX-License-Identifier: GPL-2.0
/* Allocation, slice-growth and GC probes for one Go process (see shared
 * go-runtime.md §7 and §9). No probe here is on the allocation fast path
 * unless user space asks for the diagnostic every-allocation mode:
 *  - refill: runtime.(*mcache).refill(c, spc spanClass) after its stack
 *    check. It runs when the P's cached span of that class is exhausted, so
 *    one hit stands for about one span's worth of small allocations; the
 *    allocation that triggered it is a sample weighted by object count.
 *  - large: runtime.(*mcache).allocLarge(c, size, noscan) after its stack
 *    check: every allocation > 32 KiB, with its size.
 *  - growslice (and the Go 1.26 variants) after the stack check.
 *  - malloc: runtime.mallocgc after its stack check (diagnostic mode only).
 *  - gc_start / gc_end: runtime.gcStart and runtime.gcMarkTermination.
 * All of them run on the allocating goroutine's own stack, so the
 * frame-pointer chain reaches the user code (§9). Every probe sits after the
 * stack-bound check, where morestack cannot make it fire twice; there the
 * probed function has not pushed its frame yet, so [RSP] is its return
 * address and RBP is its caller's frame. */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "allocations.h"

const volatile __u32 target_tgid = 0; /* 0: any process */

/* The sampling window, set by user space through the mmapped .bss: it opens
 * after the allocation probes are attached and closes before they are
 * detached, because detaching a uprobe takes tens of milliseconds during
 * which it still fires. Hits outside the window are counted (they cost the
 * target all the same) but emit nothing. */
volatile __u32 sampling_on = 0;

#define PROBE_COUNTERS APROBE_COUNT
#include "go_probe_common.bpf.h"

static __always_inline struct alloc_event *begin_event(__u32 probe, __u32 kind, __u64 arg) {
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (target_tgid && tgid != target_tgid)
		return NULL;
	count(&probe_hits, probe);
	struct alloc_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(&lost_events, 0);
		return NULL;
	}
	e->kind = kind;
	e->pid = tgid;
	e->ts_ns = bpf_ktime_get_ns();
	e->arg = arg;
	e->depth = 0;
	e->pad = 0;
	return e;
}

/* The runtime's own walk (fpTracebackPCs): pc = *(fp+8), fp = *fp. It ends
 * at a zero or unreadable frame pointer (the bottom of the goroutine). */
static __always_inline void walk_stack(struct pt_regs *ctx, struct alloc_event *e) {
	__u64 fp = GO_FP(ctx);
	__u32 n = 0;
	e->stack[n++] = go_return_address(ctx);
	for (int i = 1; i < ALLOC_STACK_DEPTH; i++) {
		__u64 frame[2] = {0, 0}; /* saved fp, return address */
		if (!fp || bpf_probe_read_user(frame, sizeof(frame), (void *)fp) != 0 || !frame[1])
			break;
		e->stack[i] = frame[1];
		n = i + 1;
		fp = frame[0];
	}
	e->depth = n;
}

static __always_inline int stack_event(struct pt_regs *ctx, __u32 probe, __u32 kind, __u64 arg) {
	if (!sampling_on) {
		__u32 tgid = bpf_get_current_pid_tgid() >> 32;
		if (!target_tgid || tgid == target_tgid)
			count(&probe_hits, probe);
		return 0;
	}
	struct alloc_event *e = begin_event(probe, kind, arg);
	if (!e)
		return 0;
	walk_stack(ctx, e);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(alloc_refill) {
	/* spanClass is a uint8 in the second integer register. */
	return stack_event(ctx, APROBE_REFILL, GO_ALLOC_REFILL, GO_ARG1(ctx) & 0xff);
}

SEC("uprobe")
int BPF_KPROBE(alloc_large) { return stack_event(ctx, APROBE_LARGE, GO_ALLOC_LARGE, GO_ARG1(ctx)); }

SEC("uprobe")
int BPF_KPROBE(alloc_growslice) {
	return stack_event(ctx, APROBE_GROWSLICE, GO_ALLOC_GROWSLICE, 0);
}

SEC("uprobe")
int BPF_KPROBE(alloc_malloc) {
	return stack_event(ctx, APROBE_MALLOC, GO_ALLOC_MALLOC, GO_ARG0(ctx));
}

SEC("uprobe")
int BPF_KPROBE(gc_start) {
	struct alloc_event *e = begin_event(APROBE_GC_START, GO_ALLOC_GC_START, GO_ARG0(ctx));
	if (e)
		bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(gc_end) {
	struct alloc_event *e = begin_event(APROBE_GC_END, GO_ALLOC_GC_END, 0);
	if (e)
		bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

// SPDX-License-Identifier: GPL-2.0
/* Goroutine lifecycle probes for one Go process (see shared go-runtime.md
 * §2–§4 and §10):
 *  - create: a plain uprobe on the RET of runtime.newproc1 (never a
 *    uretprobe: it would patch a return address on a Go stack). newproc1 runs
 *    on g0, so at the RET the new g is in the result register with goid,
 *    gopc, startpc and (1.21+) parentGoid written.
 *  - exit: entry of runtime.gdestroy (1.22+) or runtime.goexit0 (1.19–1.21),
 *    on g0, with the dying g as the first argument.
 *  - park: runtime.gopark after its stack check (an entry probe would fire
 *    twice when morestack re-enters the function), on the parking goroutine.
 *  - ready: runtime.ready entry, on g0, with the woken g as first argument.
 * Every struct offset comes from user space (symbols/) through rodata; none
 * is hard-coded here. */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "goroutines.h"

const volatile __u32 target_tgid = 0; /* 0: any process */
const volatile __u64 g_goid_offset = 0;
const volatile __u64 g_gopc_offset = 0;
const volatile __u64 g_startpc_offset = 0;
const volatile __u64 g_m_offset = 0;
const volatile __u64 m_curg_offset = 0;
/* runtime.g.parentGoid exists from Go 1.21; before it the parent is the
 * goroutine g0 is running for (g0.m.curg) at newproc1's RET. */
const volatile bool has_parent_goid = false;
const volatile __u64 g_parent_goid_offset = 0;

#define PROBE_COUNTERS PROBE_COUNT
#include "go_probe_common.bpf.h"

/* Filters on the target, counts the hit and reserves an event; NULL if this
 * is another process or the ring buffer is full (counted as lost). */
static __always_inline struct goroutine_event *begin_event(__u32 probe, __u32 kind) {
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (target_tgid && tgid != target_tgid)
		return NULL;
	count(&probe_hits, probe);
	struct goroutine_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(&lost_events, 0);
		return NULL;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->kind = kind;
	e->pid = tgid;
	e->ts_ns = bpf_ktime_get_ns();
	return e;
}

SEC("uprobe")
int BPF_KPROBE(goroutine_create) {
	struct goroutine_event *e = begin_event(PROBE_CREATE, GOROUTINE_CREATE);
	if (!e)
		return 0;
	__u64 newg = GO_ARG0(ctx);
	e->goid = read_u64(newg + g_goid_offset);
	e->pc = read_u64(newg + g_gopc_offset);
	e->start_pc = read_u64(newg + g_startpc_offset);
	if (has_parent_goid) {
		e->parent_goid = read_u64(newg + g_parent_goid_offset);
	} else {
		/* Go 1.19/1.20: newproc1 runs on g0 via systemstack, so the
		 * creator is the g its M was running. Nil during runtime start-up,
		 * when the main goroutine itself is created from g0. */
		__u64 m = read_u64(GO_G(ctx) + g_m_offset);
		__u64 curg = m ? read_u64(m + m_curg_offset) : 0;
		e->parent_goid = curg ? read_u64(curg + g_goid_offset) : 0;
	}
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(goroutine_exit) {
	struct goroutine_event *e = begin_event(PROBE_EXIT, GOROUTINE_EXIT);
	if (!e)
		return 0;
	/* The g is still intact at entry (teardown clears fields later, but
	 * never goid), so the exit carries its site too: a goroutine created
	 * before attach can be attributed without the census. */
	__u64 gp = GO_ARG0(ctx);
	e->goid = read_u64(gp + g_goid_offset);
	e->pc = read_u64(gp + g_gopc_offset);
	e->start_pc = read_u64(gp + g_startpc_offset);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(goroutine_park) {
	struct goroutine_event *e = begin_event(PROBE_PARK, GOROUTINE_PARK);
	if (!e)
		return 0;
	/* gopark(unlockf, lock, reason waitReason, ...): reason is a uint8 in
	 * the third integer register (CL on amd64) in every Go version. */
	e->goid = read_u64(GO_G(ctx) + g_goid_offset);
	e->wait_reason = GO_ARG2(ctx) & 0xff;
	e->pc = go_return_address(ctx);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(goroutine_ready) {
	struct goroutine_event *e = begin_event(PROBE_READY, GOROUTINE_READY);
	if (!e)
		return 0;
	e->goid = read_u64(GO_ARG0(ctx) + g_goid_offset);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

// SPDX-License-Identifier: GPL-2.0
/* The smallest probe that proves the BPF build chain end to end on a Go
 * target: an entry uprobe on a Go function that counts its hits and reports
 * the current goroutine's goid, the first ABIInternal argument and the
 * return address through a ring buffer. The goid offset in runtime.g comes
 * from user space (symbols/), never from this file. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "selftest.h"

const volatile __u32 target_tgid = 0;     /* 0: any process */
const volatile __u64 g_goid_offset = 152; /* runtime.g.goid, set before load */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} hits SEC(".maps");

SEC("uprobe")
int BPF_KPROBE(selftest_entry)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	if (target_tgid && tgid != target_tgid)
		return 0;

	__u32 zero = 0;
	__u64 *count = bpf_map_lookup_elem(&hits, &zero);
	if (count)
		__sync_fetch_and_add(count, 1);

	struct selftest_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	e->pid = tgid;
	e->tid = (__u32)id;
#if defined(__TARGET_ARCH_x86)
	/* Go's ABIInternal keeps the current g in R14 and the first integer
	 * argument in RAX. */
	__u64 g = ctx->r14;
	e->arg0 = ctx->ax;
	bpf_probe_read_user(&e->ret_pc, sizeof(e->ret_pc), (void *)ctx->sp);
#else
	__u64 g = ctx->regs[28];
	e->arg0 = ctx->regs[0];
	e->ret_pc = ctx->regs[30];
#endif
	e->goid = 0;
	bpf_probe_read_user(&e->goid, sizeof(e->goid), (void *)(g + g_goid_offset));
	bpf_ringbuf_submit(e, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

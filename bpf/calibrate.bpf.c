// SPDX-License-Identifier: GPL-2.0
/* The probe goroscope times at start-up to learn what one uprobe hit costs
 * on this machine (daemon/uprobe_calibration). It does what a typical
 * goroscope probe does once the trap has happened — filter on the process,
 * count the hit, read target memory, reserve, fill and submit a ring buffer
 * event — so the measured cost is the trap plus a realistic handler. */
#include "vmlinux.h"

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

const volatile __u32 target_tgid = 0;

#define PROBE_COUNTERS 1
#include "go_probe_common.bpf.h"

struct calibrate_event {
	__u64 ts_ns;
	__u64 words[6];
};

SEC("uprobe")
int BPF_KPROBE(calibrate_hit) {
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (target_tgid && tgid != target_tgid)
		return 0;
	count(&probe_hits, 0);
	struct calibrate_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count(&lost_events, 0);
		return 0;
	}
	e->ts_ns = bpf_ktime_get_ns();
	__u64 sp = PT_REGS_SP(ctx);
	for (int i = 0; i < 6; i++)
		e->words[i] = read_u64(sp + 8 * i);
	bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";

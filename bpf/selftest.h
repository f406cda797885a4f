/* Shared between bpf/selftest.bpf.c and its loader: the event a probe hit
 * produces. Plain fixed-width fields only, no logic. */
#ifndef GOROSCOPE_BPF_SELFTEST_H
#define GOROSCOPE_BPF_SELFTEST_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

struct selftest_event {
	__u32 pid;
	__u32 tid;
	__u64 goid;    /* read from the current g (R14 on amd64) */
	__u64 arg0;    /* first integer argument (RAX on amd64, ABIInternal) */
	__u64 ret_pc;  /* caller's return address, [RSP] at entry */
};

#endif

/* What every goroscope probe family shares on the BPF side: the event ring
 * buffer, per-probe hit counters (what the overhead estimate multiplies by
 * the cost of one hit), the lost-event counter, and Go's register ABI.
 * Include after vmlinux.h and the libbpf headers; define PROBE_COUNTERS to the
 * family's number of probe ids first. */
#ifndef GOROSCOPE_BPF_GO_PROBE_COMMON_H
#define GOROSCOPE_BPF_GO_PROBE_COMMON_H

#ifndef PROBE_COUNTERS
#error "define PROBE_COUNTERS (the family's probe id count) before including go_probe_common.bpf.h"
#endif

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); /* resized by user space before load */
} events SEC(".maps");

/* Hits per probe id. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PROBE_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} probe_hits SEC(".maps");

/* Events dropped because the ring buffer was full. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost_events SEC(".maps");

/* A u64 of the target's memory, 0 if unreadable. */
static __always_inline __u64 read_u64(__u64 addr)
{
	__u64 v = 0;
	bpf_probe_read_user(&v, sizeof(v), (void *)addr);
	return v;
}

/* Adds one to a per-CPU counter (probe_hits, lost_events). */
static __always_inline void count(void *map, __u32 index)
{
	__u64 *n = bpf_map_lookup_elem(map, &index);
	if (n)
		__sync_fetch_and_add(n, 1);
}

/* Go ABIInternal (src/cmd/compile/abi-internal.md, Go 1.17+): integer
 * arguments and results in RAX, RBX, RCX, RDI, RSI (amd64) or R0-R4 (arm64);
 * the current g in R14 / R28; the frame pointer in RBP / R29; at a function's
 * entry the return address is at [RSP] (amd64) or in LR (arm64). A uint8
 * argument is the low byte of its register. */
#if defined(__TARGET_ARCH_x86)
#define GO_ARG0(ctx) ((ctx)->ax)
#define GO_ARG1(ctx) ((ctx)->bx)
#define GO_ARG2(ctx) ((ctx)->cx)
#define GO_ARG3(ctx) ((ctx)->di)
#define GO_G(ctx) ((ctx)->r14)
#define GO_FP(ctx) ((ctx)->bp)
static __always_inline __u64 go_return_address(struct pt_regs *ctx)
{
	__u64 pc = 0;
	bpf_probe_read_user(&pc, sizeof(pc), (void *)ctx->sp);
	return pc;
}
#elif defined(__TARGET_ARCH_arm64)
#define GO_ARG0(ctx) ((ctx)->regs[0])
#define GO_ARG1(ctx) ((ctx)->regs[1])
#define GO_ARG2(ctx) ((ctx)->regs[2])
#define GO_ARG3(ctx) ((ctx)->regs[3])
#define GO_G(ctx) ((ctx)->regs[28])
#define GO_FP(ctx) ((ctx)->regs[29])
static __always_inline __u64 go_return_address(struct pt_regs *ctx) { return ctx->regs[30]; }
#else
#error "goroscope's probes know Go's register mapping for x86 (amd64) and arm64 only"
#endif

#endif

// uprobe_multi links (Linux 6.6+): one BPF link attaches a program to many
// offsets of one file, for one process, and its release removes every
// breakpoint at once, then waits one RCU grace period. Perf-event uprobes
// (libbpf's bpf_program__attach_uprobe) are released one at a time under the
// kernel's global event_mutex, each waiting its own grace period (0.1-0.25 s
// on 6.12+), and a disabled perf uprobe keeps its breakpoint — the target
// keeps trapping, uncounted, until its turn comes: measured here as ~0.5 s of
// a hot loop's CPU per detach of the five timer probes. The overhead
// governor detaches hot probe groups every cycle, so it needs these.
//
// libbpf 1.1 (Debian bookworm) predates them: the link is created with the
// bpf(2) system call directly, and a program must be loaded with
// expected_attach_type BPF_TRACE_UPROBE_MULTI to be attachable this way
// (and then only this way).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "symbols/result.h"

struct bpf_program;

namespace goroscope {

// Whether this kernel takes uprobe_multi links: tried once per process (a
// tiny program attached to a function of goroscope itself), then remembered.
bool uprobe_multi_supported();

// Marks a program, before its object is loaded, for uprobe_multi_attach.
void prepare_uprobe_multi(bpf_program* program);

// Attaches `program` at every file offset of `path` for process `pid`;
// returns the link's file descriptor (close it to detach).
Result<int> uprobe_multi_attach(bpf_program* program, const std::string& path, const std::vector<uint64_t>& offsets,
                                pid_t pid);

}  // namespace goroscope

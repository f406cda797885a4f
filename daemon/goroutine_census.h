// GoroutineCensus: reads the Go runtime's own goroutine table (runtime.allgs)
// out of a live process with process_vm_readv — no ptrace stop, no probe — so
// goroutines that existed before attach are seen. For each live goroutine:
// goid, status, wait reason, creation PC (gopc), start PC and the PC of its
// blocking frame: the first frame outside the runtime, found by walking the
// saved frame pointers from g.sched.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "symbols/go_binary.h"
#include "symbols/result.h"

namespace goroscope {

// Go's g status values (runtime2.go); _Gscan (0x1000) is masked off.
// Leaked (only under GOEXPERIMENT=goroutineleakprofile) and DeadExtra (a dead
// g parked on a cgo extra M) are new in Go 1.26.
enum class GStatus : uint32_t {
  Idle = 0, Runnable = 1, Running = 2, Syscall = 3, Waiting = 4, Dead = 6, Copystack = 8, Preempted = 9,
  Leaked = 10, DeadExtra = 11,
};

struct GoroutineRecord {
  uint64_t goid = 0;
  uint64_t parent_goid = 0;   // 0 before Go 1.21 (no field)
  uint32_t status = 0;        // GStatus value, _Gscan masked off
  uint8_t wait_reason = 0;    // meaningful when status == Waiting
  uint64_t gopc = 0;          // link-time address (load bias removed)
  uint64_t start_pc = 0;      // link-time address
  uint64_t block_pc = 0;      // link-time return address of the first non-runtime frame; 0 if unknown
  int64_t wait_since = 0;     // g.waitsince (set by the GC only; informational)
};

struct CensusStats {
  uint64_t allglen = 0;       // entries in allgs, dead included
  uint64_t live = 0;
  double seconds = 0;         // wall time the snapshot took
};

class GoroutineCensus {
 public:
  // Locates runtime.allgs (.symtab, or for stripped binaries from the
  // RIP-relative operands of runtime.allgadd, validated against the live
  // process) and the load bias (PIE). NotFound with a plain reason if the
  // table cannot be found: the census is then unavailable, not guessed.
  static Result<std::unique_ptr<GoroutineCensus>> open(pid_t pid, std::shared_ptr<const GoBinary> binary);

  // All goroutines that are not dead. Io error if the process is gone.
  Result<std::vector<GoroutineRecord>> snapshot(CensusStats* stats = nullptr);

  uint64_t load_bias() const { return load_bias_; }
  uint64_t allgs_address() const { return allgs_; }  // link-time address of runtime.allgs

 private:
  // Byte offsets of the runtime.g fields the census reads, for this binary.
  struct GLayout {
    uint64_t goid = 0, status = 0, wait_reason = 0, wait_since = 0, gopc = 0, start_pc = 0;
    uint64_t sched_sp = 0, sched_pc = 0, sched_bp = 0, stack_lo = 0, stack_hi = 0;
    std::optional<uint64_t> parent_goid;  // Go 1.21+
    uint64_t span = 0;                    // bytes of a g that hold all of the above
  };
  struct Walk;

  GoroutineCensus() = default;
  Result<std::vector<uint64_t>> read_allgs() const;
  std::optional<Error> find_block_pcs(std::vector<Walk>& walks, std::vector<GoroutineRecord>& records);
  std::optional<Error> read_chunk(std::span<const uint64_t> gs, bool syscall_bp_saved,
                                  std::vector<GoroutineRecord>& records);
  static constexpr size_t kChunk = 16384;  // goroutines read per round
  // Memoized per link-time PC (PCs repeat across goroutines and snapshots).
  uint8_t frame_flags(uint64_t sym_pc);
  uint64_t resume_lookup_pc(uint64_t pc);
  bool returns_from_morestack(uint64_t pc);

  pid_t pid_ = 0;
  std::shared_ptr<const GoBinary> binary_;
  uint64_t load_bias_ = 0;
  uint64_t allgs_ = 0;
  GLayout layout_;
  std::vector<uint64_t> morestack_entries_;
  std::unordered_map<uint64_t, uint8_t> frame_flags_;
  std::unordered_map<uint64_t, uint64_t> resume_lookup_pcs_;
  std::unordered_map<uint64_t, bool> morestack_returns_;
  // Read buffers, kept across snapshots: 100,000 goroutines need tens of
  // megabytes, and faulting those pages in anew each time costs more than
  // reading them.
  std::vector<uint8_t> g_buf_, stack_buf_;
};

// The source frame a block_pc stands for: the innermost frame at block_pc-1
// outside the packages a goroutine blocks inside of (runtime, internal/*,
// sync, sync/atomic, time) — the same test the census walk stops on. Not
// simply the innermost frame: sync.(*Mutex).Lock is inlined into its caller,
// so there frames(block_pc-1) starts in sync/mutex.go. Empty if block_pc is
// 0 or names no such frame.
SourceFrame blocking_frame(const Pclntab& pclntab, uint64_t block_pc);

// The load bias of a running executable: runtime address - link-time address
// (0 for non-PIE). Read from /proc/PID/maps.
Result<uint64_t> read_load_bias(pid_t pid, const ElfImage& elf);

}  // namespace goroscope

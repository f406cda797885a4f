#include "daemon/goroutine_census.h"
#include "symbols/machine_code.h"

#include <elf.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <set>
#include <string_view>

#include "daemon/process_memory.h"

namespace goroscope {

namespace {

constexpr uint32_t kGscan = 0x1000;
// A []*g longer than this is not the runtime's goroutine table: a process
// with 10^8 goroutines would need at least 200 GB of stacks.
constexpr uint64_t kMaxAllgs = 100'000'000;
// Frames walked per goroutine before giving up on finding user code.
constexpr int kMaxFrames = 32;
// gs sit 400-500 bytes apart in the heap (one size class) and only the
// first ~300 bytes of each are read: reading the rest, or an object between
// two gs, is cheaper than another iovec (see ProcessMemory::read_batch).
constexpr size_t kMergeGap = 2048;

// frame_flags() bits.
constexpr uint8_t kUserFrame = 1;   // some (inlined) frame at this PC is outside the runtime packages
constexpr uint8_t kInjected = 2;    // sigpanic/asyncPreempt/debugCallV2: the caller's PC is exact, not a return address
constexpr uint8_t kNoFunction = 4;  // the PC is in no function: the chain is broken

struct SliceHeader {
  uint64_t ptr = 0, len = 0, cap = 0;
};

std::string hex(uint64_t v) {
  char buf[32];
  snprintf(buf, sizeof buf, "%#llx", static_cast<unsigned long long>(v));
  return buf;
}

// "sync.(*Mutex).Lock" -> "sync", "internal/poll.(*FD).Read" ->
// "internal/poll", "sync/atomic.(*Pointer[...]).Load" -> "sync/atomic".
std::string_view package_of(std::string_view name) {
  name = name.substr(0, name.find('['));
  size_t slash = name.rfind('/');
  size_t dot = name.find('.', slash == std::string_view::npos ? 0 : slash + 1);
  return name.substr(0, dot);
}

// The packages a goroutine blocks *inside* of rather than *at*: its blocking
// frame is the first frame outside them. runtime/internal/* held the
// runtime's atomics and syscalls up to Go 1.22 (internal/runtime/* since);
// internal/* also covers internal/sync (sync.Mutex's slow path from 1.24) and
// internal/poll.
bool is_runtime_package(std::string_view pkg) {
  return pkg == "runtime" || pkg.starts_with("runtime/internal/") || pkg.starts_with("internal/") || pkg == "sync" ||
         pkg == "sync/atomic" || pkg == "time";
}

uint64_t load_u64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

}  // namespace

SourceFrame blocking_frame(const Pclntab& pclntab, uint64_t block_pc) {
  if (!block_pc) return {};
  for (const SourceFrame& f : pclntab.frames(block_pc - 1))
    if (!is_runtime_package(package_of(f.function))) return f;
  return {};
}

Result<uint64_t> read_load_bias(pid_t pid, const ElfImage& elf) {
  const std::string proc = "/proc/" + std::to_string(pid);
  struct stat st {};
  if (stat((proc + "/exe").c_str(), &st) != 0) {
    if (errno == EACCES || errno == EPERM)
      return Error{ErrorKind::Io, "permission denied reading " + proc + "/exe (run as root or with CAP_SYS_PTRACE)"};
    return Error{ErrorKind::Io, "process " + std::to_string(pid) + " has exited or has no executable"};
  }
  char link[4096];
  ssize_t n = readlink((proc + "/exe").c_str(), link, sizeof link - 1);
  const std::string exe_name = n > 0 ? std::string(link, n) : std::string();

  std::ifstream maps(proc + "/maps");
  if (!maps) return Error{ErrorKind::Io, "cannot read " + proc + "/maps"};
  std::optional<uint64_t> start;
  std::string line;
  while (std::getline(maps, line)) {
    unsigned long long lo = 0, hi = 0, offset = 0, inode = 0;
    unsigned dev_major = 0, dev_minor = 0;
    char perms[8];
    int path_at = 0;
    if (sscanf(line.c_str(), "%llx-%llx %7s %llx %x:%x %llu %n", &lo, &hi, perms, &offset, &dev_major, &dev_minor,
               &inode, &path_at) < 7)
      continue;
    if (offset != 0) continue;
    // The executable is recognised by its identity, not by the path
    // goroscope opened it through (a container's binary is not at the path
    // the container sees). On overlayfs (container images) maps may report
    // the underlying file's device and inode; then the name as
    // /proc/PID/exe renders it, the same kernel rendering as maps, matches.
    bool same_file = inode == st.st_ino && dev_major == major(st.st_dev) && dev_minor == minor(st.st_dev);
    bool same_name = !exe_name.empty() && path_at > 0 && std::string_view(line).substr(path_at) == exe_name;
    if (same_file || same_name) {
      start = lo;
      break;
    }
  }
  if (!start) return Error{ErrorKind::NotFound, "no mapping of the executable at file offset 0 in " + proc + "/maps"};

  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  for (const ElfSegment& seg : elf.segments()) {
    if (seg.type != PT_LOAD || (seg.offset & ~(page - 1)) != 0) continue;
    // The kernel maps the page holding p_offset 0 at bias + (p_vaddr rounded
    // down to a page); for non-PIE executables bias is 0.
    return *start - (seg.vaddr & ~(page - 1));
  }
  return Error{ErrorKind::Corrupt, elf.path() + ": no PT_LOAD segment at file offset 0"};
}

Result<std::unique_ptr<GoroutineCensus>> GoroutineCensus::open(pid_t pid, std::shared_ptr<const GoBinary> binary) {
  if (!binary) return Error{ErrorKind::NotFound, "census unavailable: no binary"};
  std::unique_ptr<GoroutineCensus> c(new GoroutineCensus());
  c->pid_ = pid;
  c->binary_ = std::move(binary);
  const GoBinary& bin = *c->binary_;

  auto bias = read_load_bias(pid, bin.elf());
  if (!bias) return bias.error();
  c->load_bias_ = *bias;

  // Every field, DWARF or table, checked once against sizeof(g) here so
  // that decoding a g later is plain loads from a buffer of that size.
  const StructOffsets& offs = bin.offsets();
  GLayout& l = c->layout_;
  uint64_t g_size = 0;
  try {
    uint64_t sched = offs.at("runtime.g.sched"), stack = offs.at("runtime.g.stack");
    g_size = offs.at("runtime.g");
    l.goid = offs.at("runtime.g.goid");
    l.status = offs.at("runtime.g.atomicstatus");
    l.wait_reason = offs.at("runtime.g.waitreason");
    l.wait_since = offs.at("runtime.g.waitsince");
    l.gopc = offs.at("runtime.g.gopc");
    l.start_pc = offs.at("runtime.g.startpc");
    l.sched_sp = sched + offs.at("runtime.gobuf.sp");
    l.sched_pc = sched + offs.at("runtime.gobuf.pc");
    l.sched_bp = sched + offs.at("runtime.gobuf.bp");
    l.stack_lo = stack + offs.at("runtime.stack.lo");
    l.stack_hi = stack + offs.at("runtime.stack.hi");
  } catch (const ParseError& e) {
    return Error{ErrorKind::NotFound, std::string("census unavailable: ") + e.what()};
  }
  if (bin.go_version().minor >= 21) {
    auto parent = offs.get("runtime.g.parentGoid");
    if (!parent) return Error{ErrorKind::NotFound, "census unavailable: offset runtime.g.parentGoid unknown"};
    l.parent_goid = parent->value;
  }
  for (uint64_t end :
       {l.goid + 8, l.status + 4, l.wait_reason + 1, l.wait_since + 8, l.gopc + 8, l.start_pc + 8, l.sched_sp + 8,
        l.sched_pc + 8, l.sched_bp + 8, l.stack_lo + 8, l.stack_hi + 8, l.parent_goid.value_or(0) + 8}) {
    if (end > g_size)
      return Error{ErrorKind::Corrupt,
                   "census unavailable: runtime.g offsets run past sizeof(g) = " + std::to_string(g_size)};
    l.span = std::max(l.span, end);
  }

  for (const char* name : {"runtime.morestack", "runtime.morestack_noctxt"})
    if (auto f = bin.pclntab().func_by_name(name)) c->morestack_entries_.push_back(f->entry);

  // Fail on an unreadable process here, with its reason, rather than as
  // "allgs not found" below: read the ELF header the kernel mapped.
  ProcessMemory mem(pid);
  for (const ElfSegment& seg : bin.elf().segments()) {
    if (seg.type != PT_LOAD || seg.offset != 0) continue;
    auto magic = mem.read_value<uint32_t>(seg.vaddr + c->load_bias_);
    if (!magic) return magic.error();
    break;
  }

  if (auto sym = bin.elf().symbol("runtime.allgs")) {
    c->allgs_ = sym->value;
    return c;
  }

  // Stripped: allgadd is the one function that appends to allgs (in every
  // version 1.19-1.26: lock(&allglock); allgs = append(allgs, gp); update
  // allgptr and allglen). Its RIP-relative operands name allglock, allgs,
  // allgs+8 (len), allgs+16 (cap), allgptr, allglen and writeBarrier. A
  // slice header is an operand whose +8 is one too; it is allgs if the live
  // process agrees: a sane header whose first g is the main goroutine
  // (goid 1), the first g newproc1 ever adds.
  auto allgadd = bin.pclntab().func_by_name("runtime.allgadd");
  if (allgadd && bin.elf().arch() == Arch::Amd64) {
    std::vector<uint64_t> operands = rip_relative_operands(bin.elf(), *allgadd);
    std::set<uint64_t> addresses(operands.begin(), operands.end());
    for (uint64_t candidate : addresses) {
      if (!addresses.count(candidate + 8)) continue;
      auto h = mem.read_value<SliceHeader>(candidate + c->load_bias_);
      if (!h || h->ptr == 0 || h->len == 0 || h->len > h->cap || h->cap >= kMaxAllgs) continue;
      auto first_g = mem.read_value<uint64_t>(h->ptr);
      if (!first_g || *first_g == 0) continue;
      auto goid = mem.read_value<uint64_t>(*first_g + l.goid);
      if (goid && *goid == 1) {
        c->allgs_ = candidate;
        return c;
      }
    }
  }
  return Error{ErrorKind::NotFound, "census unavailable: runtime.allgs not found (stripped binary)"};
}

// allgs only grows, by append under allglock; a reader outside the process
// cannot take the lock. The header is read before and after the array: if
// the array did not move, the entries read are gs (a concurrent append only
// adds past the length read first). If it moved, or the header was read
// half-updated (append writes cap, ptr, len in turn), read again.
Result<std::vector<uint64_t>> GoroutineCensus::read_allgs() const {
  ProcessMemory mem(pid_);
  const uint64_t header_at = allgs_ + load_bias_;
  std::string problem;
  for (int attempt = 0; attempt < 4; attempt++) {
    auto h = mem.read_value<SliceHeader>(header_at);
    if (!h) return h.error();
    if (h->len == 0) return std::vector<uint64_t>{};
    if (h->ptr == 0 || h->len > h->cap || h->cap >= kMaxAllgs) {
      problem = "runtime.allgs at " + hex(header_at) + " is not a slice header (ptr " + hex(h->ptr) + ", len " +
                std::to_string(h->len) + ", cap " + std::to_string(h->cap) + ")";
      continue;
    }
    std::vector<uint64_t> gs(h->len);
    auto r = mem.read(h->ptr, gs.data(), gs.size() * sizeof(uint64_t));
    if (!r) return r.error();
    auto again = mem.read_value<SliceHeader>(header_at);
    if (!again) return again.error();
    if (again->ptr == h->ptr) return gs;
    problem = "runtime.allgs kept moving while being read (goroutines being created very fast)";
  }
  return Error{ErrorKind::Corrupt, problem};
}

// One goroutine's frame-pointer walk, between two batched reads.
struct GoroutineCensus::Walk {
  size_t record = 0;        // index into the snapshot's records
  uint64_t fp = 0;          // frame pointer whose saved (caller fp, return PC) pair comes next
  uint64_t pc_slot = 0;     // if set: the next PC is stored here instead, and fp is kept (morestack)
  uint64_t lo = 0, hi = 0;  // the goroutine's stack
  bool exact = false;       // the next PC is exact rather than a return address
  int depth = 0;            // frames looked at so far
};

uint8_t GoroutineCensus::frame_flags(uint64_t sym_pc) {
  auto it = frame_flags_.find(sym_pc);
  if (it != frame_flags_.end()) return it->second;
  uint8_t flags = 0;
  std::vector<SourceFrame> frames = binary_->pclntab().frames(sym_pc);
  if (frames.empty()) {
    flags = kNoFunction;
  } else {
    for (const SourceFrame& f : frames)
      if (!is_runtime_package(package_of(f.function))) flags |= kUserFrame;
    std::string_view physical = frames.back().function;
    if (physical == "runtime.sigpanic" || physical == "runtime.asyncPreempt" || physical == "runtime.debugCallV2")
      flags |= kInjected;
  }
  frame_flags_.emplace(sym_pc, flags);
  return flags;
}

// g.sched.pc is where a goroutine resumes: in gopark just after its call to
// mcall for a parked one, at the entry of its function for one never run.
// Go's unwinder looks up pc-1 unless pc is the function's entry (symPC in
// traceback.go); so does this. 0: pc is in no function.
uint64_t GoroutineCensus::resume_lookup_pc(uint64_t pc) {
  auto it = resume_lookup_pcs_.find(pc);
  if (it != resume_lookup_pcs_.end()) return it->second;
  uint64_t sym = 0;
  if (auto func = binary_->pclntab().find_func(pc)) sym = pc > func->entry ? pc - 1 : pc;
  resume_lookup_pcs_.emplace(pc, sym);
  return sym;
}

// A goroutine descheduled at a stack-growth check (morestack -> newstack ->
// preemption, Go 1.19-1.26) has g.sched.pc just after `CALL
// runtime.morestack*` in the prologue of f, before f pushed its frame
// pointer: g.sched.bp is still f's caller's frame. f's return address is at
// g.sched.sp (morestack stores f's SP at entry). Without this, the walk
// would skip f's caller.
bool GoroutineCensus::returns_from_morestack(uint64_t pc) {
  if (binary_->elf().arch() != Arch::Amd64 || morestack_entries_.empty()) return false;
  auto it = morestack_returns_.find(pc);
  if (it != morestack_returns_.end()) return it->second;
  bool result = false;
  if (auto call = binary_->elf().read_vaddr(pc - 5, 5, "call before " + hex(pc)); call && call->u8(0) == 0xe8) {
    uint64_t target = pc + static_cast<int64_t>(call->i32(1));
    result = std::find(morestack_entries_.begin(), morestack_entries_.end(), target) != morestack_entries_.end();
  }
  morestack_returns_.emplace(pc, result);
  return result;
}

// Level-synchronous frame-pointer walk. Each round reads, for every
// goroutine still walking, one window of its stack starting at the next
// frame record, in one batch; the walk then follows the chain inside the
// window as far as it goes. The kernel's cost is per read, not per byte, and
// a parked goroutine's first user frame is usually a few hundred bytes above
// g.sched.bp (the whole stack above it is 264 bytes for a chan send, 456 for
// a select in startupleak), so most goroutines need one read in all.
// The stack is read a moment after the g: a goroutine that ran in between
// no longer has the frames its g.sched describes, and its chain then mostly
// breaks (block_pc 0; about 1 in 5,000 lock waiters in mutexcontention).
std::optional<Error> GoroutineCensus::find_block_pcs(std::vector<Walk>& walks, std::vector<GoroutineRecord>& records) {
  constexpr uint64_t kWindow = 1024;
  ProcessMemory mem(pid_);
  std::vector<RemoteRead> reads;
  std::vector<uint8_t> filled;
  std::vector<Walk> next;
  while (!walks.empty()) {
    reads.clear();
    size_t total = 0;
    for (const Walk& w : walks) {
      const uint64_t start = w.pc_slot ? w.pc_slot : w.fp;
      reads.push_back(RemoteRead{start, std::min(w.hi, start + kWindow) - start, nullptr});
      total += reads.back().size;
    }
    if (stack_buf_.size() < total) stack_buf_.resize(total);
    total = 0;
    for (RemoteRead& r : reads) {
      r.dest = stack_buf_.data() + total;
      total += r.size;
    }
    if (auto r = mem.read_batch(reads, filled); !r) return r.error();

    next.clear();
    for (size_t k = 0; k < walks.size(); k++) {
      if (!filled[k]) continue;
      const uint64_t start = reads[k].address, end = start + reads[k].size;
      const uint8_t* window = static_cast<const uint8_t*>(reads[k].dest);
      Walk w = walks[k];
      for (;;) {
        // Invariant: the slot(s) about to be read lie inside the window.
        const uint64_t at = w.pc_slot ? w.pc_slot : w.fp;
        const uint64_t pc = load_u64(window + (at - start) + (w.pc_slot ? 0 : 8));
        const uint64_t caller_fp = w.pc_slot ? w.fp : load_u64(window + (at - start));
        if (pc <= load_bias_) break;
        const uint64_t sym = w.exact ? pc - load_bias_ : pc - load_bias_ - 1;
        const uint8_t flags = frame_flags(sym);
        if (flags & kNoFunction) break;
        if (flags & kUserFrame) {
          records[w.record].block_pc = sym + 1;
          break;
        }
        // Callers' frames lie above (the stack grows down); a pointer that
        // does not go up, or leaves the stack, ends a stale or torn chain,
        // and 0 ends the chain itself (the goexit frame).
        if (w.depth + 1 >= kMaxFrames || caller_fp <= at || caller_fp % 8 || caller_fp + 16 > w.hi) break;
        w = Walk{w.record, caller_fp, 0, w.lo, w.hi, (flags & kInjected) != 0, w.depth + 1};
        if (caller_fp + 16 > end) {
          next.push_back(w);
          break;
        }
      }
    }
    walks.swap(next);
  }
  return std::nullopt;
}

// One chunk of the goroutine table: read the gs, decode them into records,
// and find their blocking frames.
std::optional<Error> GoroutineCensus::read_chunk(std::span<const uint64_t> gs, bool syscall_bp_saved,
                                                 std::vector<GoroutineRecord>& records) {
  // Only the prefix of each g holding the fields read. gs allocated one
  // after another sit next to each other in the heap (one size class), so
  // most reads merge into a few large ones.
  const GLayout& l = layout_;
  if (g_buf_.size() < gs.size() * l.span) g_buf_.resize(gs.size() * l.span);
  std::vector<RemoteRead> reads;
  reads.reserve(gs.size());
  for (size_t i = 0; i < gs.size(); i++)
    if (gs[i]) reads.push_back(RemoteRead{gs[i], l.span, g_buf_.data() + i * l.span});
  std::vector<uint8_t> filled;
  if (auto n = ProcessMemory(pid_).read_batch(reads, filled, kMergeGap); !n) return n.error();

  std::vector<Walk> walks;
  walks.reserve(reads.size());
  for (size_t r = 0; r < reads.size(); r++) {
    if (!filled[r]) continue;
    const uint8_t* g = static_cast<const uint8_t*>(reads[r].dest);
    const uint32_t status = load_u32(g + l.status) & ~kGscan;
    if (status == uint32_t(GStatus::Dead) || status == uint32_t(GStatus::DeadExtra)) continue;
    GoroutineRecord& rec = records.emplace_back();
    rec.goid = load_u64(g + l.goid);
    rec.parent_goid = l.parent_goid ? load_u64(g + *l.parent_goid) : 0;
    rec.status = status;
    rec.wait_reason = g[l.wait_reason];
    const uint64_t gopc = load_u64(g + l.gopc), start_pc = load_u64(g + l.start_pc);
    rec.gopc = gopc > load_bias_ ? gopc - load_bias_ : 0;
    rec.start_pc = start_pc > load_bias_ ? start_pc - load_bias_ : 0;
    rec.wait_since = static_cast<int64_t>(load_u64(g + l.wait_since));

    // A running goroutine's g.sched is whatever it was when it last
    // stopped; a copystack one's stack is moving under us.
    const GStatus s = GStatus(status);
    if (s != GStatus::Runnable && s != GStatus::Syscall && s != GStatus::Waiting && s != GStatus::Preempted &&
        s != GStatus::Leaked)
      continue;
    const uint64_t sched_pc = load_u64(g + l.sched_pc), sched_sp = load_u64(g + l.sched_sp);
    const uint64_t sched_bp = load_u64(g + l.sched_bp);
    const uint64_t lo = load_u64(g + l.stack_lo), hi = load_u64(g + l.stack_hi);
    if (sched_pc <= load_bias_ || lo >= hi) continue;

    const uint64_t pc = sched_pc - load_bias_;
    const uint64_t sym = resume_lookup_pc(pc);
    if (!sym) continue;
    const uint8_t flags = frame_flags(sym);
    if (flags & kUserFrame) {
      rec.block_pc = sym + 1;
      continue;
    }
    if (s == GStatus::Syscall && !syscall_bp_saved) continue;
    // g.sched.bp is the frame pointer of that innermost function (mcall
    // stores its caller's BP: BP itself in 1.19/1.20, *BP from 1.21 when
    // mcall got a frame of its own), except after morestack.
    Walk w{records.size() - 1, sched_bp, 0, lo, hi, (flags & kInjected) != 0, 1};
    if (returns_from_morestack(pc)) {
      if (sched_sp < lo || sched_sp + 8 > hi || sched_bp <= sched_sp) continue;
      w.pc_slot = sched_sp;
    } else if (sched_bp % 8 || sched_bp < lo || sched_bp + 16 > hi) {
      continue;
    }
    walks.push_back(w);
  }
  return find_block_pcs(walks, records);

}

Result<std::vector<GoroutineRecord>> GoroutineCensus::snapshot(CensusStats* stats) {
  const auto started = std::chrono::steady_clock::now();
  auto gs = read_allgs();
  if (!gs) return gs.error();

  // The table is read in chunks so that goroscope's buffers stay bounded
  // (about kChunk x (g prefix + one stack window), ~25 MB) however many
  // goroutines the target has: a goroutine bomb must not grow the engine.
  const bool syscall_bp_saved = binary_->go_version().minor >= 23;
  std::vector<GoroutineRecord> records;
  for (size_t first = 0; first < gs->size(); first += kChunk) {
    const size_t count = std::min(kChunk, gs->size() - first);
    if (auto err = read_chunk(std::span<const uint64_t>(gs->data() + first, count), syscall_bp_saved, records))
      return *err;
  }

  if (stats) {
    stats->allglen = gs->size();
    stats->live = records.size();
    stats->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  }
  return records;
}

}  // namespace goroscope

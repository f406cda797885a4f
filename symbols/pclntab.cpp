#include "symbols/pclntab.h"

#include <elf.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <mutex>

namespace goroscope {

namespace {

// pcHeader magics (internal/abi/symtab.go). Only the last two are readable.
constexpr uint32_t kMagicGo12 = 0xfffffffb;   // Go 1.2 - 1.15
constexpr uint32_t kMagicGo116 = 0xfffffffa;  // Go 1.16, 1.17
constexpr uint32_t kMagicGo118 = 0xfffffff0;  // Go 1.18, 1.19
constexpr uint32_t kMagicGo120 = 0xfffffff1;  // Go 1.20 and later

// pcHeader (64-bit). Every *Offset is relative to the header itself.
constexpr uint64_t kHdrNfunc = 8;
constexpr uint64_t kHdrTextStart = 24;  // 0 in the file since Go 1.26 (the field became `_`)
constexpr uint64_t kHdrFuncnameOffset = 32;
constexpr uint64_t kHdrCuOffset = 40;
constexpr uint64_t kHdrFiletabOffset = 48;
constexpr uint64_t kHdrPctabOffset = 56;
constexpr uint64_t kHdrPclnOffset = 64;
constexpr uint64_t kHeaderSize = 72;

// runtime._func: the fields both layouts share.
constexpr uint64_t kFuncEntryOff = 0;
constexpr uint64_t kFuncNameOff = 4;
constexpr uint64_t kFuncPcfile = 20;
constexpr uint64_t kFuncPcln = 24;
constexpr uint64_t kFuncNpcdata = 28;
constexpr uint64_t kFuncCuOffset = 32;

// runtime.moduledata (64-bit), the prefix that is stable from 1.18 to 1.26.
constexpr uint64_t kModPcHeader = 0;
constexpr uint64_t kModFuncnametab = 8;
constexpr uint64_t kModCutab = 32;
constexpr uint64_t kModFiletab = 56;
constexpr uint64_t kModPctab = 80;
constexpr uint64_t kModPclntable = 104;
constexpr uint64_t kModFtab = 128;
constexpr uint64_t kModFtabLen = 136;
constexpr uint64_t kModText = 176;

constexpr uint32_t kPcdataInlTreeIndex = 2;
constexpr uint32_t kFuncdataInlTree = 3;
constexpr uint32_t kNoFuncdata = ~0u;

// find_func narrows its binary search to the functions that overlap one
// 4 KiB bucket of text, as the runtime's findfunctab does.
constexpr unsigned kBucketShift = 12;

// Inlining depth is bounded by the compiler; a longer parent chain can only
// come from a corrupt (cyclic) inline tree.
constexpr size_t kMaxInlineDepth = 1024;

// What differs between the two table generations, which the magic tells apart.
struct TableLayout {
  uint64_t func_size;          // sizeof(_func); the pcdata offsets follow it
  uint64_t func_nfuncdata;     // offset of _func.nfuncdata (its last byte)
  uint64_t inl_size;           // sizeof(inlinedCall)
  uint64_t inl_name_off;       // inlinedCall's offset of the callee name in funcnametab
  uint64_t inl_parent_pc;      // inlinedCall.parentPc
  uint64_t moduledata_gofunc;  // moduledata.gofunc
};

// Go 1.18/1.19: _func has no startLine; inlinedCall is
// {parent i16, funcID u8, _ u8, file i32, line i32, func_ i32, parentPc i32}.
constexpr TableLayout kLayoutGo118{40, 39, 20, 12, 16, 304};
// Go 1.20+: _func gained startLine; inlinedCall is
// {funcID u8, _ [3]u8, nameOff i32, parentPc i32, startLine i32}; moduledata
// gained covctrs/ecovctrs before gofunc in the same release.
constexpr TableLayout kLayoutGo120{44, 43, 16, 4, 8, 320};

bool plausible_header(const ByteReader& r, uint64_t off) {
  if (!r.has(off, kHeaderSize)) return false;
  uint32_t magic = r.u32(off);
  if (magic != kMagicGo118 && magic != kMagicGo120 && magic != kMagicGo116 && magic != kMagicGo12) return false;
  uint8_t min_lc = r.u8(off + 6);
  return r.u8(off + 4) == 0 && r.u8(off + 5) == 0 && (min_lc == 1 || min_lc == 2 || min_lc == 4) &&
         r.u8(off + 7) == 8;
}

// An unsigned varint as debug/gosym reads it into 32 bits: bits past the
// 32nd are dropped, not an error. Nearly all are one or two bytes (the
// runtime's step() says ~70% are one), so those are inlined into the
// decoding loop and longer ones are not.
[[gnu::noinline]] uint32_t read_varint32_tail(const ByteReader& r, uint64_t& off, uint32_t low_bits) {
  uint32_t v = low_bits;
  for (unsigned shift = 14;; shift += 7) {
    uint8_t b = r.u8(off++);
    if (shift < 32) v |= uint32_t(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
}

[[gnu::always_inline]] inline uint32_t read_varint32(const ByteReader& r, uint64_t& off) {
  uint8_t b = r.u8(off++);
  if (!(b & 0x80)) [[likely]] return b;
  uint32_t v = b & 0x7f;
  b = r.u8(off++);
  v |= uint32_t(b & 0x7f) << 7;
  if (!(b & 0x80)) [[likely]] return v;
  return read_varint32_tail(r, off, v);
}

std::string hex(uint64_t v) {
  char buf[24];
  snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

// Immutable after load except for the name index, which is built once under
// call_once: a Pclntab is shared by every process of a binary, across threads.
struct Pclntab::Impl {
  uint64_t vaddr = 0;
  uint64_t text_start = 0;
  uint64_t moduledata_vaddr = 0;
  uint64_t gofunc = 0;  // base of the funcdata offsets (go:func.*); 0 if moduledata was not found
  unsigned min_lc = 1;
  uint32_t nfunc = 0;
  const TableLayout* layout = &kLayoutGo120;

  ByteReader table;  // from pcHeader to the end of its section (or segment)
  ByteReader funcnametab, cutab, filetab, pctab, pclntable;
  // functab's entry offsets (nfunc + 1 with the end of text), copied and
  // checked to be sorted at load, and per 4 KiB text bucket the last
  // function starting at or before the bucket.
  std::vector<uint32_t> entry_offs;
  std::vector<uint32_t> bucket_first;
  std::optional<ByteReader> gofunc_data;  // from gofunc to the end of its segment

  mutable std::once_flag name_index_built;
  mutable std::unordered_map<std::string_view, uint32_t> name_index;

  // A function as located through functab; the _func fields are read on demand.
  struct FuncRef {
    uint32_t index;
    uint64_t func_off;  // of its _func in pclntable
    uint64_t entry;     // from functab
    uint64_t end;       // the next functab entry
  };

  void parse_header(ByteReader whole, uint64_t at_vaddr, const GoVersion& version);
  void index_functab();
  void locate_moduledata(const ElfImage& elf);
  bool try_moduledata(const ElfImage& elf, uint64_t candidate);
  bool scan_for_moduledata(const ElfImage& elf, const ByteReader& area, uint64_t area_vaddr);

  FuncRef ref(uint32_t i) const {
    uint64_t func_off = pclntable.u32(uint64_t(i) * 8 + 4);
    return FuncRef{i, func_off, text_start + entry_offs[i], text_start + entry_offs[i + 1]};
  }
  uint32_t func_field(const FuncRef& f, uint64_t field) const { return pclntable.u32(f.func_off + field); }
  std::optional<uint32_t> find_index(uint64_t pc) const;
  FuncInfo info(const FuncRef& f) const {
    return FuncInfo{funcnametab.cstring(func_field(f, kFuncNameOff)), f.entry, f.end, f.index};
  }
  // The entry the pc-value tables are relative to: _func.entryOff, which
  // is what both the runtime and debug/gosym use (it equals the functab one).
  uint64_t table_entry(const FuncRef& f) const { return text_start + func_field(f, kFuncEntryOff); }

  int32_t pc_value(uint32_t table_off, uint64_t entry, uint64_t target_pc) const;
  std::string_view gosym_file(const FuncRef& f, uint64_t pc, uint64_t entry) const;
  int32_t inline_index(const FuncRef& f, uint64_t pc, uint64_t entry) const;
  SourceFrame runtime_frame(const FuncRef& f, std::string_view function, uint64_t pc, uint64_t entry) const;
};

void Pclntab::Impl::index_functab() {
  entry_offs.resize(uint64_t(nfunc) + 1);
  for (uint32_t i = 0; i <= nfunc; i++) {
    entry_offs[i] = pclntable.u32(uint64_t(i) * 8);
    if (i > 0 && entry_offs[i] < entry_offs[i - 1])
      throw ParseError(ErrorKind::Corrupt, table.what() + ": functab is not sorted at entry " + std::to_string(i));
  }
  bucket_first.resize((entry_offs[nfunc] >> kBucketShift) + 1);
  uint32_t f = 0;
  for (uint64_t b = 0; b < bucket_first.size(); b++) {
    while (f + 1 < nfunc && entry_offs[f + 1] <= b << kBucketShift) f++;
    bucket_first[b] = f;
  }
}

// The last function whose entry is at or before pc, if pc is before the end
// of text (zero-size functions share their entry with the next one).
std::optional<uint32_t> Pclntab::Impl::find_index(uint64_t pc) const {
  if (pc < text_start || pc - text_start >= entry_offs[nfunc] || pc - text_start < entry_offs[0]) return std::nullopt;
  uint32_t off = static_cast<uint32_t>(pc - text_start);
  uint64_t bucket = off >> kBucketShift;
  auto first = entry_offs.begin() + bucket_first[bucket];
  auto last = bucket + 1 < bucket_first.size() ? entry_offs.begin() + bucket_first[bucket + 1] + 1
                                              : entry_offs.begin() + nfunc;
  return static_cast<uint32_t>(std::upper_bound(first, last, off) - entry_offs.begin() - 1);
}

// A pc-value table: pairs of (zig-zag varint value delta, varint pc delta in
// units of minLC), starting from value -1 at entry; a zero value delta ends
// the table except at entry. Decoded exactly as debug/gosym (and the
// runtime's pcvalue) do, 32-bit wrap-around included, so that odd tables give
// the same answers as `go tool addr2line`. Returns -1 past the table's end.
int32_t Pclntab::Impl::pc_value(uint32_t table_off, uint64_t entry, uint64_t target_pc) const {
  uint64_t p = table_off;
  uint64_t pc = entry;
  uint32_t value = ~0u;
  for (;;) {
    uint32_t uvdelta = read_varint32(pctab, p);
    if (uvdelta == 0 && pc != entry) return -1;
    uint32_t vdelta = (uvdelta & 1) ? ~(uvdelta >> 1) : uvdelta >> 1;
    uint32_t pcdelta = read_varint32(pctab, p) * min_lc;
    pc += pcdelta;
    value += vdelta;
    if (target_pc < pc) return static_cast<int32_t>(value);
  }
}

// debug/gosym's go12PCToFile for Go >= 1.16 tables: a file number from
// pcfile, then cutab[cuOffset + n] (u32 arithmetic, as gosym) into filetab.
std::string_view Pclntab::Impl::gosym_file(const FuncRef& f, uint64_t pc, uint64_t entry) const {
  int32_t fileno = pc_value(func_field(f, kFuncPcfile), entry, pc);
  if (fileno < 0) return {};
  uint32_t name_off = cutab.u32(uint64_t((func_field(f, kFuncCuOffset) + static_cast<uint32_t>(fileno)) * 4u));
  if (name_off == ~0u) return {};
  return filetab.cstring(name_off);
}

// pcdata[PCDATA_InlTreeIndex] at pc: the inline tree node pc belongs to, or
// -1 for the physical function's own code (runtime.pcdatavalue1).
int32_t Pclntab::Impl::inline_index(const FuncRef& f, uint64_t pc, uint64_t entry) const {
  if (kPcdataInlTreeIndex >= func_field(f, kFuncNpcdata)) return -1;
  uint32_t off = func_field(f, layout->func_size + kPcdataInlTreeIndex * 4);
  if (off == 0) return -1;  // the runtime treats table offset 0 as "no table"
  return pc_value(off, entry, pc);
}

// runtime.funcline1: file and line at pc, "?" and 0 when unknown.
SourceFrame Pclntab::Impl::runtime_frame(const FuncRef& f, std::string_view function, uint64_t pc,
                                         uint64_t entry) const {
  SourceFrame frame{function, "?", 0};
  uint32_t pcfile = func_field(f, kFuncPcfile);
  uint32_t pcln = func_field(f, kFuncPcln);
  if (pcfile == 0 || pcln == 0) return frame;
  int32_t fileno = pc_value(pcfile, entry, pc);
  int32_t line = pc_value(pcln, entry, pc);
  if (fileno < 0 || line < 0) return frame;
  uint32_t name_off = cutab.u32((uint64_t(func_field(f, kFuncCuOffset)) + uint64_t(fileno)) * 4);
  if (name_off != ~0u) frame.file = filetab.cstring(name_off);
  frame.line = line;
  return frame;
}

void Pclntab::Impl::parse_header(ByteReader whole, uint64_t at_vaddr, const GoVersion& version) {
  const std::string& what = whole.what();
  whole.require(0, kHeaderSize);
  uint32_t magic = whole.u32(0);
  if (magic == kMagicGo12 || magic == kMagicGo116) {
    throw ParseError(ErrorKind::UnsupportedVersion,
                     what + ": pclntab of Go " + (magic == kMagicGo12 ? "1.2-1.15" : "1.16/1.17") +
                         "; goroscope reads Go 1.18 and later");
  }
  if (magic != kMagicGo118 && magic != kMagicGo120)
    throw ParseError(ErrorKind::Corrupt, what + ": bad pclntab magic " + hex(magic));
  if (!plausible_header(whole, 0))
    throw ParseError(ErrorKind::Corrupt, what + ": pclntab header is not a 64-bit Go table (pad, minLC or ptrSize)");
  // The build info and the table must agree on the generation (a version of
  // 0.0 means the caller does not know it).
  if (version.major != 0 && version.at_least(1, 20) != (magic == kMagicGo120)) {
    throw ParseError(ErrorKind::Corrupt, what + ": pclntab magic " + hex(magic) + " does not match " + version.raw);
  }
  layout = magic == kMagicGo120 ? &kLayoutGo120 : &kLayoutGo118;
  min_lc = whole.u8(6);

  uint64_t nfunc64 = whole.u64(kHdrNfunc);
  uint64_t offsets[] = {kHeaderSize,
                        whole.u64(kHdrFuncnameOffset),
                        whole.u64(kHdrCuOffset),
                        whole.u64(kHdrFiletabOffset),
                        whole.u64(kHdrPctabOffset),
                        whole.u64(kHdrPclnOffset)};
  // The linker lays the tables out in this order (cmd/link pcln.go), so each
  // one ends where the next begins and no read can stray into a neighbour.
  for (size_t i = 1; i < std::size(offsets); i++) {
    if (offsets[i] < offsets[i - 1])
      throw ParseError(ErrorKind::Corrupt, what + ": pclntab sub-table offsets out of order");
  }
  whole.require(offsets[5], 0);
  funcnametab = whole.sub(offsets[1], offsets[2] - offsets[1], what + ": funcnametab");
  cutab = whole.sub(offsets[2], offsets[3] - offsets[2], what + ": cutab");
  filetab = whole.sub(offsets[3], offsets[4] - offsets[3], what + ": filetab");
  pctab = whole.sub(offsets[4], offsets[5] - offsets[4], what + ": pctab");
  pclntable = whole.from(offsets[5], what + ": functab");

  if (nfunc64 == 0) throw ParseError(ErrorKind::Corrupt, what + ": pclntab lists no functions");
  // functab: nfunc {entryoff, funcoff} pairs and the end-of-text entryoff.
  if (pclntable.size() < 4 || nfunc64 > (pclntable.size() - 4) / 8) {
    throw ParseError(ErrorKind::Truncated,
                     what + ": functab of " + std::to_string(nfunc64) + " functions runs past the table's end");
  }
  nfunc = static_cast<uint32_t>(nfunc64);
  text_start = whole.u64(kHdrTextStart);
  table = std::move(whole);
  vaddr = at_vaddr;
  index_functab();
}

// moduledata points at every pclntab sub-table; checking all those pointers
// (and the functab length) leaves no room for a stray match.
bool Pclntab::Impl::try_moduledata(const ElfImage& elf, uint64_t candidate) {
  auto md = elf.read_vaddr(candidate, layout->moduledata_gofunc + 8, "moduledata");
  if (!md) return false;
  auto points_to = [&](uint64_t field, uint64_t header_field) {
    return md->u64(field) == vaddr + table.u64(header_field);
  };
  if (md->u64(kModPcHeader) != vaddr || !points_to(kModFuncnametab, kHdrFuncnameOffset) ||
      !points_to(kModCutab, kHdrCuOffset) || !points_to(kModFiletab, kHdrFiletabOffset) ||
      !points_to(kModPctab, kHdrPctabOffset) || !points_to(kModPclntable, kHdrPclnOffset) ||
      !points_to(kModFtab, kHdrPclnOffset) || md->u64(kModFtabLen) != uint64_t(nfunc) + 1)
    return false;
  // Up to Go 1.25 the header's textStart must agree; 1.26 writes 0 there,
  // leaving moduledata.text the only source (not .text's address: with
  // external linking the C start files come first).
  uint64_t text = md->u64(kModText);
  if (text == 0 || (text_start != 0 && text != text_start)) return false;
  moduledata_vaddr = candidate;
  text_start = text;
  gofunc = md->u64(layout->moduledata_gofunc);
  return true;
}

bool Pclntab::Impl::scan_for_moduledata(const ElfImage& elf, const ByteReader& area, uint64_t area_vaddr) {
  // moduledata is pointer-aligned, and its first word is the pcHeader pointer.
  for (uint64_t off = (8 - area_vaddr % 8) % 8; area.has(off, 8); off += 8) {
    if (area.u64(off) == vaddr && try_moduledata(elf, area_vaddr + off)) return true;
  }
  return false;
}

// runtime.firstmoduledata: in .go.module since Go 1.26, in .noptrdata before;
// binaries without section headers are scanned segment by segment.
void Pclntab::Impl::locate_moduledata(const ElfImage& elf) {
  if (const ElfSection* s = elf.section(".go.module"); s && try_moduledata(elf, s->addr)) return;
  if (const ElfSection* s = elf.section(".noptrdata"); s && scan_for_moduledata(elf, elf.section_bytes(*s), s->addr))
    return;
  for (const auto& seg : elf.segments()) {
    if (seg.type != PT_LOAD || !(seg.flags & PF_W)) continue;
    auto area = elf.read_vaddr(seg.vaddr, seg.filesz, "writable segment");
    if (area && scan_for_moduledata(elf, *area, seg.vaddr)) return;
  }
}

namespace {

// The section the linker names, else the first plausible header in a
// non-executable PT_LOAD segment: read-only data, or the RELRO data where
// PIE builds before Go 1.26 put the table.
struct TableLocation {
  ByteReader bytes;
  uint64_t vaddr;
};

std::vector<TableLocation> table_candidates(const ElfImage& elf) {
  for (const char* name : {".gopclntab", ".data.rel.ro.gopclntab"}) {
    if (const ElfSection* s = elf.section(name)) return {{elf.section_bytes(*s), s->addr}};
  }
  std::vector<TableLocation> found;
  for (const auto& seg : elf.segments()) {
    if (seg.type != PT_LOAD || (seg.flags & PF_X)) continue;
    auto area = elf.read_vaddr(seg.vaddr, seg.filesz, "segment");
    if (!area) continue;
    for (uint64_t off = (8 - seg.vaddr % 8) % 8; area->has(off, kHeaderSize); off += 8) {
      if (plausible_header(*area, off))
        found.push_back({area->from(off, elf.path() + ": pclntab at " + hex(seg.vaddr + off)), seg.vaddr + off});
    }
  }
  return found;
}

}  // namespace

Result<std::unique_ptr<Pclntab>> Pclntab::load(const ElfImage& elf, const GoVersion& version) {
  try {
    std::vector<TableLocation> candidates = table_candidates(elf);
    if (candidates.empty()) return Error{ErrorKind::NotGo, elf.path() + ": no Go pclntab"};
    std::optional<ParseError> first_error;
    for (auto& candidate : candidates) {
      auto impl = std::make_unique<Impl>();
      try {
        impl->parse_header(std::move(candidate.bytes), candidate.vaddr, version);
      } catch (const ParseError& e) {
        // A scan may hit the magic by chance; the section, if there is one,
        // is the only candidate and its error is the answer.
        if (!first_error) first_error = e;
        continue;
      }
      impl->locate_moduledata(elf);
      if (impl->text_start == 0) {
        return Error{ErrorKind::NotFound, elf.path() + ": pclntab has no textStart (Go 1.26+) and " +
                                              "runtime.firstmoduledata was not found"};
      }
      if (impl->gofunc != 0) impl->gofunc_data = elf.vaddr_to_segment_end(impl->gofunc, "go:func.*");
      return std::unique_ptr<Pclntab>(new Pclntab(std::move(impl)));
    }
    return first_error->error();
  } catch (const ParseError& e) {
    return e.error();
  }
}

Pclntab::Pclntab(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Pclntab::~Pclntab() = default;

uint64_t Pclntab::vaddr() const { return impl_->vaddr; }
uint64_t Pclntab::text_start() const { return impl_->text_start; }
uint64_t Pclntab::moduledata_vaddr() const { return impl_->moduledata_vaddr; }
unsigned Pclntab::min_lc() const { return impl_->min_lc; }
size_t Pclntab::num_funcs() const { return impl_->nfunc; }

// Load checks the header and that functab is sorted; everything else is
// decoded on demand, so a corrupt entry reads as a nameless function (or no
// line, or no frames) instead of throwing out of these accessors.
FuncInfo Pclntab::func(size_t index) const {
  if (index >= impl_->nfunc) return {};
  try {
    return impl_->info(impl_->ref(static_cast<uint32_t>(index)));
  } catch (const ParseError&) {
    return FuncInfo{{}, 0, 0, static_cast<uint32_t>(index)};
  }
}

std::optional<FuncInfo> Pclntab::find_func(uint64_t pc) const {
  try {
    auto index = impl_->find_index(pc);
    if (!index) return std::nullopt;
    return impl_->info(impl_->ref(*index));
  } catch (const ParseError&) {
    return std::nullopt;
  }
}

std::optional<FuncInfo> Pclntab::func_by_name(std::string_view name) const {
  std::call_once(impl_->name_index_built, [this] {
    impl_->name_index.reserve(impl_->nfunc);
    for (uint32_t i = 0; i < impl_->nfunc; i++) {
      try {
        // The first of several same-named functions wins.
        impl_->name_index.emplace(impl_->info(impl_->ref(i)).name, i);
      } catch (const ParseError&) {
      }
    }
  });
  auto it = impl_->name_index.find(name);
  if (it == impl_->name_index.end()) return std::nullopt;
  return func(it->second);
}

// Mirrors debug/gosym's Table.PCToLine as `go tool addr2line` uses it: the
// file and the line are looked up independently, and a table that cannot be
// decoded gives "" or -1 for that half, as gosym's recover() does.
bool Pclntab::pc_to_line(uint64_t pc, FuncInfo* func, std::string_view* file, int* line) const {
  std::optional<Impl::FuncRef> f;
  try {
    auto index = impl_->find_index(pc);
    if (!index) return false;
    f = impl_->ref(*index);
    *func = impl_->info(*f);
  } catch (const ParseError&) {
    return false;
  }
  try {
    *file = impl_->gosym_file(*f, pc, impl_->table_entry(*f));
  } catch (const ParseError&) {
    *file = {};
  }
  try {
    *line = impl_->pc_value(impl_->func_field(*f, kFuncPcln), impl_->table_entry(*f), pc);
  } catch (const ParseError&) {
    *line = -1;
  }
  return true;
}

// The runtime's inline unwinding (runtime/symtabinl.go, 1.21+; the same walk
// in 1.19's symtab.go): the innermost frame is named by the inline tree node
// at pc, and each parent frame's position is that of the instruction at
// entry + parentPc, until a pc belongs to the physical function itself.
std::vector<SourceFrame> Pclntab::frames(uint64_t pc) const {
  const Impl& t = *impl_;
  std::vector<SourceFrame> out;
  try {
    auto index = t.find_index(pc);
    if (!index) return {};
    Impl::FuncRef f = t.ref(*index);
    uint64_t entry = t.table_entry(f);
    std::optional<ByteReader> tree;
    if (t.gofunc_data) {
      uint64_t nfuncdata = t.pclntable.u8(f.func_off + t.layout->func_nfuncdata);
      if (kFuncdataInlTree < nfuncdata) {
        uint64_t npcdata = t.func_field(f, kFuncNpcdata);
        uint32_t off = t.func_field(f, t.layout->func_size + npcdata * 4 + kFuncdataInlTree * 4);
        if (off != kNoFuncdata) tree = t.gofunc_data->from(off, "inline tree");
      }
    }
    for (int32_t node = tree ? t.inline_index(f, pc, entry) : -1; node >= 0; node = t.inline_index(f, pc, entry)) {
      if (out.size() == kMaxInlineDepth) return {};
      uint64_t at = uint64_t(node) * t.layout->inl_size;
      std::string_view callee = t.funcnametab.cstring(tree->u32(at + t.layout->inl_name_off));
      out.push_back(t.runtime_frame(f, callee, pc, entry));
      pc = entry + static_cast<uint64_t>(int64_t(tree->i32(at + t.layout->inl_parent_pc)));
    }
    out.push_back(t.runtime_frame(f, t.info(f).name, pc, entry));
  } catch (const ParseError&) {
    return {};
  }
  return out;
}

}  // namespace goroscope

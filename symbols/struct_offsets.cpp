#include "symbols/struct_offsets.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "symbols/generated/go_tables.inc"

namespace goroscope {

const char* to_string(OffsetSource s) { return s == OffsetSource::Dwarf ? "dwarf" : "table"; }

std::string FieldSpec::key() const { return *field ? std::string(type) + "." + field : std::string(type); }

bool FieldSpec::exists_in(int go_minor) const { return go_minor >= since_minor && go_minor <= until_minor; }

const std::vector<FieldSpec>& required_fields() {
  // Every name below was checked against the DWARF of the fixture builds
  // (go1.19.8 … go1.26.8); tests/unit/struct_offsets_test.cpp keeps it so.
  static const std::vector<FieldSpec> fields = {
      // The goroutine itself: census, park/unpark, creation and exit probes.
      {"runtime.g", ""},
      {"runtime.g", "stack"},
      {"runtime.g", "m"},
      {"runtime.g", "sched"},
      {"runtime.g", "atomicstatus"},  // uint32 to 1.19, atomic.Uint32 from 1.20: same 4 bytes
      {"runtime.g", "goid"},          // int64 to 1.20, uint64 from 1.21
      {"runtime.g", "waitsince"},
      {"runtime.g", "waitreason"},
      {"runtime.g", "parentGoid", 21},  // added in 1.21
      {"runtime.g", "gopc"},
      {"runtime.g", "startpc"},
      {"runtime.g", "waiting"},
      {"runtime.g", "labels"},
      {"runtime.g", "timer"},  // the per-g time.Sleep timer
      {"runtime.stack", "lo"},
      {"runtime.stack", "hi"},
      // gobuf lost `ret` in 1.25 (56 -> 48 bytes), which moves bp.
      {"runtime.gobuf", "sp"},
      {"runtime.gobuf", "pc"},
      {"runtime.gobuf", "bp"},
      {"runtime.m", "g0"},
      {"runtime.m", "curg"},
      {"runtime.m", "procid"},
      {"runtime.m", "p"},
      {"runtime.p", "id"},
      {"runtime.p", "status"},
      {"runtime.p", "goidcache"},
      {"runtime.p", "goidcacheend"},
      // p.timers is a []*timer heap to 1.22, a runtime.timers struct from 1.23.
      {"runtime.p", "timers"},
      {"runtime.p", "numTimers", 18, 22},
      {"runtime.p", "timersLock", 18, 22},
      // runtime.timer was rewritten in 1.23 (the time.Timer GC change): the
      // heap owner `pp`, `nextwhen` and the status word went, a mutex, state
      // bits and the owning heap `ts` came. 1.25 added `rand` before `when`.
      {"runtime.timer", ""},
      {"runtime.timer", "pp", 18, 22},
      {"runtime.timer", "nextwhen", 18, 22},
      {"runtime.timer", "status", 18, 22},
      {"runtime.timer", "mu", 23},
      {"runtime.timer", "astate", 23},
      {"runtime.timer", "state", 23},
      {"runtime.timer", "isChan", 23},
      {"runtime.timer", "blocked", 23},
      {"runtime.timer", "ts", 23},
      {"runtime.timer", "when"},
      {"runtime.timer", "period"},
      {"runtime.timer", "f"},
      {"runtime.timer", "arg"},
      {"runtime.timer", "seq"},
      // 1.23+: p.timers.heap is a []timerWhen{timer *timer, when int64}.
      {"runtime.timers", "heap", 23},
      {"runtime.timers", "len", 23},
      {"runtime.timerWhen", "", 23},
      {"runtime.timerWhen", "timer", 23},
      {"runtime.timerWhen", "when", 23},
      // 1.23+: what time.newTimer allocates and returns; *time.Timer points at it.
      {"runtime.timeTimer", "c", 23},
      {"runtime.timeTimer", "init", 23},
      {"runtime.timeTimer", "timer", 23},
      // To 1.22 the runtime timer is embedded in time.Timer as `r`.
      {"time.Timer", "C"},
      {"time.Timer", "r", 18, 22},
      // Channels and their waiters, for blocking sites.
      {"runtime.hchan", "qcount"},
      {"runtime.hchan", "dataqsiz"},
      {"runtime.hchan", "elemsize"},
      {"runtime.hchan", "closed"},
      {"runtime.hchan", "recvq"},
      {"runtime.hchan", "sendq"},
      {"runtime.waitq", "first"},
      {"runtime.sudog", "g"},
      {"runtime.sudog", "elem"},
      {"runtime.sudog", "c"},
      // 1.26 wraps sudog.elem (maybeTraceablePtr{vp, vu}) and sudog.c
      // (maybeTraceableChan, which embeds maybeTraceablePtr): the pointer
      // itself is at elem + vp and c + maybeTraceablePtr + vp.
      {"runtime.maybeTraceablePtr", "vp", 26},
      {"runtime.maybeTraceableChan", "maybeTraceablePtr", 26},
      {"runtime.moduledata", "text"},
      {"runtime.moduledata", "etext"},
  };
  return fields;
}

std::optional<FieldOffset> StructOffsets::get(const std::string& key) const {
  auto it = offsets_.find(key);
  if (it == offsets_.end()) return std::nullopt;
  return it->second;
}

uint64_t StructOffsets::at(const std::string& key) const {
  auto it = offsets_.find(key);
  if (it == offsets_.end()) throw ParseError(ErrorKind::NotFound, "no offset for " + key);
  return it->second.value;
}

namespace {

// Owners for the file descriptor and the libdw session, so every return path
// releases both.
struct FileDescriptor {
  int fd = -1;
  ~FileDescriptor() {
    if (fd >= 0) ::close(fd);
  }
};

struct DwarfSession {
  Dwarf* dwarf = nullptr;
  ~DwarfSession() {
    if (dwarf) dwarf_end(dwarf);
  }
};

// The members goroscope wants of one struct type, as "type" -> {field, ...};
// an empty field stands for the struct's byte size.
using WantedFields = std::map<std::string, std::set<std::string>, std::less<>>;

WantedFields wanted_fields(int go_minor) {
  WantedFields wanted;
  for (const auto& spec : required_fields())
    if (spec.exists_in(go_minor)) wanted[spec.type].insert(spec.field);
  return wanted;
}

void read_struct(Dwarf_Die* struct_die, const std::string& type, const std::set<std::string>& fields,
                 StructOffsets& out) {
  if (fields.count("")) {
    Dwarf_Word size = 0;
    Dwarf_Attribute attr;
    if (dwarf_attr(struct_die, DW_AT_byte_size, &attr) && dwarf_formudata(&attr, &size) == 0)
      out.set(type, {size, OffsetSource::Dwarf});
  }
  Dwarf_Die member;
  if (dwarf_child(struct_die, &member) != 0) return;
  do {
    if (dwarf_tag(&member) != DW_TAG_member) continue;
    const char* name = dwarf_diename(&member);
    if (!name || !fields.count(name)) continue;
    // Go writes member locations as plain constants (DW_FORM_udata), never as
    // location expressions; anything else means the DIE is not what we think.
    Dwarf_Attribute attr;
    Dwarf_Word offset = 0;
    if (!dwarf_attr(&member, DW_AT_data_member_location, &attr) || dwarf_formudata(&attr, &offset) != 0)
      throw ParseError(ErrorKind::Corrupt,
                       type + "." + name + ": DW_AT_data_member_location is missing or not a constant");
    out.set(type + "." + name, {offset, OffsetSource::Dwarf});
  } while (dwarf_siblingof(&member, &member) == 0);
}

// Scans the top-level DIEs of one unit for the wanted struct types, reading
// each and removing it from `wanted` when found.
void scan_unit(Dwarf_Die* unit_die, WantedFields& wanted, StructOffsets& out) {
  Dwarf_Die die;
  if (dwarf_child(unit_die, &die) != 0) return;
  do {
    if (dwarf_tag(&die) != DW_TAG_structure_type) continue;
    const char* name = dwarf_diename(&die);
    if (!name) continue;
    auto it = wanted.find(std::string_view(name));
    if (it == wanted.end()) continue;
    read_struct(&die, it->first, it->second, out);
    wanted.erase(it);
    if (wanted.empty()) return;
  } while (dwarf_siblingof(&die, &die) == 0);
}

// The Go linker puts every type DIE into a unit named "runtime" (one of the
// several units of that name; so in every fixture build, 1.19 to 1.26), so
// those are scanned first; the other units only if a wanted type was not
// there (it may simply not be in the binary: time.Timer is absent from a
// program that never uses package time).
void scan_units(Dwarf* dwarf, WantedFields& wanted, StructOffsets& out) {
  for (bool runtime_units : {true, false}) {
    Dwarf_CU* unit = nullptr;
    Dwarf_Die unit_die;
    int status = 0;
    size_t units = 0;
    while (!wanted.empty() &&
           (status = dwarf_get_units(dwarf, unit, &unit, nullptr, nullptr, &unit_die, nullptr)) == 0) {
      units++;
      const char* name = dwarf_diename(&unit_die);
      bool is_runtime_unit = name && std::strcmp(name, "runtime") == 0;
      if (is_runtime_unit == runtime_units) scan_unit(&unit_die, wanted, out);
    }
    if (status < 0) throw ParseError(ErrorKind::Corrupt, std::string("bad .debug_info: ") + dwarf_errmsg(-1));
    // libdw silently drops a .debug_info it cannot decompress: no units at all.
    if (units == 0 && !wanted.empty())
      throw ParseError(ErrorKind::Corrupt, ".debug_info has no compilation units (cannot be decompressed?)");
  }
}

}  // namespace

Result<StructOffsets> read_dwarf_offsets(const ElfImage& elf, const GoVersion& version) {
  // -w (and -s from 1.22) drops every .debug_* section. Older toolchains and
  // external linkers may write GNU-style .zdebug_info; libdw reads both.
  if (!elf.section(".debug_info") && !elf.section(".zdebug_info"))
    return Error{ErrorKind::NotFound, elf.path() + ": no DWARF (built with -w or -s?)"};

  // libdw is given the file, not the mapped image: decompressing a
  // SHF_COMPRESSED section (all Go DWARF) rewrites its section header, which
  // libelf would do in place in an elf_memory() image — read-only here.
  FileDescriptor file;
  file.fd = ::open(elf.path().c_str(), O_RDONLY | O_CLOEXEC);
  if (file.fd < 0)
    return Error{ErrorKind::Io, elf.path() + ": cannot reopen for DWARF: " + std::strerror(errno)};
  struct stat st {};
  if (fstat(file.fd, &st) != 0) return Error{ErrorKind::Io, elf.path() + ": " + std::strerror(errno)};
  if (static_cast<uint64_t>(st.st_size) != elf.bytes().size())
    return Error{ErrorKind::Io, elf.path() + ": changed on disk since it was mapped"};

  DwarfSession session;
  session.dwarf = dwarf_begin(file.fd, DWARF_C_READ);
  if (!session.dwarf)
    return Error{ErrorKind::Corrupt, elf.path() + ": unreadable DWARF: " + dwarf_errmsg(-1)};

  StructOffsets out;
  WantedFields wanted = wanted_fields(version.minor);
  try {
    scan_units(session.dwarf, wanted, out);
  } catch (const ParseError& e) {
    return Error{e.kind(), elf.path() + ": " + e.what()};
  }
  return out;
}

Result<StructOffsets> table_offsets(const GoVersion& version) {
  for (const auto& table : generated::kGoMinorTables) {
    if (version.major != 1 || table.minor != version.minor) continue;
    StructOffsets out;
    for (const auto& row : table.offsets) out.set(std::string(row.key), {row.value, OffsetSource::Table});
    return out;
  }
  return Error{ErrorKind::NotFound, "no built-in struct offsets for " + version.minor_key()};
}

}  // namespace goroscope

// StructOffsets: byte offsets of the Go runtime struct fields the probes and
// the census read (runtime.g, m, p, gobuf, the timer structs), and where each
// came from: the binary's own DWARF, or — for binaries built with -w/-s — the
// per-Go-version table that tools/gen_go_tables generates from the DWARF of
// the fixture builds (symbols/generated/go_tables.inc).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "symbols/build_info.h"
#include "symbols/elf_image.h"
#include "symbols/result.h"

namespace goroscope {

enum class OffsetSource { Dwarf, Table };
const char* to_string(OffsetSource s);

struct FieldOffset {
  uint64_t value = 0;
  OffsetSource source = OffsetSource::Dwarf;
};

// One field goroscope needs: "runtime.g" + "goid" -> key "runtime.g.goid".
// `since`/`until` bound the Go minor versions in which the field exists, so
// its absence elsewhere is not a warning. A key with an empty field names the
// struct's size ("runtime.g" -> sizeof).
struct FieldSpec {
  const char* type;
  const char* field;  // "" = the struct's byte size
  int since_minor = 18;
  int until_minor = 99;
  std::string key() const;
  bool exists_in(int go_minor) const;  // since_minor <= go_minor <= until_minor
};

// The catalog of every field goroscope reads, in one place.
const std::vector<FieldSpec>& required_fields();

class StructOffsets {
 public:
  std::optional<FieldOffset> get(const std::string& key) const;
  uint64_t at(const std::string& key) const;  // throws ParseError(NotFound)
  const std::map<std::string, FieldOffset>& all() const { return offsets_; }
  void set(const std::string& key, FieldOffset v) { offsets_[key] = v; }

 private:
  std::map<std::string, FieldOffset> offsets_;
};

// From DWARF (libdw; compressed DWARF 5 as in Go >= 1.25 included). Returns
// NotFound if the binary has no DWARF. Only the catalog fields that exist in
// `version` are looked up; one the binary lacks (its type unused by the
// program) is simply not in the result. libdw reads the file at elf.path(),
// so an image made by ElfImage::from_bytes gives Io.
Result<StructOffsets> read_dwarf_offsets(const ElfImage& elf, const GoVersion& version);

// From the generated per-version table; NotFound if the table has no entry
// for this Go minor version.
Result<StructOffsets> table_offsets(const GoVersion& version);

}  // namespace goroscope

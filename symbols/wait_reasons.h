// WaitReasons: the runtime's waitReason numbering -> the strings Go itself
// prints ("chan receive", "select", "sync.Mutex.Lock", ...). The numbering
// changes between Go versions (1.20, 1.24, 1.25 insert entries; 1.26
// reorders), so it is resolved per binary: from the runtime.waitReasonStrings
// array when .symtab has it, else from the generated per-version table.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "symbols/build_info.h"
#include "symbols/elf_image.h"
#include "symbols/result.h"
#include "symbols/struct_offsets.h"

namespace goroscope {

struct WaitReasons {
  std::vector<std::string> names;  // index = waitReason value
  OffsetSource source = OffsetSource::Dwarf;  // Dwarf here means "read from the binary"

  // The string for a value, or "wait reason N" for one the table lacks.
  std::string name(uint8_t value) const;
  // The value for a string, or -1.
  int value_of(const std::string& name) const;
};

// Reads runtime.waitReasonStrings ([N]string) through .symtab; NotFound if
// the symbol is absent (stripped binary).
Result<WaitReasons> read_wait_reasons(const ElfImage& elf);
// The generated per-version table; NotFound for an unknown minor version.
Result<WaitReasons> table_wait_reasons(const GoVersion& version);

}  // namespace goroscope

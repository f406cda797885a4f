#include "symbols/wait_reasons.h"

#include "symbols/generated/go_tables.inc"

namespace goroscope {

std::string WaitReasons::name(uint8_t value) const {
  if (value < names.size()) return names[value];
  return "wait reason " + std::to_string(value);
}

int WaitReasons::value_of(const std::string& wanted) const {
  for (size_t i = 0; i < names.size(); i++)
    if (names[i] == wanted) return static_cast<int>(i);
  return -1;
}

namespace {

// waitReason is a uint8, so the array can never be longer than this.
constexpr uint64_t kMaxWaitReasons = 256;

std::vector<std::string> read_string_array(const ElfImage& elf, const ElfSymbol& array) {
  // A Go string header is {data pointer, length}: two words.
  const uint64_t header_size = 2 * elf.ptr_size();
  if (array.size == 0 || array.size % header_size != 0 || array.size / header_size > kMaxWaitReasons)
    throw ParseError(ErrorKind::Corrupt, elf.path() + ": runtime.waitReasonStrings has size " +
                                             std::to_string(array.size) + ", not a [N]string with N <= 256");
  auto headers = elf.read_vaddr(array.value, array.size, "runtime.waitReasonStrings");
  if (!headers)
    throw ParseError(ErrorKind::Corrupt, elf.path() + ": runtime.waitReasonStrings is not in a file-backed segment");

  std::vector<std::string> names;
  for (uint64_t off = 0; off < array.size; off += header_size) {
    uint64_t data = headers->word(off, elf.ptr_size());
    uint64_t len = headers->word(off + elf.ptr_size(), elf.ptr_size());
    if (len == 0) {
      names.emplace_back();  // waitReasonZero: "" (a nil data pointer)
      continue;
    }
    // The pointers are link-time addresses; PIE builds also hold them in the
    // file (Go writes the value as well as the relative relocation).
    auto text = elf.read_vaddr(data, len, "waitReasonStrings[" + std::to_string(names.size()) + "]");
    if (!text)
      throw ParseError(ErrorKind::Corrupt, elf.path() + ": waitReasonStrings[" + std::to_string(names.size()) +
                                               "] points outside the file-backed segments");
    names.emplace_back(text->str(0, len));
  }
  return names;
}

}  // namespace

Result<WaitReasons> read_wait_reasons(const ElfImage& elf) {
  auto array = elf.symbol("runtime.waitReasonStrings");
  if (!array) return Error{ErrorKind::NotFound, elf.path() + ": no runtime.waitReasonStrings symbol (no .symtab?)"};
  try {
    return WaitReasons{read_string_array(elf, *array), OffsetSource::Dwarf};
  } catch (const ParseError& e) {
    return e.error();
  }
}

Result<WaitReasons> table_wait_reasons(const GoVersion& version) {
  for (const auto& table : generated::kGoMinorTables) {
    if (version.major != 1 || table.minor != version.minor) continue;
    WaitReasons out;
    out.source = OffsetSource::Table;
    for (auto name : table.wait_reasons) out.names.emplace_back(name);
    return out;
  }
  return Error{ErrorKind::NotFound, "no built-in wait reasons for " + version.minor_key()};
}

}  // namespace goroscope

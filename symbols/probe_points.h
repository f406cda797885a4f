// The Go functions goroscope's uprobes attach to, per Go version, resolved
// for one binary: address, file offset (what a uprobe takes), RET sites and
// the after-stack-check site. See shared go-runtime.md §2–§7 for why each.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "symbols/elf_image.h"
#include "symbols/pclntab.h"

namespace goroscope {

class GoBinary;

struct ProbePointSpec {
  const char* function;
  const char* purpose;
  int since_minor = 18;
  int until_minor = 99;
  // Runtime functions are always linked; the time package's only when the
  // program uses timers. A missing optional point is a note, not a warning.
  bool always_linked = true;
};

const std::vector<ProbePointSpec>& probe_point_catalog();

struct ProbePoint {
  std::string function;
  std::string purpose;
  uint64_t address = 0;      // link-time vaddr of the entry
  uint64_t end = 0;
  uint64_t file_offset = 0;  // uprobe offset of the entry
  std::optional<uint64_t> after_stack_check;              // vaddr
  std::optional<uint64_t> after_stack_check_file_offset;
  std::vector<uint64_t> ret_addresses;
  std::vector<uint64_t> ret_file_offsets;
  bool code_ok = true;  // false: RET sites unknown, no return probe may be placed
};

struct ProbePlan {
  std::vector<ProbePoint> points;
  std::vector<std::string> notes;     // optional points not linked into this program
  std::vector<std::string> warnings;  // required points missing or unanalyzable

  const ProbePoint* find(const std::string& function) const;
};

ProbePlan resolve_probe_points(const GoBinary& binary);

}  // namespace goroscope

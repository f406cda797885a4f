// Pclntab: the Go runtime's own PC table (.gopclntab), which survives
// `-s -w`, so this is how goroscope names code in stripped binaries too.
// Maps PC -> function, file:line (with inlined frames), and name -> entry.
// Formats: Go 1.18/1.19 (magic 0xfffffff0) and 1.20+ (0xfffffff1), including
// 1.26 where the header's textStart is 0 and moduledata.text must be used.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "symbols/build_info.h"
#include "symbols/elf_image.h"
#include "symbols/result.h"

namespace goroscope {

struct FuncInfo {
  std::string_view name;  // points into the mapped binary; lives as long as the Pclntab
  uint64_t entry = 0;     // link-time vaddr
  uint64_t end = 0;       // entry of the next function (or the table's end PC)
  uint32_t index = 0;     // position in functab
};

struct SourceFrame {
  std::string_view function;
  std::string_view file;
  int line = 0;
};

class Pclntab {
 public:
  // Finds the table (.gopclntab, .data.rel.ro.gopclntab, else a scan of the
  // read-only segments for the magic), validates its header and locates
  // moduledata (.go.module, .noptrdata, else a segment scan) for textStart.
  static Result<std::unique_ptr<Pclntab>> load(const ElfImage& elf, const GoVersion& version);
  ~Pclntab();

  uint64_t vaddr() const;            // where pcHeader is
  uint64_t text_start() const;       // runtime.text
  uint64_t moduledata_vaddr() const; // runtime.firstmoduledata, 0 if not found
  unsigned min_lc() const;           // PC quantum: 1 on amd64, 4 on arm64
  size_t num_funcs() const;

  FuncInfo func(size_t index) const;
  std::optional<FuncInfo> find_func(uint64_t pc) const;
  std::optional<FuncInfo> func_by_name(std::string_view name) const;  // builds an index on first use

  // What `go tool addr2line` prints for pc: the physical (outermost) function
  // and the innermost file:line recorded for pc. False if pc is in no function.
  bool pc_to_line(uint64_t pc, FuncInfo* func, std::string_view* file, int* line) const;
  // Inline-expanded frames at pc, innermost first; the last one is the
  // physical function. Empty if pc is in no function.
  std::vector<SourceFrame> frames(uint64_t pc) const;

  struct Impl;

 private:
  explicit Pclntab(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace goroscope

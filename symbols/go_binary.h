// GoBinary: everything goroscope knows about one Go executable, parsed once
// and shared by every process that runs it (cached by device, inode, size
// and mtime). Per-process state lives elsewhere.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "symbols/build_info.h"
#include "symbols/elf_image.h"
#include "symbols/pclntab.h"
#include "symbols/result.h"
#include "symbols/struct_offsets.h"
#include "symbols/wait_reasons.h"

namespace goroscope {

class GoBinary {
 public:
  // Opens and validates: ELF, Go build info (version within the supported
  // range) and pclntab are required; DWARF-derived facts fall back to the
  // generated per-version tables, and anything missing becomes a warning.
  static Result<std::shared_ptr<const GoBinary>> open(const std::string& path);
  // Same, through a process-wide cache keyed by the file's identity.
  static Result<std::shared_ptr<const GoBinary>> open_cached(const std::string& path);

  const ElfImage& elf() const { return *elf_; }
  const BuildInfo& build_info() const { return build_info_; }
  const GoVersion& go_version() const { return build_info_.go_version; }
  const Pclntab& pclntab() const { return *pclntab_; }
  const StructOffsets& offsets() const { return offsets_; }
  const WaitReasons& wait_reasons() const { return wait_reasons_; }

  bool stripped() const { return !elf_->has_symtab(); }
  bool has_dwarf() const;
  bool pie() const { return elf_->is_pie(); }
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  GoBinary() = default;
  std::shared_ptr<ElfImage> elf_;
  BuildInfo build_info_;
  std::unique_ptr<Pclntab> pclntab_;
  StructOffsets offsets_;
  WaitReasons wait_reasons_;
  std::vector<std::string> warnings_;
};

}  // namespace goroscope

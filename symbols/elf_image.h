// ElfImage: one ELF file mapped read-only, with its sections, program
// headers and (lazily) its symbol table. The ELF front for everything else in
// symbols/: the Go parsers only ever see byte spans handed out by this class.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "symbols/byte_reader.h"
#include "symbols/result.h"

namespace goroscope {

enum class Arch { Amd64, Arm64 };
const char* to_string(Arch arch);

struct ElfSection {
  std::string name;
  uint32_t type = 0;
  uint64_t flags = 0;
  uint64_t addr = 0;
  uint64_t offset = 0;
  uint64_t size = 0;
  bool compressed() const;  // SHF_COMPRESSED (DWARF since Go 1.25 et al.)
};

struct ElfSegment {
  uint32_t type = 0;
  uint32_t flags = 0;  // PF_R / PF_W / PF_X
  uint64_t offset = 0;
  uint64_t vaddr = 0;
  uint64_t filesz = 0;
  uint64_t memsz = 0;
};

struct ElfSymbol {
  uint64_t value = 0;
  uint64_t size = 0;
  uint8_t type = 0;  // STT_*
};

class ElfImage {
 public:
  // Maps the file; fails with Io, NotElf, Truncated, Corrupt or UnsupportedArch.
  static Result<std::shared_ptr<ElfImage>> open(const std::string& path);
  // Parses an in-memory copy (tests and fuzzers).
  static Result<std::shared_ptr<ElfImage>> from_bytes(std::vector<uint8_t> bytes, std::string name = "<memory>");

  ~ElfImage();
  ElfImage(const ElfImage&) = delete;
  ElfImage& operator=(const ElfImage&) = delete;

  const std::string& path() const { return path_; }
  Arch arch() const { return arch_; }
  unsigned ptr_size() const { return 8; }
  bool is_pie() const { return is_dyn_; }  // ET_DYN: position independent
  std::span<const uint8_t> bytes() const { return {data_, size_}; }

  const std::vector<ElfSection>& sections() const { return sections_; }
  const std::vector<ElfSegment>& segments() const { return segments_; }
  const ElfSection* section(std::string_view name) const;
  // The bytes a section occupies in the file; empty for SHT_NOBITS.
  ByteReader section_bytes(const ElfSection& s) const;

  // Bytes of the file-backed part of the PT_LOAD that holds [vaddr, vaddr+len).
  std::optional<ByteReader> read_vaddr(uint64_t vaddr, uint64_t len, std::string what) const;
  // All file-backed bytes from vaddr to the end of its PT_LOAD segment.
  std::optional<ByteReader> vaddr_to_segment_end(uint64_t vaddr, std::string what) const;
  // vaddr -> offset in the file, through the PT_LOAD that contains it. This is
  // what a uprobe is attached at, for PIE and non-PIE alike.
  std::optional<uint64_t> file_offset(uint64_t vaddr) const;

  bool has_symtab() const { return symtab_ != nullptr; }
  std::optional<ElfSymbol> symbol(std::string_view name) const;
  // The GNU build-id note, hex, or empty.
  std::string build_id() const;

 private:
  ElfImage() = default;
  void parse();
  void index_symbols() const;

  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool mapped_ = false;
  std::vector<uint8_t> owned_;
  Arch arch_ = Arch::Amd64;
  bool is_dyn_ = false;
  std::vector<ElfSection> sections_;
  std::vector<ElfSegment> segments_;
  const ElfSection* symtab_ = nullptr;
  const ElfSection* strtab_ = nullptr;
  // Built on first use, once: an image is shared by every process of a
  // binary, across the daemon's threads.
  mutable std::once_flag symbols_indexed_;
  mutable std::unordered_map<std::string_view, ElfSymbol> symbols_;
};

}  // namespace goroscope

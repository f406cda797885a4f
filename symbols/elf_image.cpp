#include "symbols/elf_image.h"

#include <elf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace goroscope {

const char* to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::Io: return "io";
    case ErrorKind::NotElf: return "not-elf";
    case ErrorKind::NotGo: return "not-go";
    case ErrorKind::Truncated: return "truncated";
    case ErrorKind::Corrupt: return "corrupt";
    case ErrorKind::UnsupportedVersion: return "unsupported-version";
    case ErrorKind::UnsupportedArch: return "unsupported-arch";
    case ErrorKind::NotFound: return "not-found";
  }
  return "unknown";
}

const char* to_string(Arch arch) { return arch == Arch::Amd64 ? "amd64" : "arm64"; }

bool ElfSection::compressed() const { return flags & SHF_COMPRESSED; }

namespace {

// libelf keeps a handle per parse; this owner ends it on every path.
struct ElfHandle {
  Elf* elf = nullptr;
  ~ElfHandle() {
    if (elf) elf_end(elf);
  }
};

}  // namespace

ElfImage::~ElfImage() {
  if (mapped_) munmap(const_cast<uint8_t*>(data_), size_);
}

Result<std::shared_ptr<ElfImage>> ElfImage::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Error{ErrorKind::Io, path + ": " + std::strerror(errno)};
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Error{ErrorKind::Io, path + ": not a regular file"};
  }
  if (st.st_size < static_cast<off_t>(sizeof(Elf64_Ehdr))) {
    ::close(fd);
    return Error{ErrorKind::NotElf, path + ": not an ELF file (" + std::to_string(st.st_size) + " bytes)"};
  }
  void* p = mmap(nullptr, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) return Error{ErrorKind::Io, path + ": mmap: " + std::strerror(errno)};
  std::shared_ptr<ElfImage> img(new ElfImage());
  img->path_ = path;
  img->data_ = static_cast<const uint8_t*>(p);
  img->size_ = st.st_size;
  img->mapped_ = true;
  try {
    img->parse();
  } catch (const ParseError& e) {
    return e.error();
  }
  return img;
}

Result<std::shared_ptr<ElfImage>> ElfImage::from_bytes(std::vector<uint8_t> bytes, std::string name) {
  std::shared_ptr<ElfImage> img(new ElfImage());
  img->path_ = std::move(name);
  img->owned_ = std::move(bytes);
  img->data_ = img->owned_.data();
  img->size_ = img->owned_.size();
  try {
    img->parse();
  } catch (const ParseError& e) {
    return e.error();
  }
  return img;
}

void ElfImage::parse() {
  if (size_ < 4 || std::memcmp(data_, ELFMAG, SELFMAG) != 0)
    throw ParseError(ErrorKind::NotElf, path_ + ": not an ELF file");
  if (size_ < EI_NIDENT || data_[EI_CLASS] != ELFCLASS64 || data_[EI_DATA] != ELFDATA2LSB)
    throw ParseError(ErrorKind::UnsupportedArch, path_ + ": not a 64-bit little-endian ELF file");

  elf_version(EV_CURRENT);
  ElfHandle h;
  // libelf reads the image in place; it never writes to a native-endian one.
  h.elf = elf_memory(reinterpret_cast<char*>(const_cast<uint8_t*>(data_)), size_);
  if (!h.elf || elf_kind(h.elf) != ELF_K_ELF)
    throw ParseError(ErrorKind::NotElf, path_ + ": not an ELF file (" + elf_errmsg(-1) + ")");

  GElf_Ehdr eh;
  if (!gelf_getehdr(h.elf, &eh)) throw ParseError(ErrorKind::Corrupt, path_ + ": bad ELF header");
  switch (eh.e_machine) {
    case EM_X86_64: arch_ = Arch::Amd64; break;
    case EM_AARCH64: arch_ = Arch::Arm64; break;
    default:
      throw ParseError(ErrorKind::UnsupportedArch,
                       path_ + ": ELF machine " + std::to_string(eh.e_machine) + " is neither amd64 nor arm64");
  }
  if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN)
    throw ParseError(ErrorKind::NotElf, path_ + ": not an executable (ELF type " + std::to_string(eh.e_type) + ")");
  is_dyn_ = eh.e_type == ET_DYN;

  size_t nphdr = 0;
  if (elf_getphdrnum(h.elf, &nphdr) != 0) throw ParseError(ErrorKind::Corrupt, path_ + ": bad program header count");
  for (size_t i = 0; i < nphdr; i++) {
    GElf_Phdr ph;
    if (!gelf_getphdr(h.elf, static_cast<int>(i), &ph))
      throw ParseError(ErrorKind::Truncated, path_ + ": truncated: program header " + std::to_string(i) + " unreadable");
    ElfSegment s{ph.p_type, ph.p_flags, ph.p_offset, ph.p_vaddr, ph.p_filesz, ph.p_memsz};
    if (s.type == PT_LOAD && (s.offset > size_ || s.filesz > size_ - s.offset))
      throw ParseError(ErrorKind::Truncated, path_ + ": truncated: PT_LOAD segment " + std::to_string(i) + " runs past the end of the file");
    segments_.push_back(s);
  }

  // Section headers are optional (a stripped-by-objcopy or sstrip'd binary
  // may have none); everything that uses them has a segment-based fallback.
  size_t shstrndx = 0;
  if (elf_getshdrstrndx(h.elf, &shstrndx) == 0) {
    for (Elf_Scn* scn = elf_nextscn(h.elf, nullptr); scn; scn = elf_nextscn(h.elf, scn)) {
      GElf_Shdr sh;
      if (!gelf_getshdr(scn, &sh)) throw ParseError(ErrorKind::Corrupt, path_ + ": unreadable section header");
      const char* name = elf_strptr(h.elf, shstrndx, sh.sh_name);
      ElfSection s{name ? name : "", sh.sh_type, sh.sh_flags, sh.sh_addr, sh.sh_offset, sh.sh_size};
      if (s.type != SHT_NOBITS && (s.offset > size_ || s.size > size_ - s.offset))
        throw ParseError(ErrorKind::Truncated, path_ + ": truncated: section " + s.name + " runs past the end of the file");
      sections_.push_back(std::move(s));
    }
  }
  for (const auto& s : sections_) {
    if (s.type == SHT_SYMTAB) symtab_ = &s;
  }
  if (symtab_) {
    // The linked string table is the one named .strtab in every Go binary.
    strtab_ = section(".strtab");
    if (!strtab_) symtab_ = nullptr;
  }
}

const ElfSection* ElfImage::section(std::string_view name) const {
  for (const auto& s : sections_)
    if (s.name == name) return &s;
  return nullptr;
}

ByteReader ElfImage::section_bytes(const ElfSection& s) const {
  if (s.type == SHT_NOBITS) return ByteReader({}, s.name);
  return ByteReader(std::span<const uint8_t>(data_ + s.offset, s.size), path_ + ":" + s.name);
}

std::optional<ByteReader> ElfImage::read_vaddr(uint64_t vaddr, uint64_t len, std::string what) const {
  for (const auto& seg : segments_) {
    if (seg.type != PT_LOAD) continue;
    if (vaddr >= seg.vaddr && vaddr - seg.vaddr < seg.filesz && len <= seg.filesz - (vaddr - seg.vaddr))
      return ByteReader(std::span<const uint8_t>(data_ + seg.offset + (vaddr - seg.vaddr), len), std::move(what));
  }
  return std::nullopt;
}

std::optional<ByteReader> ElfImage::vaddr_to_segment_end(uint64_t vaddr, std::string what) const {
  for (const auto& seg : segments_) {
    if (seg.type != PT_LOAD) continue;
    if (vaddr >= seg.vaddr && vaddr - seg.vaddr < seg.filesz) {
      uint64_t off = vaddr - seg.vaddr;
      return ByteReader(std::span<const uint8_t>(data_ + seg.offset + off, seg.filesz - off), std::move(what));
    }
  }
  return std::nullopt;
}

std::optional<uint64_t> ElfImage::file_offset(uint64_t vaddr) const {
  for (const auto& seg : segments_) {
    if (seg.type != PT_LOAD) continue;
    if (vaddr >= seg.vaddr && vaddr - seg.vaddr < seg.filesz) return seg.offset + (vaddr - seg.vaddr);
  }
  return std::nullopt;
}

void ElfImage::index_symbols() const {
  if (!symtab_) return;
  ByteReader syms = section_bytes(*symtab_);
  ByteReader strs = section_bytes(*strtab_);
  size_t n = syms.size() / sizeof(Elf64_Sym);
  symbols_.reserve(n);
  for (size_t i = 1; i < n; i++) {
    uint64_t off = i * sizeof(Elf64_Sym);
    uint32_t name = syms.u32(off + offsetof(Elf64_Sym, st_name));
    if (name >= strs.size()) continue;
    std::string_view nm;
    try {
      nm = strs.cstring(name);
    } catch (const ParseError&) {
      continue;
    }
    if (nm.empty()) continue;
    ElfSymbol s;
    s.type = ELF64_ST_TYPE(syms.u8(off + offsetof(Elf64_Sym, st_info)));
    s.value = syms.u64(off + offsetof(Elf64_Sym, st_value));
    s.size = syms.u64(off + offsetof(Elf64_Sym, st_size));
    symbols_.emplace(nm, s);
  }
}

std::optional<ElfSymbol> ElfImage::symbol(std::string_view name) const {
  std::call_once(symbols_indexed_, [this] { index_symbols(); });
  auto it = symbols_.find(name);
  if (it == symbols_.end()) return std::nullopt;
  return it->second;
}

std::string ElfImage::build_id() const {
  for (const auto& seg : segments_) {
    if (seg.type != PT_NOTE || seg.offset > size_ || seg.filesz > size_ - seg.offset) continue;
    ByteReader r(std::span<const uint8_t>(data_ + seg.offset, seg.filesz), "note");
    uint64_t off = 0;
    try {
      while (off + 12 <= r.size()) {
        uint32_t namesz = r.u32(off), descsz = r.u32(off + 4), type = r.u32(off + 8);
        uint64_t name_off = off + 12, desc_off = name_off + ((namesz + 3) & ~3u);
        if (type == NT_GNU_BUILD_ID && namesz == 4 && r.str(name_off, 3) == "GNU") {
          static const char* hex = "0123456789abcdef";
          std::string id;
          for (uint32_t i = 0; i < descsz; i++) {
            uint8_t b = r.u8(desc_off + i);
            id += hex[b >> 4];
            id += hex[b & 15];
          }
          return id;
        }
        off = desc_off + ((descsz + 3) & ~3u);
      }
    } catch (const ParseError&) {
    }
  }
  return {};
}

}  // namespace goroscope

// Wraps fuzzer input in a minimal amd64 ELF executable: one PT_LOAD mapping
// the whole file at 0x400000 and named sections over given byte ranges, so
// each parser can be fuzzed on its own table without a 2 MB binary around it.
#pragma once

#include <elf.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace goroscope::fuzz {

constexpr uint64_t kBase = 0x400000;

struct SyntheticSection {
  std::string name;
  std::vector<uint8_t> bytes;
  uint32_t flags = SHF_ALLOC;
};

inline std::vector<uint8_t> synthetic_elf(const std::vector<SyntheticSection>& sections) {
  std::vector<uint8_t> out(sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr), 0);
  std::string shstr(1, '\0');
  std::vector<Elf64_Shdr> shdrs(1);
  for (const auto& s : sections) {
    while (out.size() % 16) out.push_back(0);
    Elf64_Shdr sh{};
    sh.sh_name = shstr.size();
    shstr += s.name + '\0';
    sh.sh_type = SHT_PROGBITS;
    sh.sh_flags = s.flags;
    sh.sh_offset = out.size();
    sh.sh_addr = kBase + out.size();
    sh.sh_size = s.bytes.size();
    sh.sh_addralign = 16;
    out.insert(out.end(), s.bytes.begin(), s.bytes.end());
    shdrs.push_back(sh);
  }
  Elf64_Shdr strsh{};
  strsh.sh_name = shstr.size();
  shstr += ".shstrtab";
  shstr += '\0';
  strsh.sh_type = SHT_STRTAB;
  strsh.sh_offset = out.size();
  strsh.sh_size = shstr.size();
  out.insert(out.end(), shstr.begin(), shstr.end());
  shdrs.push_back(strsh);
  while (out.size() % 8) out.push_back(0);
  uint64_t shoff = out.size();
  for (const auto& sh : shdrs) {
    const auto* p = reinterpret_cast<const uint8_t*>(&sh);
    out.insert(out.end(), p, p + sizeof sh);
  }

  Elf64_Ehdr eh{};
  std::memcpy(eh.e_ident, ELFMAG, SELFMAG);
  eh.e_ident[EI_CLASS] = ELFCLASS64;
  eh.e_ident[EI_DATA] = ELFDATA2LSB;
  eh.e_ident[EI_VERSION] = EV_CURRENT;
  eh.e_type = ET_EXEC;
  eh.e_machine = EM_X86_64;
  eh.e_version = EV_CURRENT;
  eh.e_phoff = sizeof(Elf64_Ehdr);
  eh.e_shoff = shoff;
  eh.e_ehsize = sizeof(Elf64_Ehdr);
  eh.e_phentsize = sizeof(Elf64_Phdr);
  eh.e_phnum = 1;
  eh.e_shentsize = sizeof(Elf64_Shdr);
  eh.e_shnum = shdrs.size();
  eh.e_shstrndx = shdrs.size() - 1;
  std::memcpy(out.data(), &eh, sizeof eh);

  Elf64_Phdr ph{};
  ph.p_type = PT_LOAD;
  ph.p_flags = PF_R | PF_W | PF_X;
  ph.p_offset = 0;
  ph.p_vaddr = ph.p_paddr = kBase;
  ph.p_filesz = ph.p_memsz = out.size();
  ph.p_align = 0x1000;
  std::memcpy(out.data() + sizeof eh, &ph, sizeof ph);
  return out;
}

}  // namespace goroscope::fuzz

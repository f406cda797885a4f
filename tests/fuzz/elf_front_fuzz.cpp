// libFuzzer: the ELF front (ElfImage) on arbitrary bytes, then everything a
// caller does with an image: sections, segments, symbols, build id, vaddr
// reads, and the whole GoBinary pipeline behind it.
#include <cstdint>
#include <vector>

#include "symbols/elf_image.h"
#include "symbols/go_binary.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto img = goroscope::ElfImage::from_bytes(std::vector<uint8_t>(data, data + size));
  if (!img) return 0;
  const auto& elf = **img;
  for (const auto& s : elf.sections()) (void)elf.section_bytes(s).size();
  for (const auto& seg : elf.segments()) {
    (void)elf.file_offset(seg.vaddr);
    (void)elf.read_vaddr(seg.vaddr, seg.filesz, "segment");
  }
  (void)elf.symbol("runtime.allgs");
  (void)elf.build_id();
  (void)goroscope::read_build_info(elf);
  return 0;
}

// libFuzzer: .go.buildinfo parsing. The input is the section's contents,
// wrapped in a minimal ELF (so the section path and the segment scan both run).
#include <cstdint>
#include <vector>

#include "symbols/build_info.h"
#include "tests/fuzz/synthetic_elf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint8_t> bytes(data, data + size);
  for (const char* name : {".go.buildinfo", ".data"}) {
    auto img = goroscope::ElfImage::from_bytes(
        goroscope::fuzz::synthetic_elf({{name, bytes, SHF_ALLOC | SHF_WRITE}}));
    if (!img) continue;
    auto bi = goroscope::read_build_info(**img);
    if (bi) (void)bi->default_godebug("asynctimerchan");
  }
  return 0;
}

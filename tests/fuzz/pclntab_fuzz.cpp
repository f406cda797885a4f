// libFuzzer: pclntab parsing and every lookup on it. The input is a
// .gopclntab section (seeded from real fixture builds), wrapped in a minimal
// ELF; lookups are made at PCs spread over the function table.
#include <cstdint>
#include <vector>

#include "symbols/pclntab.h"
#include "tests/fuzz/synthetic_elf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto img = goroscope::ElfImage::from_bytes(
      goroscope::fuzz::synthetic_elf({{".gopclntab", std::vector<uint8_t>(data, data + size)}}));
  if (!img) return 0;
  for (int minor : {19, 22, 26}) {
    goroscope::GoVersion v;
    v.major = 1;
    v.minor = minor;
    auto tab = goroscope::Pclntab::load(**img, v);
    if (!tab) continue;
    const auto& t = **tab;
    size_t n = t.num_funcs();
    size_t step = n > 64 ? n / 64 : 1;
    for (size_t i = 0; i < n; i += step) {
      goroscope::FuncInfo f = t.func(i);
      for (uint64_t pc : {f.entry, f.entry + 1, f.end - 1, (f.entry + f.end) / 2}) {
        goroscope::FuncInfo out;
        std::string_view file;
        int line = 0;
        (void)t.pc_to_line(pc, &out, &file, &line);
        (void)t.frames(pc);
      }
      (void)t.func_by_name(f.name);
    }
  }
  return 0;
}

// Pclntab and run_addr2line against `go tool addr2line` of the toolchain that
// built each fixture, on every build of the matrix (arm64 included: the tool
// only parses), plus inline expansion checked against the fixture's source
// and damaged tables that must fail cleanly.
#include <gtest/gtest.h>

#include <elf.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <sstream>

#include "symbols/addr2line.h"
#include "symbols/build_info.h"
#include "symbols/elf_image.h"
#include "symbols/pclntab.h"
#include "tests/support/fixture_matrix.h"

namespace goroscope {
namespace {

using testing::FixtureBinary;
using testing::symbol_matrix;
using testing::run_command;

struct LoadedBinary {
  std::shared_ptr<ElfImage> elf;
  GoVersion version;
  std::unique_ptr<Pclntab> table;
};

// Opens a fixture as GoBinary would; returns the error message if a step fails.
std::optional<std::string> load(const std::string& path, LoadedBinary& out) {
  auto elf = ElfImage::open(path);
  if (!elf) return elf.error().message;
  auto bi = read_build_info(**elf);
  if (!bi) return bi.error().message;
  auto table = Pclntab::load(**elf, bi->go_version);
  if (!table) return table.error().message;
  out = {std::move(elf.value()), bi->go_version, std::move(table.value())};
  return std::nullopt;
}

std::vector<uint8_t> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string hex(uint64_t v) {
  std::ostringstream s;
  s << std::hex << v;
  return s.str();
}

// Entries, interiors and last bytes of about a thousand functions spread over
// the table, and a few addresses outside every function.
std::vector<uint64_t> sample_pcs(const Pclntab& t) {
  std::mt19937_64 rng(1);
  std::vector<uint64_t> pcs;
  size_t n = t.num_funcs();
  for (size_t i = 0; i < n; i += std::max<size_t>(1, n / 1000)) {
    FuncInfo f = t.func(i);
    pcs.push_back(f.entry);
    if (f.end > f.entry + 1) pcs.push_back(f.entry + 1 + rng() % (f.end - f.entry - 1));
    pcs.push_back(f.end - 1);
  }
  uint64_t first = t.func(0).entry, end = t.func(n - 1).end;
  for (uint64_t pc : {uint64_t(0), first - 1, end, end + 0x1000, UINT64_MAX}) pcs.push_back(pc);
  return pcs;
}

std::string addr2line_input(const std::vector<uint64_t>& pcs) {
  std::string in;
  for (size_t i = 0; i < pcs.size(); i++) in += (i % 2 ? "0x" : "") + hex(pcs[i]) + "\n";
  return in;
}

std::string ours(const Pclntab& t, const std::string& input) {
  std::istringstream in(input);
  std::ostringstream out;
  run_addr2line(t, in, out);
  return out.str();
}

std::string go_tool_addr2line(const std::string& gobin, const std::string& binary, const std::string& input) {
  return run_command({"env", "GOTOOLCHAIN=local", gobin, "tool", "addr2line", binary}, input);
}

bool is_go119_pie(const FixtureBinary& fx) { return fx.go.rfind("go1.19.", 0) == 0 && fx.variant == "pie"; }

// Go 1.19's addr2line looks for .gopclntab only (cmd/internal/objfile/elf.go
// learned .data.rel.ro.gopclntab in 1.20), so on its own PIE builds it knows
// no function at all (Addr2line.Go119ToolCannotReadItsOwnPieBuilds). Those
// are checked against the oldest newer toolchain, whose debug/gosym reads
// 1.18/1.19 tables the same way.
std::string reference_gobin(const FixtureBinary& fx) {
  if (!is_go119_pie(fx)) return fx.gobin;
  const FixtureBinary* best = nullptr;
  std::optional<GoVersion> best_version;
  for (const auto& o : symbol_matrix()) {
    auto v = GoVersion::parse(o.go);
    if (v && v->at_least(1, 20) && (!best || !v->at_least(best_version->major, best_version->minor))) {
      best = &o;
      best_version = v;
    }
  }
  if (!best) throw std::runtime_error("the matrix has no Go 1.20+ toolchain to read " + fx.label());
  return best->gobin;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) lines.push_back(line);
  return lines;
}

TEST(Addr2line, MatchesGoToolAddr2lineOnEveryFixture) {
  for (const auto& fx : symbol_matrix()) {
    SCOPED_TRACE(fx.label());
    LoadedBinary b;
    auto err = load(fx.path, b);
    ASSERT_FALSE(err) << *err;
    std::vector<uint64_t> pcs = sample_pcs(*b.table);
    std::string input = addr2line_input(pcs);
    std::vector<std::string> got = lines_of(ours(*b.table, input));
    std::vector<std::string> want = lines_of(go_tool_addr2line(reference_gobin(fx), fx.path, input));
    ASSERT_EQ(got.size(), 2 * pcs.size());
    ASSERT_EQ(want.size(), 2 * pcs.size());

    size_t mismatches = 0, resolved = 0;
    std::string report;
    for (size_t i = 0; i < pcs.size(); i++) {
      if (want[2 * i] != "?") resolved++;
      if (got[2 * i] == want[2 * i] && got[2 * i + 1] == want[2 * i + 1]) continue;
      if (++mismatches <= 10) {
        report += "  0x" + hex(pcs[i]) + ": ours " + got[2 * i] + " " + got[2 * i + 1] + ", go tool " + want[2 * i] +
                  " " + want[2 * i + 1] + "\n";
      }
    }
    EXPECT_EQ(mismatches, 0u) << report;
    // All but the five addresses outside every function must be known, or
    // the comparison would prove little.
    EXPECT_EQ(resolved, pcs.size() - 5);
  }
}

TEST(Addr2line, InputHandlingMatchesGoTool) {
  for (const auto& fx : testing::fixtures("symbolzoo", "default")) {
    SCOPED_TRACE(fx.label());
    LoadedBinary b;
    auto err = load(fx.path, b);
    ASSERT_FALSE(err) << *err;
    std::string entry = hex(b.table->func_by_name("main.main")->entry);
    std::string upper = entry;
    std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
    std::string odd_lines = "\n0x\nzz\n0X" + entry + "\n0x" + upper + "\n " + entry + "\n" + entry + " \n" + entry +
                            "\r\n0x0x" + entry + "\n" + entry + ":12\nmain.go:10\nffffffffffffffffff\n" +
                            "fffffffffffffffffz\nfffffffffffffffz\n-1\n+" + entry + "\n" + entry + "_0\n" +
                            "0000000000000000000000" + entry + "\n\r\n" + entry;  // the last line has no newline
    EXPECT_EQ(ours(*b.table, odd_lines), go_tool_addr2line(fx.gobin, fx.path, odd_lines));

    // bufio.Scanner's 64 KiB line limit: 65535 characters still fit with
    // the newline, 65536 end the input.
    std::string long_lines = entry + "\n" + std::string(65535, '0') + "\n" + entry + "\n" + std::string(65536, '0') +
                             "\n" + entry + "\n";
    std::string got = ours(*b.table, long_lines);
    EXPECT_EQ(got, go_tool_addr2line(fx.gobin, fx.path, long_lines));
    EXPECT_EQ(lines_of(got).size(), 6u);
  }
}

TEST(Addr2line, Go119ToolCannotReadItsOwnPieBuilds) {
  size_t checked = 0;
  for (const auto& fx : symbol_matrix()) {
    if (!is_go119_pie(fx)) continue;
    SCOPED_TRACE(fx.label());
    LoadedBinary b;
    auto err = load(fx.path, b);
    ASSERT_FALSE(err) << *err;
    std::string input = hex(b.table->func_by_name("main.main")->entry) + "\n";
    EXPECT_EQ(go_tool_addr2line(fx.gobin, fx.path, input), "?\n?:0\n");
    EXPECT_EQ(lines_of(ours(*b.table, input))[0], "main.main");
    checked++;
  }
  EXPECT_GT(checked, 0u);
}

TEST(Pclntab, LocatesTableTextAndModuledataOnEveryFixture) {
  for (const auto& fx : symbol_matrix()) {
    SCOPED_TRACE(fx.label());
    LoadedBinary b;
    auto err = load(fx.path, b);
    ASSERT_FALSE(err) << *err;
    const Pclntab& t = *b.table;
    EXPECT_EQ(t.min_lc(), fx.goarch == "arm64" ? 4u : 1u);
    EXPECT_GT(t.num_funcs(), 1000u);
    EXPECT_NE(t.moduledata_vaddr(), 0u);
    if (b.elf->has_symtab()) {
      // The linker's own symbols, which -s removes.
      EXPECT_EQ(t.text_start(), b.elf->symbol("runtime.text")->value);
      EXPECT_EQ(t.vaddr(), b.elf->symbol("runtime.pclntab")->value);
      EXPECT_EQ(t.moduledata_vaddr(), b.elf->symbol("runtime.firstmoduledata")->value);
    } else {
      // Stripped builds link internally, where runtime.text opens .text.
      EXPECT_EQ(t.text_start(), b.elf->section(".text")->addr);
      const ElfSection* md = b.elf->section(b.version.at_least(1, 26) ? ".go.module" : ".noptrdata");
      ASSERT_TRUE(md);
      EXPECT_GE(t.moduledata_vaddr(), md->addr);
      EXPECT_LT(t.moduledata_vaddr(), md->addr + md->size);
    }
    if (fx.variant == "extld") {
      EXPECT_NE(t.text_start(), b.elf->section(".text")->addr);
    }
  }
}

TEST(Pclntab, FindsTheSameTableWithoutSectionHeaders) {
  for (const auto& fx : symbol_matrix()) {
    SCOPED_TRACE(fx.label());
    LoadedBinary b;
    auto err = load(fx.path, b);
    ASSERT_FALSE(err) << *err;

    std::vector<uint8_t> bytes = read_file(fx.path);
    ASSERT_GE(bytes.size(), sizeof(Elf64_Ehdr));
    auto* eh = reinterpret_cast<Elf64_Ehdr*>(bytes.data());
    eh->e_shoff = 0;
    eh->e_shnum = 0;
    eh->e_shstrndx = 0;
    auto bare = ElfImage::from_bytes(std::move(bytes));
    ASSERT_TRUE(bare) << bare.error().message;
    ASSERT_TRUE((*bare)->sections().empty());
    auto t = Pclntab::load(**bare, b.version);
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_EQ((*t)->vaddr(), b.table->vaddr());
    EXPECT_EQ((*t)->text_start(), b.table->text_start());
    EXPECT_EQ((*t)->moduledata_vaddr(), b.table->moduledata_vaddr());
    EXPECT_EQ((*t)->num_funcs(), b.table->num_funcs());
    std::string input = addr2line_input(sample_pcs(*b.table));
    EXPECT_EQ(ours(**t, input), ours(*b.table, input));
  }
}

TEST(Pclntab, FindFuncAndFuncByNameRoundTrip) {
  for (const auto& fx : symbol_matrix()) {
    SCOPED_TRACE(fx.label());
    LoadedBinary b;
    auto err = load(fx.path, b);
    ASSERT_FALSE(err) << *err;
    const Pclntab& t = *b.table;
    std::map<std::string_view, size_t> name_count;
    for (size_t i = 0; i < t.num_funcs(); i++) name_count[t.func(i).name]++;

    size_t failures = 0;
    for (size_t i = 0; i < t.num_funcs() && failures < 10; i++) {
      FuncInfo f = t.func(i);
      ASSERT_EQ(f.index, i);
      ASSERT_FALSE(f.name.empty());
      if (i + 1 < t.num_funcs()) {
        ASSERT_EQ(f.end, t.func(i + 1).entry);
      }
      if (f.end > f.entry) {  // zero-size entries own no address
        auto at_entry = t.find_func(f.entry), at_last = t.find_func(f.end - 1);
        if (!at_entry || at_entry->index != i || !at_last || at_last->index != i) {
          ADD_FAILURE() << f.name << " [0x" << hex(f.entry) << ", 0x" << hex(f.end) << ") not found by its PCs";
          failures++;
        }
      }
      auto by_name = t.func_by_name(f.name);
      ASSERT_TRUE(by_name) << f.name;
      EXPECT_EQ(by_name->name, f.name);
      if (name_count[f.name] == 1) {
        EXPECT_EQ(by_name->entry, f.entry) << f.name;
      }
    }
    EXPECT_FALSE(t.func_by_name("main.noSuchFunction"));
    EXPECT_FALSE(t.find_func(t.text_start() - 1));

    // Entries agree with the ELF symbol table where there is one.
    for (const char* name : {"main.main", "runtime.newproc1", "runtime.gopark", "runtime.mallocgc"}) {
      auto f = t.func_by_name(name);
      ASSERT_TRUE(f) << name;
      if (!b.elf->has_symtab()) continue;
      auto sym = b.elf->symbol(name);
      ASSERT_TRUE(sym) << name;
      EXPECT_EQ(f->entry, sym->value) << name;
    }
  }
}

// Line numbers of the text in the fixture's source, so that the expected
// positions come from the source rather than from the code under test.
int source_line_of(const std::string& file, const std::string& text) {
  std::ifstream in(file);
  std::string line;
  for (int n = 1; std::getline(in, line); n++)
    if (line.find(text) != std::string::npos) return n;
  throw std::runtime_error(text + " not found in " + file);
}

TEST(Pclntab, FramesExpandTheInlinedCallInSymbolzoo) {
  const std::string source = std::string(GOROSCOPE_SOURCE_DIR) + "/tests/fixtures/symbolzoo/main.go";
  const int callee_line = source_line_of(source, "func inlinedAdd(a, b int) int { return a + b }");
  const int call_line = source_line_of(source, "t = inlinedAdd(t, i)");
  const std::string file_suffix = "fixtures/symbolzoo/main.go";

  for (const auto& fx : testing::fixtures("symbolzoo")) {
    SCOPED_TRACE(fx.label());
    LoadedBinary b;
    auto err = load(fx.path, b);
    ASSERT_FALSE(err) << *err;
    const Pclntab& t = *b.table;
    auto caller = t.func_by_name("main.callsInlined");
    ASSERT_TRUE(caller);

    size_t inlined_pcs = 0;
    for (uint64_t pc = caller->entry; pc < caller->end; pc += t.min_lc()) {
      std::vector<SourceFrame> frames = t.frames(pc);
      ASSERT_FALSE(frames.empty());
      EXPECT_EQ(frames.back().function, "main.callsInlined");
      if (frames.size() == 1) continue;
      inlined_pcs++;
      ASSERT_EQ(frames.size(), 2u) << "at 0x" << hex(pc);
      EXPECT_EQ(frames[0].function, "main.inlinedAdd");
      EXPECT_TRUE(frames[0].file.ends_with(file_suffix)) << frames[0].file;
      EXPECT_EQ(frames[0].line, callee_line);
      EXPECT_EQ(frames[1].file, frames[0].file);
      EXPECT_EQ(frames[1].line, call_line);
    }
    EXPECT_GT(inlined_pcs, 0u) << "no PC of main.callsInlined is attributed to main.inlinedAdd";
  }
}

TEST(Pclntab, FramesAgreeWithPcToLine) {
  for (const auto& fx : symbol_matrix()) {
    SCOPED_TRACE(fx.label());
    LoadedBinary b;
    auto err = load(fx.path, b);
    ASSERT_FALSE(err) << *err;
    const Pclntab& t = *b.table;
    size_t inlined = 0, mismatches = 0;
    std::string report;
    auto mismatch = [&](uint64_t pc, std::string_view expected, const SourceFrame& got) {
      if (++mismatches <= 10) {
        report += "  0x" + hex(pc) + ": expected " + std::string(expected) + ", frames() has " +
                  std::string(got.function) + " " + std::string(got.file) + ":" + std::to_string(got.line) + "\n";
      }
    };
    for (uint64_t pc : sample_pcs(t)) {
      FuncInfo f;
      std::string_view file;
      int line = 0;
      std::vector<SourceFrame> frames = t.frames(pc);
      if (!t.pc_to_line(pc, &f, &file, &line)) {
        EXPECT_TRUE(frames.empty());
        continue;
      }
      ASSERT_FALSE(frames.empty());
      if (frames.back().function != f.name) mismatch(pc, f.name, frames.back());
      // The innermost frame holds the position of pc itself. Where that is
      // unknown the two conventions differ: frames() says "?:0" as the
      // runtime's funcline does, while debug/gosym (pc_to_line) says ":-1"
      // where the tables end before pc (padding after the code) and, for
      // linker-made markers without pc tables (go:textfipsstart, 1.24+),
      // decodes from pctab's leading pad byte whatever that yields.
      bool known = line >= 0 && !file.empty() && !f.name.starts_with("go:");
      if (frames.front().file != (known ? file : "?") || frames.front().line != (known ? line : 0)) {
        mismatch(pc, std::string(file) + ":" + std::to_string(line), frames.front());
      }
      if (frames.size() > 1) inlined++;
    }
    EXPECT_EQ(mismatches, 0u) << report;
    EXPECT_GT(inlined, 0u);
  }
}

// A copy of one fixture with its .gopclntab bytes (or section header)
// altered, loaded as Pclntab would be in production.
class DamagedTable {
 public:
  explicit DamagedTable(const FixtureBinary& fx) : bytes_(read_file(fx.path)) {
    auto elf = ElfImage::open(fx.path);
    if (!elf) throw std::runtime_error(elf.error().message);
    version_ = read_build_info(**elf)->go_version;
    const ElfSection* s = (*elf)->section(".gopclntab");
    if (!s) s = (*elf)->section(".data.rel.ro.gopclntab");
    if (!s) throw std::runtime_error("no pclntab section in " + fx.path);
    table_offset_ = s->offset;
    table_size_ = s->size;
    // Find the section header by its offset field.
    auto* eh = reinterpret_cast<Elf64_Ehdr*>(bytes_.data());
    for (size_t i = 0; i < eh->e_shnum; i++) {
      auto* sh = reinterpret_cast<Elf64_Shdr*>(bytes_.data() + eh->e_shoff + i * sizeof(Elf64_Shdr));
      if (sh->sh_offset == table_offset_ && sh->sh_size == table_size_) section_header_ = sh;
    }
    if (!section_header_) throw std::runtime_error("no section header for the pclntab of " + fx.path);
  }

  uint64_t table_size() const { return table_size_; }
  template <typename T>
  void put(uint64_t off, T value) {
    std::memcpy(bytes_.data() + table_offset_ + off, &value, sizeof value);
  }
  template <typename T>
  T get(uint64_t off) const {
    T value;
    std::memcpy(&value, bytes_.data() + table_offset_ + off, sizeof value);
    return value;
  }
  void set_section_size(uint64_t size) { section_header_->sh_size = size; }
  std::vector<uint8_t>& bytes() { return bytes_; }
  const GoVersion& version() const { return version_; }

  Result<std::unique_ptr<Pclntab>> load(const GoVersion* version = nullptr) {
    image_ = ElfImage::from_bytes(bytes_).value();
    return Pclntab::load(*image_, version ? *version : version_);
  }

 private:
  std::vector<uint8_t> bytes_;
  GoVersion version_;
  uint64_t table_offset_ = 0, table_size_ = 0;
  Elf64_Shdr* section_header_ = nullptr;
  std::shared_ptr<ElfImage> image_;
};

const FixtureBinary& fixture_build(const std::string& go, const std::string& variant) {
  for (const auto& fx : symbol_matrix())
    if (fx.fixture == "symbolzoo" && fx.go.rfind(go, 0) == 0 && fx.variant == variant) return fx;
  throw std::runtime_error("no symbolzoo " + go + " " + variant + " build");
}

void expect_error(Result<std::unique_ptr<Pclntab>> r, ErrorKind kind, const std::string& what) {
  ASSERT_FALSE(r) << what << " was accepted";
  EXPECT_EQ(r.error().kind, kind) << what << ": " << r.error().message;
}

TEST(Pclntab, RejectsDamagedHeaders) {
  // One build per table generation, and 1.26 (textStart only in moduledata).
  for (const char* go : {"go1.19.", "go1.22.", "go1.26."}) {
    const FixtureBinary& fx = fixture_build(go, "default");
    SCOPED_TRACE(fx.label());
    auto damaged = [&](auto&& damage) {
      DamagedTable d(fx);
      damage(d);
      return d.load();
    };
    expect_error(damaged([](DamagedTable& d) { d.put<uint32_t>(0, 0xfffffffb); }), ErrorKind::UnsupportedVersion,
                 "Go 1.2 magic");
    expect_error(damaged([](DamagedTable& d) { d.put<uint32_t>(0, 0xfffffffa); }), ErrorKind::UnsupportedVersion,
                 "Go 1.16 magic");
    expect_error(damaged([](DamagedTable& d) { d.put<uint32_t>(0, 0x12345678); }), ErrorKind::Corrupt, "bad magic");
    expect_error(damaged([](DamagedTable& d) { d.put<uint8_t>(7, 4); }), ErrorKind::Corrupt, "ptrSize 4");
    expect_error(damaged([](DamagedTable& d) { d.put<uint8_t>(6, 3); }), ErrorKind::Corrupt, "minLC 3");
    expect_error(damaged([](DamagedTable& d) { d.put<uint64_t>(8, uint64_t(1) << 40); }), ErrorKind::Truncated,
                 "huge nfunc");
    expect_error(damaged([](DamagedTable& d) { d.put<uint64_t>(8, 0); }), ErrorKind::Corrupt, "no functions");
    expect_error(damaged([](DamagedTable& d) { d.put<uint64_t>(64, d.table_size() + 8); }), ErrorKind::Truncated,
                 "pclnOffset past the end");
    expect_error(damaged([](DamagedTable& d) { d.put<uint64_t>(40, d.get<uint64_t>(48) + 8); }), ErrorKind::Corrupt,
                 "cuOffset after filetabOffset");
    expect_error(damaged([](DamagedTable& d) {
                   uint64_t functab = d.get<uint64_t>(64);
                   d.put<uint32_t>(functab + 8 * 10, d.get<uint32_t>(functab + 8 * 11) + 1);
                 }),
                 ErrorKind::Corrupt, "unsorted functab");
    expect_error(damaged([](DamagedTable& d) { d.set_section_size(40); }), ErrorKind::Truncated,
                 "section shorter than the header");
    expect_error(damaged([](DamagedTable& d) { d.set_section_size(d.table_size() / 2); }), ErrorKind::Truncated,
                 "section cut in half");

    DamagedTable mismatch(fx);
    GoVersion other = mismatch.version();
    other.minor = other.at_least(1, 20) ? 19 : 22;
    expect_error(mismatch.load(&other), ErrorKind::Corrupt, "magic of another Go version");
  }
}

TEST(Pclntab, ModuledataIsOptionalBefore126AndRequiredAfter) {
  for (const char* go : {"go1.19.", "go1.22.", "go1.26."}) {
    const FixtureBinary& fx = fixture_build(go, "default");
    SCOPED_TRACE(fx.label());
    LoadedBinary b;
    auto err = load(fx.path, b);
    ASSERT_FALSE(err) << *err;
    // Break moduledata's pcHeader pointer so that it can no longer be found.
    DamagedTable d(fx);
    uint64_t md_offset = *b.elf->file_offset(b.table->moduledata_vaddr());
    std::memset(d.bytes().data() + md_offset, 0, 8);
    auto t = d.load();
    if (b.version.at_least(1, 26)) {
      expect_error(std::move(t), ErrorKind::NotFound, "1.26 without moduledata");
      continue;
    }
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_EQ((*t)->moduledata_vaddr(), 0u);
    EXPECT_EQ((*t)->text_start(), b.table->text_start());
    // Without moduledata.gofunc the inline tree is out of reach: only the
    // physical frame is left, and it is still right.
    auto caller = b.table->func_by_name("main.callsInlined");
    for (uint64_t pc = caller->entry; pc < caller->end; pc++) {
      auto frames = (*t)->frames(pc);
      ASSERT_EQ(frames.size(), 1u);
      EXPECT_EQ(frames[0].function, "main.callsInlined");
      // pcln at pc: the innermost position, as the full expansion's first frame.
      EXPECT_EQ(frames[0].line, b.table->frames(pc).front().line);
    }
  }
}

TEST(Pclntab, SurvivesCorruptTableBodies) {
  // Past the header load checks only that functab's entries are sorted, so
  // everything else is damaged here: every lookup must still stay inside the
  // table whatever the bytes say.
  for (const char* go : {"go1.19.", "go1.26."}) {
    const FixtureBinary& fx = fixture_build(go, "default");
    SCOPED_TRACE(fx.label());
    std::mt19937_64 rng(7);
    for (int round = 0; round < 20; round++) {
      DamagedTable d(fx);
      uint64_t functab = d.get<uint64_t>(64), functab_end = functab + 8 * (d.get<uint64_t>(8) + 1);
      for (int flip = 0; flip < 2000; flip++) {
        uint64_t at = 72 + rng() % (d.table_size() - 72);
        bool entry_offset = at >= functab && at < functab_end && (at - functab) % 8 < 4;
        if (!entry_offset) d.put<uint8_t>(at, rng());
      }
      auto t = d.load();
      ASSERT_TRUE(t) << t.error().message;
      const Pclntab& table = **t;
      for (size_t i = 0; i < table.num_funcs(); i += 7) {
        FuncInfo f = table.func(i);
        for (uint64_t pc : {f.entry, f.entry + 1, f.end - 1, (f.entry + f.end) / 2, uint64_t(rng())}) {
          FuncInfo out;
          std::string_view file;
          int line = 0;
          (void)table.pc_to_line(pc, &out, &file, &line);
          (void)table.frames(pc);
          (void)table.find_func(pc);
        }
      }
      (void)table.func_by_name("main.main");
      std::string input = addr2line_input(sample_pcs(table));
      EXPECT_FALSE(ours(table, input).empty());
    }
  }
}

}  // namespace
}  // namespace goroscope

// StructOffsets against the whole fixture matrix: the DWARF reader finds every
// catalog field of every version, the generated table matches the DWARF and
// is up to date, and an independent reader (llvm-dwarfdump) agrees with ours.
#include "symbols/struct_offsets.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "tests/support/fixture_matrix.h"

namespace goroscope {
namespace {

using testing::default_build_of;
using testing::FixtureBinary;
using testing::symbol_matrix;
using testing::run_command;

GoVersion version_of(const FixtureBinary& b) {
  auto v = GoVersion::parse(b.go);
  if (!v) throw std::runtime_error("manifest has a bad Go version: " + b.go);
  return *v;
}

std::shared_ptr<ElfImage> open_elf(const FixtureBinary& b) {
  auto elf = ElfImage::open(b.path);
  if (!elf) throw std::runtime_error(b.label() + ": " + elf.error().message);
  return *elf;
}

bool has_dwarf(const FixtureBinary& b) { return b.variant != "stripped"; }  // -s -w

StructOffsets dwarf_offsets(const FixtureBinary& b) {
  auto offsets = read_dwarf_offsets(*open_elf(b), version_of(b));
  if (!offsets) throw std::runtime_error(b.label() + ": " + offsets.error().message);
  return *offsets;
}

std::map<std::string, uint64_t> values(const StructOffsets& offsets) {
  std::map<std::string, uint64_t> out;
  for (const auto& [key, offset] : offsets.all()) out[key] = offset.value;
  return out;
}

// The one FixtureBinary per Go release that generated tables are read from.
std::vector<FixtureBinary> default_builds_per_release() {
  std::vector<FixtureBinary> out;
  std::set<std::string> seen;
  for (const auto& b : symbol_matrix())
    if (b.variant == "default" && seen.insert(b.go).second) out.push_back(b);
  return out;
}

TEST(StructOffsets, CatalogIsWellFormed) {
  std::set<std::string> keys;
  for (const auto& spec : required_fields()) {
    EXPECT_TRUE(keys.insert(spec.key()).second) << "duplicate catalog entry " << spec.key();
    EXPECT_LE(spec.since_minor, spec.until_minor) << spec.key();
    EXPECT_GE(spec.since_minor, kMinGoMinor) << spec.key();
  }
  EXPECT_TRUE(keys.count("runtime.g")) << "sizeof(runtime.g) belongs in the catalog";
  EXPECT_TRUE(keys.count("runtime.g.goid"));
}

// Every binary with DWARF has exactly the catalog fields valid for its
// version: reading it as if it were a 1.22 and a 1.26 binary asks for every
// field either era has, and what is found must match since/until precisely,
// so a field renamed or added in some version cannot slip through.
TEST(StructOffsets, DwarfHasEveryCatalogFieldOfItsVersion) {
  for (const auto& b : symbol_matrix()) {
    if (!has_dwarf(b)) continue;
    SCOPED_TRACE(b.label());
    auto elf = open_elf(b);
    int minor = version_of(b).minor;

    auto own = read_dwarf_offsets(*elf, version_of(b));
    ASSERT_TRUE(own.ok()) << own.error().message;
    for (const auto& spec : required_fields()) {
      auto got = own->get(spec.key());
      EXPECT_EQ(got.has_value(), spec.exists_in(minor)) << spec.key();
      if (got) {
        EXPECT_EQ(got->source, OffsetSource::Dwarf) << spec.key();
      }
    }

    std::set<std::string> found;
    for (int as_minor : {22, 26}) {
      GoVersion pretend = version_of(b);
      pretend.minor = as_minor;
      auto offsets = read_dwarf_offsets(*elf, pretend);
      ASSERT_TRUE(offsets.ok()) << offsets.error().message;
      for (const auto& [key, offset] : offsets->all()) found.insert(key);
    }
    for (const auto& spec : required_fields())
      EXPECT_EQ(found.count(spec.key()) == 1, spec.exists_in(minor))
          << spec.key() << " is in the DWARF of go1." << minor << ": " << found.count(spec.key())
          << ", but the catalog says since 1." << spec.since_minor << " until 1." << spec.until_minor;
  }
}

TEST(StructOffsets, StrippedBinaryTableEqualsDwarfOfItsDefaultBuild) {
  int checked = 0;
  for (const auto& b : symbol_matrix()) {
    if (b.variant != "stripped") continue;
    SCOPED_TRACE(b.label());
    auto table = table_offsets(version_of(b));
    ASSERT_TRUE(table.ok()) << table.error().message;
    for (const auto& [key, offset] : table->all()) EXPECT_EQ(offset.source, OffsetSource::Table) << key;
    EXPECT_EQ(values(*table), values(dwarf_offsets(default_build_of(b))));
    checked++;
  }
  EXPECT_EQ(checked, 16);  // 2 fixtures x 8 Go versions
}

// One table per Go minor version serves every build mode and both arches.
TEST(StructOffsets, PieExtldArm64DwarfEqualsDefault) {
  for (const auto& b : symbol_matrix()) {
    if (b.variant != "pie" && b.variant != "extld" && b.variant != "arm64") continue;
    SCOPED_TRACE(b.label());
    EXPECT_EQ(values(dwarf_offsets(b)), values(dwarf_offsets(default_build_of(b))));
  }
}

// A second, unrelated DWARF reader: llvm-dwarfdump prints each catalog struct
// with its members, and every offset we report must match what it prints.
std::map<std::string, uint64_t> llvm_dwarfdump_offsets(const std::string& binary) {
  std::set<std::string> types;
  for (const auto& spec : required_fields()) types.insert(spec.type);
  std::vector<std::string> argv = {"llvm-dwarfdump", "--show-children"};
  for (const auto& t : types) argv.push_back("--name=" + t);
  argv.push_back(binary);
  std::istringstream out(run_command(argv));

  static const std::regex tag(R"re(^0x[0-9a-f]+:(\s+)DW_TAG_(\w+))re");
  static const std::regex name(R"re(DW_AT_name\s+\("([^"]*)"\))re");
  static const std::regex number(R"re(DW_AT_(byte_size|data_member_location)\s+\((\d+)\))re");
  std::map<std::string, uint64_t> offsets;
  std::string current_struct, current_member, current_tag;
  std::string line;
  std::smatch m;
  while (std::getline(out, line)) {
    if (std::regex_search(line, m, tag)) {
      current_tag = m[2];
      current_member.clear();
      if (current_tag == "structure_type") current_struct.clear();
    } else if (std::regex_search(line, m, name)) {
      if (current_tag == "structure_type") current_struct = m[1];
      if (current_tag == "member") current_member = m[1];
    } else if (std::regex_search(line, m, number) && !current_struct.empty()) {
      if (m[1] == "byte_size" && current_tag == "structure_type") offsets[current_struct] = std::stoull(m[2]);
      if (m[1] == "data_member_location" && current_tag == "member" && !current_member.empty())
        offsets[current_struct + "." + current_member] = std::stoull(m[2]);
    }
  }
  return offsets;
}

TEST(StructOffsets, DwarfAgreesWithLlvmDwarfdump) {
  for (const auto& b : symbol_matrix()) {
    if (b.variant != "default") continue;
    SCOPED_TRACE(b.label());
    auto theirs = llvm_dwarfdump_offsets(b.path);
    auto ours = values(dwarf_offsets(b));
    ASSERT_FALSE(ours.empty());
    for (const auto& [key, value] : ours) {
      ASSERT_TRUE(theirs.count(key)) << key << " not printed by llvm-dwarfdump";
      EXPECT_EQ(value, theirs[key]) << key;
    }
  }
}

// Anchors from docs (go-runtime.md §5, §6.2), read there with Go's own
// debug/dwarf: the offsets that moved between versions.
TEST(StructOffsets, TableMatchesDocumentedAnchors) {
  struct Anchor {
    int minor;
    const char* key;
    uint64_t value;
  };
  const Anchor anchors[] = {
      {19, "runtime.g.goid", 152},        {23, "runtime.g.goid", 160},      // 1.23 added g.syscallbp
      {25, "runtime.g.goid", 152},        {23, "runtime.g.atomicstatus", 152},
      {21, "runtime.g.parentGoid", 272},  {26, "runtime.g.parentGoid", 280},
      {19, "runtime.g", 392},             {26, "runtime.g", 456},
      {24, "runtime.gobuf.bp", 48},       {25, "runtime.gobuf.bp", 40},     // 1.25 dropped gobuf.ret
      {24, "runtime.m.curg", 192},        {25, "runtime.m.curg", 184},
      {22, "runtime.p.timers", 8872},     {26, "runtime.p.timers", 13672},
      {22, "runtime.timer", 72},          {23, "runtime.timer", 88},        {25, "runtime.timer", 96},
      {22, "runtime.timer.status", 64},   {25, "runtime.timer.when", 24},
      {23, "runtime.timeTimer.timer", 16}, {19, "runtime.moduledata.text", 176},
  };
  for (const auto& a : anchors) {
    GoVersion v;
    v.major = 1;
    v.minor = a.minor;
    auto table = table_offsets(v);
    ASSERT_TRUE(table.ok()) << table.error().message;
    EXPECT_EQ(table->at(a.key), a.value) << "go1." << a.minor << " " << a.key;
  }
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The committed table must be what the generator makes from the matrix now;
// a stale table (catalog or matrix changed, regen_go_tables not run) fails.
TEST(StructOffsets, GeneratedTableIsCurrent) {
  std::string tool = GOROSCOPE_BINARY_DIR "/gen_go_tables";
  ASSERT_TRUE(std::filesystem::exists(tool)) << tool << " missing; build the gen_go_tables target";
  // Same lookup as tests/support/fixture_matrix.cpp.
  const char* fixtures_env = std::getenv("GOROSCOPE_FIXTURES");
  std::string manifest = std::string(fixtures_env ? fixtures_env : GOROSCOPE_FIXTURES_DIR) + "/manifest.tsv";
  std::string fresh = (std::filesystem::temp_directory_path() /
                       ("go_tables." + std::to_string(getpid()) + ".inc")).string();
  run_command({tool, "-o", fresh, manifest});
  std::string expected = read_text(fresh);
  std::filesystem::remove(fresh);
  EXPECT_TRUE(expected == read_text(GOROSCOPE_SOURCE_DIR "/symbols/generated/go_tables.inc"))
      << "symbols/generated/go_tables.inc is stale: cmake --build <build> --target regen_go_tables";
}

TEST(StructOffsets, NoDwarfIsNotFound) {
  for (const auto& b : symbol_matrix()) {
    if (b.variant != "stripped") continue;
    auto offsets = read_dwarf_offsets(*open_elf(b), version_of(b));
    ASSERT_FALSE(offsets.ok()) << b.label();
    EXPECT_EQ(offsets.error().kind, ErrorKind::NotFound) << b.label() << ": " << offsets.error().message;
  }
}

TEST(StructOffsets, UnknownVersionHasNoTable) {
  for (int minor : {18, 27}) {
    GoVersion v;
    v.major = 1;
    v.minor = minor;
    auto table = table_offsets(v);
    ASSERT_FALSE(table.ok()) << minor;
    EXPECT_EQ(table.error().kind, ErrorKind::NotFound);
  }
}

// Garbage where the compressed .debug_info was: an error, not a crash.
TEST(StructOffsets, CorruptDwarfIsAnError) {
  const FixtureBinary b = default_builds_per_release().back();  // the newest release
  auto elf = open_elf(b);
  const ElfSection* info = elf->section(".debug_info");
  ASSERT_NE(info, nullptr);
  std::vector<uint8_t> bytes(elf->bytes().begin(), elf->bytes().end());
  for (uint64_t i = 0; i < info->size; i++) bytes[info->offset + i] = static_cast<uint8_t>(0xa5 ^ i);
  std::string path = (std::filesystem::temp_directory_path() /
                      ("corrupt_dwarf." + std::to_string(getpid()))).string();
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  auto corrupt = ElfImage::open(path);
  ASSERT_TRUE(corrupt.ok()) << corrupt.error().message;
  auto offsets = read_dwarf_offsets(**corrupt, version_of(b));
  std::filesystem::remove(path);
  ASSERT_FALSE(offsets.ok());
  EXPECT_EQ(offsets.error().kind, ErrorKind::Corrupt) << offsets.error().message;

  // An in-memory image has no file for libdw to read.
  auto in_memory = ElfImage::from_bytes(std::vector<uint8_t>(elf->bytes().begin(), elf->bytes().end()));
  ASSERT_TRUE(in_memory.ok());
  auto from_memory = read_dwarf_offsets(**in_memory, version_of(b));
  ASSERT_FALSE(from_memory.ok());
  EXPECT_EQ(from_memory.error().kind, ErrorKind::Io) << from_memory.error().message;
}

}  // namespace
}  // namespace goroscope

// WaitReasons against the fixture matrix, and against the Go source of the
// very toolchain that built each binary (runtime2.go's waitReason constants
// and waitReasonStrings literal).
#include "symbols/wait_reasons.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "tests/support/fixture_matrix.h"

namespace goroscope {
namespace {

using testing::FixtureBinary;
using testing::symbol_matrix;

GoVersion version_of(const FixtureBinary& b) {
  auto v = GoVersion::parse(b.go);
  if (!v) throw std::runtime_error("manifest has a bad Go version: " + b.go);
  return *v;
}

GoVersion go1(int minor) {
  GoVersion v;
  v.major = 1;
  v.minor = minor;
  return v;
}

WaitReasons from_binary(const FixtureBinary& b) {
  auto elf = ElfImage::open(b.path);
  if (!elf) throw std::runtime_error(b.label() + ": " + elf.error().message);
  auto reasons = read_wait_reasons(**elf);
  if (!reasons) throw std::runtime_error(b.label() + ": " + reasons.error().message);
  return *reasons;
}

WaitReasons from_table(int minor) {
  auto reasons = table_wait_reasons(go1(minor));
  if (!reasons) throw std::runtime_error(reasons.error().message);
  return *reasons;
}

// What `waitReasonStrings` evaluates to, from the source: the constants are
// numbered by iota in the order of the const block, and the array literal is
// keyed by them (1.26 lists the keys in a different order than the values).
std::vector<std::string> wait_reasons_from_go_source(const std::string& runtime2_go) {
  std::ifstream in(runtime2_go);
  if (!in) throw std::runtime_error("cannot read " + runtime2_go);
  static const std::regex constant(R"re(^\s*(waitReason\w+)\b)re");
  static const std::regex element(R"re(^\s*(waitReason\w+):\s*"([^"\\]*)",\s*$)re");
  std::map<std::string, size_t> value_of;
  std::map<size_t, std::string> strings;
  enum { Before, InConst, BetweenBlocks, InArray, Done } state = Before;
  std::string line;
  std::smatch m;
  while (state != Done && std::getline(in, line)) {
    switch (state) {
      case Before:
        if (line.find("waitReason = iota") == std::string::npos) break;
        state = InConst;
        [[fallthrough]];
      case InConst:
        if (line.starts_with(")")) {
          state = BetweenBlocks;
        } else if (std::regex_search(line, m, constant)) {
          value_of.emplace(m[1], value_of.size());
        }
        break;
      case BetweenBlocks:
        if (line.starts_with("var waitReasonStrings = [...]string{")) state = InArray;
        break;
      case InArray:
        if (line.starts_with("}")) {
          state = Done;
        } else if (std::regex_match(line, m, element) && value_of.count(m[1])) {
          strings[value_of[m[1]]] = m[2];
        } else if (!line.empty()) {
          throw std::runtime_error(runtime2_go + ": cannot parse waitReasonStrings line: " + line);
        }
        break;
      case Done: break;
    }
  }
  if (state != Done || strings.empty()) throw std::runtime_error(runtime2_go + ": waitReasonStrings not found");
  // [...]string{k: v} has length max(k)+1; keys not listed are "".
  std::vector<std::string> out(strings.rbegin()->first + 1);
  for (const auto& [value, text] : strings) out[value] = text;
  return out;
}

TEST(WaitReasons, SymtabEqualsTableForEveryBinary) {
  int checked = 0;
  for (const auto& b : symbol_matrix()) {
    if (b.variant == "stripped") continue;
    SCOPED_TRACE(b.label());
    WaitReasons read = from_binary(b);
    EXPECT_EQ(read.source, OffsetSource::Dwarf);
    WaitReasons table = from_table(version_of(b).minor);
    EXPECT_EQ(table.source, OffsetSource::Table);
    EXPECT_EQ(read.names, table.names);
    checked++;
  }
  EXPECT_EQ(checked, 64);  // 2 fixtures x 8 Go versions x 4 variants with .symtab
}

TEST(WaitReasons, BinaryMatchesTheSourceOfItsToolchain) {
  std::set<std::string> releases;
  for (const auto& b : symbol_matrix()) {
    if (b.variant != "default" || !releases.insert(b.go).second) continue;
    SCOPED_TRACE(b.label());
    // GOROOT is the directory above the toolchain's bin/go.
    auto goroot = std::filesystem::path(b.gobin).parent_path().parent_path();
    auto source = wait_reasons_from_go_source((goroot / "src/runtime/runtime2.go").string());
    EXPECT_EQ(from_binary(b).names, source);
  }
  EXPECT_EQ(releases.size(), 8u);
}

// Anchors from docs (go-runtime.md §4.1) and Go's release history.
TEST(WaitReasons, KnownValuesPerVersion) {
  for (int minor = 19; minor <= 26; minor++) {
    SCOPED_TRACE("go1." + std::to_string(minor));
    WaitReasons r = from_table(minor);
    EXPECT_EQ(r.name(0), "");
    EXPECT_EQ(r.value_of("chan receive"), minor <= 25 ? 14 : 19);  // 1.26 regrouped the sync waits
    EXPECT_EQ(r.name(r.value_of("chan receive")), "chan receive");
    EXPECT_EQ(r.value_of("select"), minor <= 25 ? 9 : 18);
    EXPECT_EQ(r.value_of("sleep"), minor <= 24 ? 19 : minor == 25 ? 20 : 14);
    EXPECT_EQ(r.value_of("sync.Mutex.Lock") >= 0, minor >= 20);  // before 1.20: "semacquire"
    EXPECT_EQ(r.value_of("sync.WaitGroup.Wait") >= 0, minor >= 24);
    EXPECT_EQ(r.value_of("chan receive (synctest)") >= 0, minor == 24);  // "(durable)" from 1.25
    EXPECT_EQ(r.value_of("chan receive (durable)") >= 0, minor >= 25);
    EXPECT_EQ(r.value_of("no such reason"), -1);
    EXPECT_EQ(r.name(250), "wait reason 250");
  }
}

TEST(WaitReasons, StrippedBinaryIsNotFoundButHasATable) {
  for (const auto& b : symbol_matrix()) {
    if (b.variant != "stripped") continue;
    SCOPED_TRACE(b.label());
    auto elf = ElfImage::open(b.path);
    ASSERT_TRUE(elf.ok()) << elf.error().message;
    auto reasons = read_wait_reasons(**elf);
    ASSERT_FALSE(reasons.ok());
    EXPECT_EQ(reasons.error().kind, ErrorKind::NotFound);
    EXPECT_TRUE(table_wait_reasons(version_of(b)).ok());
  }
}

TEST(WaitReasons, UnknownVersionHasNoTable) {
  for (int minor : {18, 27}) {
    auto reasons = table_wait_reasons(go1(minor));
    ASSERT_FALSE(reasons.ok()) << minor;
    EXPECT_EQ(reasons.error().kind, ErrorKind::NotFound);
  }
}

}  // namespace
}  // namespace goroscope

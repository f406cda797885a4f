// .go.buildinfo against the Go toolchain's own reading of it (`go version
// -m`), on every fixture build, plus the facts the build script put there.
#include <gtest/gtest.h>

#include <sstream>

#include "symbols/build_info.h"
#include "symbols/elf_image.h"
#include "tests/support/fixture_matrix.h"

namespace goroscope {
namespace {

using testing::symbol_matrix;
using testing::run_command;

TEST(BuildInfo, MatchesGoVersionMOnEveryFixture) {
  for (const auto& fx : symbol_matrix()) {
    SCOPED_TRACE(fx.label());
    auto elf = ElfImage::open(fx.path);
    ASSERT_TRUE(elf) << elf.error().message;
    auto bi = read_build_info(**elf);
    ASSERT_TRUE(bi) << bi.error().message;

    // go version -m prints "<path>: <version>" then the modinfo lines, each
    // indented by a tab: exactly the text we read, line for line.
    std::string out = run_command({"env", "GOTOOLCHAIN=local", fx.gobin, "version", "-m", fx.path});
    std::istringstream lines(out);
    std::string first;
    std::getline(lines, first);
    EXPECT_EQ(first, fx.path + ": " + bi->go_version.raw);
    std::string expected_modinfo, line;
    while (std::getline(lines, line)) {
      ASSERT_FALSE(line.empty());
      ASSERT_EQ(line[0], '\t');
      expected_modinfo += line.substr(1) + "\n";
    }
    EXPECT_EQ(bi->modinfo, expected_modinfo);

    // Independent facts from tests/fixtures/build-matrix.sh and go-versions.txt.
    EXPECT_EQ(bi->go_version.raw, fx.go);
    EXPECT_EQ(bi->main_path, "goroscope.test/fixtures/" + fx.fixture);
    EXPECT_EQ(bi->main_module.path, "goroscope.test/fixtures");
    EXPECT_EQ(bi->setting("GOARCH"), fx.goarch);
    EXPECT_EQ(bi->setting("CGO_ENABLED"), fx.variant == "extld" ? "1" : "0");
    if (fx.variant == "stripped") {
      // With -trimpath the go command leaves -ldflags out (it may hold paths).
      EXPECT_EQ(bi->setting("-trimpath"), "true");
      EXPECT_EQ(bi->setting("-ldflags"), "");
    }
    // -buildmode is recorded from Go 1.20 on.
    if (fx.variant == "pie" && bi->go_version.at_least(1, 20)) EXPECT_EQ(bi->setting("-buildmode"), "pie");
    if (fx.variant == "extld") EXPECT_EQ(bi->setting("-ldflags"), "-linkmode=external");
  }
}

TEST(BuildInfo, DefaultGodebugReflectsTheModuleGoLine) {
  // The fixtures' go.mod says `go 1.19`, so toolchains >= 1.23 keep the old
  // timer channels: DefaultGODEBUG carries asynctimerchan=1.
  for (const auto& fx : symbol_matrix()) {
    SCOPED_TRACE(fx.label());
    auto elf = ElfImage::open(fx.path);
    ASSERT_TRUE(elf);
    auto bi = read_build_info(**elf);
    ASSERT_TRUE(bi);
    if (bi->go_version.at_least(1, 23)) {
      EXPECT_EQ(bi->default_godebug("asynctimerchan"), "1");
    } else {
      EXPECT_EQ(bi->default_godebug("asynctimerchan"), "");
    }
  }
}

TEST(GoVersionParse, OddSuffixesAndDevelBuilds) {
  auto v = GoVersion::parse("go1.20.7 X:boringcrypto");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->minor, 20);
  EXPECT_EQ(v->patch, 7);
  EXPECT_EQ(v->raw, "go1.20.7 X:boringcrypto");
  v = GoVersion::parse("go1.21rc2");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->minor, 21);
  EXPECT_EQ(v->patch, 0);
  v = GoVersion::parse("devel go1.24-5a3d0a7 Tue Dec 3 20:05:58 2024 +0000");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->minor, 24);
  EXPECT_EQ(v->minor_key(), "go1.24");
  EXPECT_FALSE(GoVersion::parse("gccgo"));
  EXPECT_FALSE(GoVersion::parse("go"));
}

}  // namespace
}  // namespace goroscope

// `goroscope inspect` as a user runs it: the JSON contract on every fixture
// build, --pid on a live process, --addr2line against `go tool addr2line`,
// and one-line errors with a non-zero exit for every kind of bad input.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "symbols/go_binary.h"
#include "tests/support/fixture_matrix.h"
#include "tests/support/goroscope_cli.h"

namespace goroscope {
namespace {

using nlohmann::json;
using testing::symbol_matrix;
using testing::run_command;

const std::string& kGoroscope = testing::goroscope_path();

using Outcome = testing::CliOutcome;
using testing::run_goroscope;

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

TEST(InspectCli, JsonContractOnEveryFixture) {
  for (const auto& fx : symbol_matrix()) {
    SCOPED_TRACE(fx.label());
    Outcome o = run_goroscope({"inspect", fx.path, "--format", "json"});
    ASSERT_EQ(o.status, 0) << o.err;
    json j = json::parse(o.out);
    EXPECT_EQ(j["go_version"], fx.go);
    EXPECT_EQ(j["stripped"], fx.variant == "stripped");
    EXPECT_EQ(j["pie"], fx.variant == "pie");
    EXPECT_EQ(j["arch"], fx.goarch);
    const json& np1 = j["functions"]["runtime.newproc1"];
    ASSERT_TRUE(np1.is_object());
    EXPECT_GT(np1["address"].get<uint64_t>(), 0u);
    EXPECT_GT(np1["file_offset"].get<uint64_t>(), 0u);
    EXPECT_EQ(np1["ret_offsets"].size(), 1u);
    ASSERT_TRUE(j["offsets"].contains("runtime.g.goid"));
    EXPECT_EQ(j["offsets"]["runtime.g.goid"]["source"], fx.variant == "stripped" ? "table" : "dwarf");
    // go-runtime.md §5: goid is at 160 in 1.23/1.24 and 152 in every other version.
    bool moved = fx.go.rfind("go1.23.", 0) == 0 || fx.go.rfind("go1.24.", 0) == 0;
    EXPECT_EQ(j["offsets"]["runtime.g.goid"]["value"], moved ? 160 : 152);
    // Stripped builds say where their offsets came from.
    if (fx.variant == "stripped") EXPECT_FALSE(j["warnings"].empty());
  }
}

TEST(InspectCli, TextOutputNamesTheEssentials) {
  const auto fx = testing::fixtures("leakdemo", "stripped").back();
  Outcome o = run_goroscope({"inspect", fx.path});
  ASSERT_EQ(o.status, 0) << o.err;
  for (const char* want : {"go version", "stripped (no .symtab)", "runtime.newproc1", "runtime.g.goid", "(table)"})
    EXPECT_NE(o.out.find(want), std::string::npos) << want << "\n" << o.out;
}

TEST(InspectCli, PidResolvesTheRunningExecutable) {
  for (const auto& fx : testing::fixtures("leakdemo")) {
    if (!fx.runnable() || fx.variant != "pie") continue;
    SCOPED_TRACE(fx.label());
    pid_t pid = fork();
    if (pid == 0) {
      execl(fx.path.c_str(), fx.path.c_str(), "-rate", "5", "-duration", "20s", nullptr);
      _exit(127);
    }
    usleep(200 * 1000);
    Outcome o = run_goroscope({"inspect", "--pid", std::to_string(pid), "--format", "json"});
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
    ASSERT_EQ(o.status, 0) << o.err;
    json j = json::parse(o.out);
    EXPECT_EQ(j["pid"], pid);
    EXPECT_EQ(j["path"], fx.path);
    EXPECT_EQ(j["go_version"], fx.go);
    EXPECT_TRUE(j["pie"].get<bool>());
  }
}

TEST(InspectCli, Addr2lineMatchesGoToolAddr2line) {
  for (const auto& fx : symbol_matrix()) {
    if (fx.fixture != "leakdemo" || (fx.variant != "default" && fx.variant != "stripped")) continue;
    SCOPED_TRACE(fx.label());
    auto bin = GoBinary::open(fx.path);
    ASSERT_TRUE(bin);
    const Pclntab& pt = (*bin)->pclntab();
    std::mt19937_64 rng(42);
    std::string input;
    for (int i = 0; i < 300; i++) {
      FuncInfo f = pt.func(rng() % pt.num_funcs());
      char buf[32];
      snprintf(buf, sizeof buf, "0x%llx\n", (unsigned long long)(f.entry + rng() % (f.end - f.entry)));
      input += buf;
    }
    input += "0x10\n";  // in no function
    std::string ours = run_command({kGoroscope, "inspect", fx.path, "--addr2line"}, input);
    std::string theirs = run_command({"env", "GOTOOLCHAIN=local", fx.gobin, "tool", "addr2line", fx.path}, input);
    EXPECT_EQ(ours, theirs);
  }
}

// A copy of a real fixture with the first `from` after `anchor` replaced.
std::string patched_copy(const std::string& src, const std::string& anchor, const std::string& from,
                         const std::string& to, const char* name) {
  std::string bytes = read_file(src);
  size_t at = bytes.find(anchor);
  if (at != std::string::npos) at = bytes.find(from, at);
  EXPECT_NE(at, std::string::npos) << "pattern not in " << src;
  if (at != std::string::npos) bytes.replace(at, from.size(), to);
  std::string path = ::testing::TempDir() + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

const std::string kBuildInfoMagic = "\xff Go buildinf:";

void expect_one_line_error(const Outcome& o, const std::string& needle) {
  EXPECT_NE(o.status, 0);
  EXPECT_TRUE(o.out.empty()) << o.out;
  ASSERT_FALSE(o.err.empty());
  EXPECT_EQ(o.err.find('\n'), o.err.size() - 1) << "more than one line: " << o.err;
  EXPECT_EQ(o.err.rfind("goroscope: ", 0), 0u) << o.err;
  EXPECT_NE(o.err.find(needle), std::string::npos) << o.err;
}

TEST(InspectCli, BadInputGivesOneLineErrors) {
  std::string tmp = ::testing::TempDir();
  expect_one_line_error(run_goroscope({"inspect", tmp + "does-not-exist"}), "No such file");

  std::string text = tmp + "notes.txt";
  std::ofstream(text) << "just some text, certainly not an executable\n";
  expect_one_line_error(run_goroscope({"inspect", text}), "not an ELF file");

  expect_one_line_error(run_goroscope({"inspect", "/bin/true"}), "not a Go binary");

  const auto fx = testing::fixtures("symbolzoo", "default").front();  // go1.19
  std::string bytes = read_file(fx.path);
  std::string truncated = tmp + "truncated";
  std::ofstream(truncated, std::ios::binary) << bytes.substr(0, bytes.size() / 3);
  Outcome o = run_goroscope({"inspect", truncated});
  expect_one_line_error(o, "truncated");

  const auto v22 = testing::fixtures("symbolzoo", "default")[3];
  ASSERT_EQ(v22.go, "go1.22.12");
  expect_one_line_error(run_goroscope({"inspect", patched_copy(v22.path, kBuildInfoMagic, "go1.22.12", "go1.17.12", "old-go")}),
                        "go1.17.12; goroscope supports go1.18 to go1.26");
  expect_one_line_error(run_goroscope({"inspect", patched_copy(v22.path, kBuildInfoMagic, "go1.22.12", "go1.99.12", "new-go")}),
                        "go1.99.12; goroscope supports go1.18 to go1.26");
  // A pclntab whose magic says Go 1.16/1.17.
  std::string magic_old = patched_copy(v22.path, "", std::string("\xf1\xff\xff\xff\x00\x00", 6),
                                       std::string("\xfa\xff\xff\xff\x00\x00", 6), "old-pclntab");
  expect_one_line_error(run_goroscope({"inspect", magic_old}), "pclntab");

  expect_one_line_error(run_goroscope({"inspect", "--pid", "999999999"}), "no process with PID 999999999");
  pid_t gone = fork();
  if (gone == 0) _exit(0);
  waitpid(gone, nullptr, 0);
  expect_one_line_error(run_goroscope({"inspect", "--pid", std::to_string(gone)}), "no process");
}

TEST(InspectCli, UsageErrorsAndHelp) {
  Outcome o = run_goroscope({"inspect"});
  EXPECT_NE(o.status, 0);
  EXPECT_NE(o.err.find("BINARY or --pid"), std::string::npos) << o.err;
  o = run_goroscope({"inspect", "--help"});
  EXPECT_EQ(o.status, 0);
  EXPECT_NE(o.out.find("EXAMPLES"), std::string::npos);
}

}  // namespace
}  // namespace goroscope

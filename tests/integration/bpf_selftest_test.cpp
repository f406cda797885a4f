// Proves the BPF chain on real Go programs: a uprobe built from bpf/, placed
// at the offset symbols/ computed (after the stack-growth check, so it fires
// once per call), reads the argument, the return address and the goid (at
// the DWARF/table offset) of a call the fixture makes exactly once.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/bpf_selftest.h"
#include "symbols/machine_code.h"
#include "symbols/go_binary.h"
#include "symbols/probe_points.h"
#include "tests/support/fixture_matrix.h"
#include "tests/support/privileges.h"

namespace goroscope {
namespace {

using testing::FixtureBinary;

pid_t spawn(const std::string& path, const std::vector<std::string>& args) {
  pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> argv{const_cast<char*>(path.c_str())};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(path.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

class BpfSelftestTest : public ::testing::TestWithParam<FixtureBinary> {};

TEST_P(BpfSelftestTest, UprobeSeesEachCallOnceWithArgumentGoidAndCaller) {
  GOROSCOPE_REQUIRE_PRIVILEGES();
  const FixtureBinary& fx = GetParam();
  auto bin = GoBinary::open(fx.path);
  ASSERT_TRUE(bin) << bin.error().message;
  auto func = (*bin)->pclntab().func_by_name("main.grow");
  ASSERT_TRUE(func);
  auto caller = (*bin)->pclntab().func_by_name("main.main");
  ASSERT_TRUE(caller);
  FunctionCode code = analyze_function((*bin)->elf(), *func).value();
  // grow appends, so it has a frame and a stack check; the probe goes after
  // it so a morestack re-entry cannot count the call twice.
  ASSERT_TRUE(code.after_stack_check);
  uint64_t offset = *(*bin)->elf().file_offset(*code.after_stack_check);

  auto probe = BpfSelftest::attach(fx.path, offset, -1, (*bin)->offsets().at("runtime.g.goid"));
  ASSERT_TRUE(probe) << probe.error().message;

  pid_t child = spawn(fx.path, {"-once"});
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "fixture failed under the probe";

  std::vector<selftest_event> mine;
  for (int i = 0; i < 5 && mine.empty(); i++)
    for (const auto& e : (*probe)->poll(100))
      if (static_cast<pid_t>(e.pid) == child) mine.push_back(e);

  // symbolzoo -once calls grow(100) exactly once, from
  // main.main, on the main goroutine (goid 1).
  ASSERT_EQ(mine.size(), 1u);
  EXPECT_EQ(mine[0].arg0, 100u);
  EXPECT_EQ(mine[0].goid, 1u);
  if (!(*bin)->pie()) {
    EXPECT_GE(mine[0].ret_pc, caller->entry);
    EXPECT_LT(mine[0].ret_pc, caller->end);
  } else {
    // PIE: the return address is relocated by a page-aligned load bias.
    EXPECT_NE(mine[0].ret_pc, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Matrix, BpfSelftestTest, ::testing::ValuesIn(testing::runnable_builds("symbolzoo")),
                         testing::build_name);

}  // namespace
}  // namespace goroscope

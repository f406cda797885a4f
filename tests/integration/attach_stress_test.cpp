// Attaching and detaching 200 times to a program whose goroutines are born
// constantly and whose stacks grow (and move) deeply: the target must never
// crash or compute a wrong result (stackstress checks every result and exits
// with status 3 on a wrong one), and every report must still name its site.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/support/fixture_matrix.h"
#include "tests/support/goroscope_cli.h"
#include "tests/support/privileges.h"
#include "tests/support/running_fixture.h"

namespace goroscope {
namespace {

int marker_line(const std::string& marker) {
  std::ifstream in(std::string(GOROSCOPE_SOURCE_DIR) + "/tests/fixtures/stackstress/main.go");
  std::string line;
  for (int n = 1; std::getline(in, line); n++)
    if (line.find("// " + marker) != std::string::npos) return n;
  return -1;
}

TEST(AttachStress, TwoHundredAttachDetachCyclesLeaveTheTargetUnharmed) {
  GOROSCOPE_REQUIRE_PRIVILEGES();
  testing::FixtureBinary fx;
  for (const auto& b : testing::fixtures("stackstress", "default"))
    if (b.go.rfind("go1.26.", 0) == 0) fx = b;
  ASSERT_FALSE(fx.path.empty());
  testing::RunningFixture target(fx.path, {"-workers", "4"});
  ASSERT_TRUE(target.wait_for_line("ready", std::chrono::seconds(10)));
  const int site_line = marker_line("STRESS_SITE");

  int reports_with_site = 0;
  for (int i = 0; i < 200; i++) {
    SCOPED_TRACE("cycle " + std::to_string(i));
    testing::CliOutcome o = testing::run_goroscope({"attach", "--pid", std::to_string(target.pid()), "--format",
                                                    "json", "--duration", "150ms", "--interval", "50ms"});
    ASSERT_EQ(o.status, 0) << o.err;
    // The target is still running: no crash, no wrong result (exit 3).
    int status = 0;
    ASSERT_EQ(waitpid(target.pid(), &status, WNOHANG), 0)
        << "target died: " << (WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                                                 : "signal " + std::to_string(WTERMSIG(status)));
    nlohmann::json r = nlohmann::json::parse(o.out);
    for (const auto& s : r["goroutines"]["sites"])
      if (s["line"] == site_line && s["function"] == "main.main.func1" && s["created_total"].get<int>() > 0)
        reports_with_site++;
  }
  EXPECT_EQ(reports_with_site, 200);
}

}  // namespace
}  // namespace goroscope

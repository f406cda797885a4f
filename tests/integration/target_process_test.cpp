// Targets as they are found in production: in another mount namespace (a
// container: its binary's path does not exist in ours), watched by a user
// without privileges, and replacing their program (exec) mid-run.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests/support/fixture_matrix.h"
#include "tests/support/goroscope_cli.h"
#include "tests/support/privileges.h"
#include "tests/support/running_fixture.h"

namespace goroscope {
namespace {

using nlohmann::json;
using testing::RunningFixture;

testing::FixtureBinary build(const std::string& fixture, const std::string& go_minor) {
  for (const auto& b : testing::runnable_builds(fixture, {go_minor}))
    if (b.variant == "default") return b;
  throw std::runtime_error("no build of " + fixture);
}

int marker_line(const std::string& fixture, const std::string& marker) {
  std::ifstream in(std::string(GOROSCOPE_SOURCE_DIR) + "/tests/fixtures/" + fixture + "/main.go");
  std::string line;
  for (int n = 1; std::getline(in, line); n++)
    if (line.find("// " + marker) != std::string::npos) return n;
  throw std::runtime_error("no marker " + marker);
}

TEST(TargetProcess, ProcessInAnotherMountNamespace) {
  GOROSCOPE_REQUIRE_PRIVILEGES();
  const auto fx = build("workerpool", "go1.26");
  // The fixture runs from a tmpfs mounted only in its own mount namespace:
  // from here the path names nothing, but /proc/PID/exe still opens it.
  const std::string dir = "/tmp/goroscope-mntns-" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  RunningFixture target("/usr/bin/unshare",
                        {"--mount", "--propagation", "private", "sh", "-c",
                         "mount -t tmpfs none " + dir + " && cp " + fx.path + " " + dir + "/service && exec " + dir +
                             "/service -workers 6"});
  ASSERT_TRUE(target.wait_for_line("ready", std::chrono::seconds(10)));
  ASSERT_FALSE(std::filesystem::exists(dir + "/service")) << "the mount leaked into this namespace";

  auto ins = testing::run_goroscope({"inspect", "--pid", std::to_string(target.pid()), "--format", "json"});
  ASSERT_EQ(ins.status, 0) << ins.err;
  json j = json::parse(ins.out);
  EXPECT_EQ(j["path"], dir + "/service");
  EXPECT_EQ(j["go_version"], fx.go);

  auto att = testing::run_goroscope(
      {"attach", "--pid", std::to_string(target.pid()), "--format", "json", "--duration", "1s", "--interval", "250ms"});
  ASSERT_EQ(att.status, 0) << att.err;
  json r = json::parse(att.out);
  EXPECT_EQ(r["exe"], dir + "/service");
  bool found = false;
  for (const auto& s : r["goroutines"]["sites"])
    if (s["line"] == marker_line("workerpool", "POOL_SITE") && s["live"] == 6) found = true;
  EXPECT_TRUE(found) << r["goroutines"]["sites"].dump(1);
  target.kill_and_reap();
  std::filesystem::remove_all(dir);
}

TEST(TargetProcess, UnprivilegedUserGetsOneLineError) {
  GOROSCOPE_REQUIRE_PRIVILEGES();
  const auto fx = build("workerpool", "go1.26");
  RunningFixture target(fx.path, {"-workers", "2"});
  ASSERT_TRUE(target.wait_for_line("ready", std::chrono::seconds(10)));
  // goroscope as nobody, every capability dropped.
  std::vector<std::string> args = {"--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all",
                                   testing::goroscope_path(), "attach", "--pid", std::to_string(target.pid())};
  std::string out_path = ::testing::TempDir() + "unpriv_err." + std::to_string(getpid());
  pid_t child = fork();
  if (child == 0) {
    freopen(out_path.c_str(), "w", stderr);
    freopen("/dev/null", "w", stdout);
    std::vector<char*> argv{const_cast<char*>("setpriv")};
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv("/usr/bin/setpriv", argv.data());
    _exit(127);
  }
  int status = 0;
  waitpid(child, &status, 0);
  std::ifstream err(out_path);
  std::string text((std::istreambuf_iterator<char>(err)), {});
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 1) << status << " " << text;
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1) << text;
  EXPECT_NE(text.find("permission denied"), std::string::npos) << text;
  // The target did not notice.
  EXPECT_EQ(waitpid(target.pid(), nullptr, WNOHANG), 0);
}

TEST(TargetProcess, TargetThatExecsEndsTheRunWithAReport) {
  GOROSCOPE_REQUIRE_PRIVILEGES();
  const auto fx = build("spawnexit", "go1.26");
  RunningFixture target(fx.path, {});
  ASSERT_TRUE(target.wait_for_line("ready", std::chrono::seconds(10)));
  // goroscope in the background; the target replaces itself with sleep.
  std::string out_path = ::testing::TempDir() + "exec_out." + std::to_string(getpid());
  std::string err_path = out_path + ".err";
  pid_t child = fork();
  if (child == 0) {
    freopen(out_path.c_str(), "w", stdout);
    freopen(err_path.c_str(), "w", stderr);
    execl(testing::goroscope_path().c_str(), "goroscope", "attach", "--pid", std::to_string(target.pid()).c_str(),
          "--format", "json", "--interval", "200ms", "--duration", "20s", nullptr);
    _exit(127);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  ASSERT_TRUE(target.send("spawn 100"));
  ASSERT_TRUE(target.wait_for_line("spawned 100", std::chrono::seconds(10)));
  ASSERT_TRUE(target.send("exec"));
  auto t0 = std::chrono::steady_clock::now();
  int status = 0;
  waitpid(child, &status, 0);
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(took, 5.0) << "goroscope kept running after the exec";
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  std::ifstream err(err_path);
  std::string text((std::istreambuf_iterator<char>(err)), {});
  EXPECT_NE(text.find("replaced its program (exec)"), std::string::npos) << text;
  std::ifstream out(out_path);
  json r = json::parse(out);
  EXPECT_EQ(r["stopped_by"], "target exec");
  EXPECT_GE(r["goroutines"]["created_total"].get<int>(), 100);
}

}  // namespace
}  // namespace goroscope

// GoBinary::open_cached: one parsed binary per file, however many workers
// ask for it at once (the daemon attaching to many processes of one program).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <thread>
#include <vector>

#include "symbols/go_binary.h"
#include "tests/support/fixture_matrix.h"

namespace goroscope {
namespace {

TEST(GoBinaryCache, ConcurrentOpensOfOneFileShareOneBinary) {
  const auto builds = testing::fixtures("symbolzoo", "stripped");
  ASSERT_FALSE(builds.empty());
  const std::string path = builds.front().path;
  std::vector<std::shared_ptr<const GoBinary>> opened(16);
  std::vector<std::thread> workers;
  for (auto& slot : opened)
    workers.emplace_back([&slot, &path] {
      auto b = GoBinary::open_cached(path);
      if (b) slot = b.value();
    });
  for (auto& w : workers) w.join();
  for (const auto& b : opened) {
    ASSERT_NE(b, nullptr);
    EXPECT_EQ(b.get(), opened.front().get());
  }
}

TEST(GoBinaryCache, AFailedOpenIsNotCached) {
  const std::string path = ::testing::TempDir() + "goroscope_not_go_" + std::to_string(getpid());
  { std::ofstream(path) << "not an ELF file"; }
  auto first = GoBinary::open_cached(path);
  ASSERT_FALSE(first);
  auto again = GoBinary::open_cached(path);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().kind, first.error().kind);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace goroscope

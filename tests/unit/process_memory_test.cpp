// ProcessMemory against this very process (reading oneself needs no
// privilege): three pages with the middle one unmapped, so that batches mix
// good reads, reads of a hole and reads running into it — merged or not, and
// split across threads — and each must come back filled or failed alone.
#include "daemon/process_memory.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <numeric>

namespace goroscope {
namespace {

class ProcessMemoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    page_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    void* p = mmap(nullptr, 3 * page_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(p, MAP_FAILED);
    base_ = static_cast<uint8_t*>(p);
    for (size_t i = 0; i < 3 * page_; i++) base_[i] = static_cast<uint8_t>(i * 7 + 3);
    ASSERT_EQ(munmap(base_ + page_, page_), 0);
  }
  void TearDown() override {
    munmap(base_, page_);
    munmap(base_ + 2 * page_, page_);
  }
  uint64_t at(size_t offset) const { return reinterpret_cast<uint64_t>(base_ + offset); }
  uint8_t expected(size_t offset) const { return static_cast<uint8_t>(offset * 7 + 3); }

  size_t page_ = 0;
  uint8_t* base_ = nullptr;
  ProcessMemory self_{getpid()};
};

TEST_F(ProcessMemoryTest, ReadReportsUnmappedAndPartlyMappedRanges) {
  uint8_t buf[64];
  ASSERT_TRUE(self_.read(at(100), buf, sizeof buf));
  for (size_t i = 0; i < sizeof buf; i++) ASSERT_EQ(buf[i], expected(100 + i));

  auto hole = self_.read(at(page_ + 8), buf, 8);
  ASSERT_FALSE(hole);
  EXPECT_EQ(hole.error().kind, ErrorKind::Io);
  EXPECT_NE(hole.error().message.find("is not mapped"), std::string::npos) << hole.error().message;

  auto straddling = self_.read(at(page_ - 16), buf, 32);
  ASSERT_FALSE(straddling);
  EXPECT_NE(straddling.error().message.find("is not mapped"), std::string::npos) << straddling.error().message;
}

TEST_F(ProcessMemoryTest, BatchFailsOnlyTheReadsThatTouchTheHole) {
  for (size_t merge_gap : {size_t{0}, size_t{64}, size_t{4096}}) {
    SCOPED_TRACE("merge_gap " + std::to_string(merge_gap));
    struct Case {
      size_t offset, size;
      bool ok;
    };
    const std::vector<Case> cases = {
        {0, 16, true},                 // first read of a call
        {40, 16, true},                // 24 bytes after the previous: merged
        {page_ - 64, 32, true},        // far: its own iovec
        {page_ - 16, 32, false},       // runs into the hole
        {page_ - 8, 8, true},          // after a failure, back in the mapped page
        {page_ + 100, 8, false},       // inside the hole
        {2 * page_ + 8, 24, true},     // the third page
        {2 * page_ + 40, 8, true},     // merged again
        {page_ + 200, 8, false},       // backwards into the hole
        {page_ + 300, 8, false},       // the first read of a call fails: EFAULT
        {2 * page_ + 4000, 16, true},  // last
    };
    std::vector<std::vector<uint8_t>> bufs;
    std::vector<RemoteRead> reads;
    for (const Case& c : cases) bufs.emplace_back(c.size, 0);
    for (size_t i = 0; i < cases.size(); i++)
      reads.push_back(RemoteRead{at(cases[i].offset), cases[i].size, bufs[i].data()});

    std::vector<uint8_t> filled;
    auto n = self_.read_batch(reads, filled, merge_gap);
    ASSERT_TRUE(n) << n.error().message;
    size_t want = 0;
    for (size_t i = 0; i < cases.size(); i++) {
      EXPECT_EQ(filled[i] != 0, cases[i].ok) << "read " << i;
      if (!cases[i].ok) continue;
      want++;
      for (size_t b = 0; b < cases[i].size; b++) ASSERT_EQ(bufs[i][b], expected(cases[i].offset + b)) << "read " << i;
    }
    EXPECT_EQ(*n, want);
  }
}

TEST_F(ProcessMemoryTest, LargeBatchesSplitAcrossThreadsKeepEveryResult) {
  // Far beyond IOV_MAX reads, every 7th in the hole.
  constexpr size_t kReads = 40'000;
  std::vector<uint64_t> got(kReads, 0);
  std::vector<RemoteRead> reads;
  for (size_t i = 0; i < kReads; i++) {
    size_t offset = i % 7 == 0 ? page_ + (i % 500) * 8 : (i % 2 ? 0 : 2 * page_) + (i % 500) * 8;
    reads.push_back(RemoteRead{at(offset), 8, &got[i]});
  }
  std::vector<uint8_t> filled;
  auto n = self_.read_batch(reads, filled, 64);
  ASSERT_TRUE(n) << n.error().message;
  size_t ok = 0;
  for (size_t i = 0; i < kReads; i++) {
    ASSERT_EQ(filled[i] != 0, i % 7 != 0) << "read " << i;
    if (!filled[i]) continue;
    ok++;
    uint64_t want;
    std::memcpy(&want, reinterpret_cast<const void*>(reads[i].address), 8);
    ASSERT_EQ(got[i], want) << "read " << i;
  }
  EXPECT_EQ(*n, ok);
}

TEST(ProcessMemory, ProcessThatExitedIsAnIoError) {
  pid_t child = fork();
  if (child == 0) _exit(0);
  ASSERT_EQ(waitpid(child, nullptr, 0), child);
  uint64_t v = 0;
  auto r = ProcessMemory(child).read(reinterpret_cast<uint64_t>(&v), &v, sizeof v);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().kind, ErrorKind::Io);
  EXPECT_NE(r.error().message.find("has exited"), std::string::npos) << r.error().message;
}

}  // namespace
}  // namespace goroscope

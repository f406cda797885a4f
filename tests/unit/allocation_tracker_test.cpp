// The allocation tracker without privileges: the size-class table against
// the runtime's own tables in every fixture version, the standard-library
// test for sites, attribution of recorded stacks to the first frame outside
// the standard library (a real allochot binary, synthetic events), GC cycle
// accounting, and the JSON section with its site cap.
#include "daemon/allocation_tracker.h"

#include <gtest/gtest.h>

#include <fstream>

#include "exporters/allocation_report.h"
#include "symbols/go_binary.h"
#include "tests/support/fixture_matrix.h"

namespace goroscope {
namespace {

TEST(SpanClass, ObjectsPerSpan) {
  EXPECT_EQ(span_class_info(44 << 1 | 1).elem_size, 4096u);  // 4 KiB, noscan
  EXPECT_EQ(span_class_info(44 << 1 | 1).objects, 2u);
  EXPECT_EQ(span_class_info(2 << 1 | 1).objects, 512u);  // tiny blocks (16 B)
  EXPECT_EQ(span_class_info(26 << 1).elem_size, 512u);
  EXPECT_EQ(span_class_info(67 << 1).objects, 1u);  // 32 KiB in 4 pages
  EXPECT_EQ(span_class_info(0).elem_size, 0u);      // large: not a size class
  EXPECT_EQ(span_class_info(68 << 1).elem_size, 0u);
}

// The hard-coded table is the runtime's: runtime.class_to_size and
// class_to_allocnpages (internal/runtime/gc.SizeClassToSize/NPages from 1.26)
// read from every unstripped fixture version.
TEST(SpanClass, MatchesTheRuntimeTablesInEveryVersion) {
  int checked = 0;
  for (const auto& fx : testing::fixtures("leakdemo", "default")) {
    SCOPED_TRACE(fx.label());
    auto bin = GoBinary::open(fx.path);
    ASSERT_TRUE(bin);
    const ElfImage& elf = (*bin)->elf();
    auto sizes = elf.symbol("runtime.class_to_size");
    auto pages = elf.symbol("runtime.class_to_allocnpages");
    if (!sizes) sizes = elf.symbol("internal/runtime/gc.SizeClassToSize");
    if (!pages) pages = elf.symbol("internal/runtime/gc.SizeClassToNPages");
    ASSERT_TRUE(sizes && pages);
    auto s = elf.read_vaddr(sizes->value, 68 * 2, "class_to_size");
    auto p = elf.read_vaddr(pages->value, 68, "class_to_allocnpages");
    ASSERT_TRUE(s && p);
    for (unsigned c = 1; c < 68; c++) {
      SpanClassInfo info = span_class_info(uint8_t(c << 1));
      EXPECT_EQ(info.elem_size, s->u16(c * 2)) << c;
      EXPECT_EQ(info.objects, p->u8(c) * 8192u / s->u16(c * 2)) << c;
    }
    checked++;
  }
  EXPECT_GE(checked, 8);
}

TEST(StandardLibrary, PackagePaths) {
  BuildInfo bi;
  bi.main_module.path = "shop";
  bi.deps.push_back({"github.com/acme/lib", "v1.0.0", "", ""});
  EXPECT_TRUE(is_standard_library("runtime.mallocgc", bi));
  EXPECT_TRUE(is_standard_library("encoding/json.(*decodeState).object", bi));
  EXPECT_TRUE(is_standard_library("vendor/golang.org/x/net/http2/hpack.(*Decoder).Write", bi));
  EXPECT_TRUE(is_standard_library("internal/runtime/maps.newarray", bi));
  EXPECT_TRUE(is_standard_library("type:.eq.main.T", bi));
  EXPECT_TRUE(is_standard_library("", bi));
  EXPECT_FALSE(is_standard_library("main.main.func1", bi));
  EXPECT_FALSE(is_standard_library("shop/orders.(*Server).handle", bi));  // dot-less main module
  EXPECT_FALSE(is_standard_library("shop.F", bi));
  EXPECT_FALSE(is_standard_library("github.com/acme/lib.Parse", bi));
  EXPECT_FALSE(is_standard_library("golang.org/x/sync/errgroup.(*Group).Go", bi));
  EXPECT_FALSE(is_standard_library("gopkg.in/yaml%2ev3.Unmarshal", bi));
  EXPECT_TRUE(is_standard_library("shopping.F", bi));  // not the module "shop"
}

int marker_line(const std::string& marker) {
  std::ifstream in(std::string(GOROSCOPE_SOURCE_DIR) + "/tests/fixtures/allochot/main.go");
  std::string line;
  for (int n = 1; std::getline(in, line); n++)
    if (line.find("// " + marker) != std::string::npos) return n;
  return 0;
}

// A return address inside `function` whose call is on source line `line`.
uint64_t return_address(const GoBinary& bin, const std::string& function, int line) {
  auto f = bin.pclntab().func_by_name(function);
  if (!f) return 0;
  for (uint64_t pc = f->entry; pc < f->end; pc++) {
    auto frames = bin.pclntab().frames(pc);
    if (!frames.empty() && frames.front().line == line) return pc + 1;
  }
  return 0;
}

class TrackerOnAllochot : public ::testing::TestWithParam<testing::FixtureBinary> {};

TEST_P(TrackerOnAllochot, AttributesToTheFirstFrameOutsideTheStandardLibrary) {
  auto bin = GoBinary::open(GetParam().path);
  ASSERT_TRUE(bin);
  const GoBinary& b = **bin;
  const int hot = marker_line("HOT_SITE"), large = marker_line("LARGE_SITE");
  const uint64_t bias = 0x10000;  // pretend PIE
  uint64_t hot_ra = return_address(b, "main.hot", hot), large_ra = return_address(b, "main.large", large);
  ASSERT_NE(hot_ra, 0u);
  ASSERT_NE(large_ra, 0u);
  auto runtime_pc = [&](const char* fn) {
    auto f = b.pclntab().func_by_name(fn);
    return f ? f->entry + 8 + bias : 0;
  };
  AllocationTracker t(*bin, bias);
  alloc_event e{};
  e.kind = GO_ALLOC_REFILL;
  e.arg = 44 << 1 | 1;  // 4 KiB noscan
  e.stack[0] = runtime_pc("runtime.mallocgc");
  e.stack[1] = runtime_pc("runtime.makeslice");
  e.stack[2] = hot_ra + bias;
  e.stack[3] = runtime_pc("main.main");
  e.depth = 4;
  for (int i = 0; i < 10; i++) t.on_event(e);
  e.kind = GO_ALLOC_LARGE;
  e.arg = 65536;
  e.stack[2] = large_ra + bias;
  t.on_event(e);
  e.kind = GO_ALLOC_REFILL;
  e.arg = 44 << 1 | 1;
  e.depth = 2;  // nothing outside the runtime
  t.on_event(e);

  auto sites = t.sites(2.0, true);
  ASSERT_EQ(sites.size(), 3u);
  EXPECT_EQ(sites[0].function, "main.hot");
  EXPECT_EQ(sites[0].line, hot);
  EXPECT_DOUBLE_EQ(sites[0].bytes_total, 2.0 * 10 * 8192);
  EXPECT_DOUBLE_EQ(sites[0].objects_total, 2.0 * 10 * 2);
  EXPECT_EQ(sites[1].function, "main.large");
  EXPECT_DOUBLE_EQ(sites[1].bytes_total, 2.0 * 65536);
  EXPECT_DOUBLE_EQ(sites[1].large_bytes_total, 2.0 * 65536);
  EXPECT_EQ(sites[2].function, kUnattributedSite);
  EXPECT_EQ(t.unattributed(), 1u);
}

// Go 1.26's growsliceBuf falls back to growslice: the inner call is the same
// growth and must not count twice.
TEST_P(TrackerOnAllochot, GrowsliceVariantsCountOnce) {
  auto bin = GoBinary::open(GetParam().path);
  ASSERT_TRUE(bin);
  const GoBinary& b = **bin;
  uint64_t hot_ra = return_address(b, "main.hot", marker_line("HOT_SITE"));
  ASSERT_NE(hot_ra, 0u);
  AllocationTracker t(*bin, 0);
  alloc_event e{};
  e.kind = GO_ALLOC_GROWSLICE;
  e.stack[0] = hot_ra;
  e.depth = 1;
  t.on_event(e);
  if (auto buf = b.pclntab().func_by_name("runtime.growsliceBuf")) {
    e.stack[0] = buf->entry + 0x20;  // growslice called from growsliceBuf
    e.stack[1] = hot_ra;
    e.depth = 2;
    t.on_event(e);
  }
  auto sites = t.sites(1.0, true);
  ASSERT_EQ(sites.size(), 1u);
  EXPECT_EQ(sites[0].function, "main.hot");
  EXPECT_DOUBLE_EQ(sites[0].growslice_total, 1.0);
}

INSTANTIATE_TEST_SUITE_P(Matrix, TrackerOnAllochot, ::testing::ValuesIn(testing::fixtures("allochot")),
                         testing::build_name);

TEST(AllocationTracker, GcCycles) {
  auto fx = testing::fixtures("allochot", "default");
  ASSERT_FALSE(fx.empty());
  auto bin = GoBinary::open(fx.front().path);
  ASSERT_TRUE(bin);
  AllocationTracker t(*bin, 0);
  auto ev = [&](uint32_t kind, uint64_t ts, uint64_t arg = 0) {
    alloc_event e{};
    e.kind = kind;
    e.ts_ns = ts;
    e.arg = arg;
    t.on_event(e);
  };
  ev(GO_ALLOC_GC_END, 50);             // attached mid-cycle: counted, not timed
  ev(GO_ALLOC_GC_START, 100, 0);       // heap trigger
  ev(GO_ALLOC_GC_START, 110, 0);       // a racing trigger: same cycle
  ev(GO_ALLOC_GC_END, 100 + 3000000);  // 3 ms
  ev(GO_ALLOC_GC_START, 5000000, 2);   // runtime.GC()
  ev(GO_ALLOC_GC_END, 5000000 + 1000000);
  const GcStats& g = t.gc();
  EXPECT_EQ(g.cycles, 3u);
  EXPECT_EQ(g.timed_cycles, 2u);
  EXPECT_EQ(g.start_calls, 3u);
  EXPECT_NEAR(g.max_seconds, 0.003, 1e-9);
  EXPECT_NEAR(g.total_seconds, 0.004, 1e-9);
  EXPECT_EQ(g.triggers.at("heap"), 1u);
  EXPECT_EQ(g.triggers.at("cycle"), 1u);
}

TEST(AllocationReport, JsonSectionAndSiteCap) {
  AllocationSnapshot s;
  for (int i = 0; i < 10; i++) {
    AllocationSite a;
    a.function = "main.f" + std::to_string(i);
    a.file = "/src/main.go";
    a.line = 10 + i;
    a.bytes_total = 1000.0 * (10 - i);
    a.objects_total = 10 - i;
    a.growslice_total = i == 9 ? 500 : 0;  // least bytes, most growth
    a.samples = 1;
    s.sites.push_back(a);
  }
  s.gc.cycles = 4;
  s.gc.triggers["cycle"] = 2;
  auto j = allocations_json(s, 4);
  EXPECT_TRUE(j["estimated"].get<bool>());
  ASSERT_EQ(j["sites"].size(), 5u);  // 4 kept + other
  EXPECT_EQ(j["sites"][0]["function"], "main.f0");
  EXPECT_EQ(j["sites"][0]["bytes_total"], 10000u);
  EXPECT_TRUE(j["sites"][0]["estimated"].get<bool>());
  bool growth_kept = false;
  for (const auto& site : j["sites"]) growth_kept |= site["function"] == "main.f9";
  EXPECT_TRUE(growth_kept);
  EXPECT_EQ(j["sites"].back()["function"], "other");
  EXPECT_EQ(j["gc"]["cycles"], 4u);
  EXPECT_EQ(j["gc"]["triggers"]["cycle"], 2u);
  for (const char* key : {"function", "file", "line", "bytes_total", "objects_total", "growslice_total"})
    EXPECT_TRUE(j["sites"][0].contains(key)) << key;
}

}  // namespace
}  // namespace goroscope

// RET sites and the after-stack-check site, checked against the Go
// toolchain's own disassembler (`go tool objdump`) for every probe point of
// every fixture build, amd64 and arm64.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <sstream>

#include "symbols/go_binary.h"
#include "symbols/machine_code.h"
#include "symbols/probe_points.h"
#include "tests/support/fixture_matrix.h"

namespace goroscope {
namespace {

using testing::symbol_matrix;
using testing::run_command;

struct ObjdumpFunction {
  std::vector<uint64_t> addresses;  // every instruction
  std::vector<std::string> ops;
};

std::string regex_quote(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::string_view(".()*[]+?^$|{}\\").find(c) != std::string_view::npos) out += '\\';
    out += c;
  }
  return out;
}

std::map<std::string, ObjdumpFunction> objdump(const testing::FixtureBinary& fx, const std::vector<std::string>& names) {
  std::string re = "^(";
  for (size_t i = 0; i < names.size(); i++) re += (i ? "|" : "") + regex_quote(names[i]);
  re += ")$";
  std::string out = run_command({"env", "GOTOOLCHAIN=local", fx.gobin, "tool", "objdump", "-s", re, fx.path});
  std::map<std::string, ObjdumpFunction> funcs;
  ObjdumpFunction* cur = nullptr;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("TEXT ", 0) == 0) {
      std::string name = line.substr(5, line.find("(SB)") - 5);
      cur = &funcs[name];
      continue;
    }
    if (!cur) continue;
    // "  file.go:12\t\t0x4a1b2c\t\t4889e5\t\tMOVQ SP, BP\t..."
    std::vector<std::string> fields;
    std::istringstream f(line);
    std::string field;
    while (std::getline(f, field, '\t'))
      if (!field.empty()) fields.push_back(field);
    if (fields.size() < 4 || fields[1].rfind("0x", 0) != 0) continue;
    cur->addresses.push_back(std::stoull(fields[1], nullptr, 16));
    cur->ops.push_back(fields[3]);
  }
  return funcs;
}

TEST(MachineCode, RetSitesAndStackCheckMatchGoObjdump) {
  size_t checked = 0, with_rets = 0;
  for (const auto& fx : symbol_matrix()) {
    if (fx.fixture != "symbolzoo") continue;  // same runtime code in both fixtures
    SCOPED_TRACE(fx.label());
    auto bin = GoBinary::open(fx.path);
    ASSERT_TRUE(bin) << bin.error().message;
    ProbePlan plan = resolve_probe_points(**bin);
    std::vector<std::string> names;
    for (const auto& p : plan.points) names.push_back(p.function);
    names.push_back("main.grow");
    // go tool objdump needs .symtab; a stripped build has the same code as
    // the default build of its release, so it is checked against that one's
    // disassembly, relative to each function's entry.
    bool stripped = fx.variant == "stripped";
    const auto& oracle = stripped ? testing::default_build_of(fx) : fx;
    auto truth = objdump(oracle, names);
    auto oracle_bin = GoBinary::open(oracle.path);
    ASSERT_TRUE(oracle_bin);

    for (const auto& name : names) {
      SCOPED_TRACE(name);
      auto func = (*bin)->pclntab().func_by_name(name);
      ASSERT_TRUE(func);
      auto code = analyze_function((*bin)->elf(), *func);
      ASSERT_TRUE(code) << code.error().message;
      ASSERT_TRUE(truth.count(name)) << "go tool objdump did not list it";
      const ObjdumpFunction& t = truth[name];
      ASSERT_FALSE(t.addresses.empty());
      uint64_t oracle_entry = (*oracle_bin)->pclntab().func_by_name(name)->entry;
      EXPECT_EQ(t.addresses.front(), oracle_entry);
      auto rebase = [&](uint64_t a) { return a - oracle_entry + func->entry; };

      std::vector<uint64_t> rets;
      std::optional<uint64_t> after_check;
      for (size_t i = 0; i < t.ops.size(); i++) {
        if (t.ops[i] == "RET" || t.ops[i].rfind("RET ", 0) == 0) rets.push_back(rebase(t.addresses[i]));
        // The prologue's bound check branches with JBE (amd64) / BLS (arm64).
        bool branch = t.ops[i].rfind("JBE ", 0) == 0 || t.ops[i].rfind("BLS ", 0) == 0;
        if (!after_check && i < 6 && branch && i + 1 < t.addresses.size()) after_check = rebase(t.addresses[i + 1]);
      }
      EXPECT_EQ(code->ret_addresses, rets);
      EXPECT_EQ(code->after_stack_check, after_check);
      checked++;
      with_rets += !rets.empty();
    }
    // newproc1 has exactly one RET in every Go version (go-runtime.md §10).
    const ProbePoint* np1 = plan.find("runtime.newproc1");
    ASSERT_TRUE(np1);
    EXPECT_EQ(np1->ret_addresses.size(), 1u);
    EXPECT_EQ(np1->ret_file_offsets.size(), 1u);
  }
  EXPECT_GT(checked, 300u);
  EXPECT_GT(with_rets, 200u);
}

TEST(MachineCode, FileOffsetsFollowProgramHeaders) {
  // A uprobe offset must land on the function's bytes in the file: compare
  // the bytes at the offset we compute with the bytes at the vaddr.
  for (const auto& fx : symbol_matrix()) {
    SCOPED_TRACE(fx.label());
    auto bin = GoBinary::open(fx.path);
    ASSERT_TRUE(bin) << bin.error().message;
    for (const auto& p : resolve_probe_points(**bin).points) {
      auto by_vaddr = (*bin)->elf().read_vaddr(p.address, 16, p.function);
      ASSERT_TRUE(by_vaddr);
      auto file = (*bin)->elf().bytes();
      ASSERT_LE(p.file_offset + 16, file.size());
      EXPECT_EQ(0, memcmp(file.data() + p.file_offset, by_vaddr->bytes().data(), 16)) << p.function;
      // Go's internal linker maps the file at 0x400000 for amd64 exec and PIE
      // alike (go-runtime.md §8.7); external linking and arm64 differ.
      if (fx.variant != "extld" && fx.goarch == "amd64") EXPECT_EQ(p.file_offset, p.address - 0x400000) << p.function;
    }
  }
}

}  // namespace
}  // namespace goroscope

namespace goroscope {
namespace {

// runtime.newproc1 takes goids from runtime.sched.goidgen (offset 0 of
// schedt) with an atomic 64-bit add of 16: in every amd64 build that add is
// the only one of 16 there, and its target is runtime.sched — the way a
// stripped binary's goroutine counter is found (daemon/goid_counter).
TEST(MachineCode, AtomicAddTargetsOfNewproc1IncludeTheGoidCounter) {
  int checked = 0;
  for (const auto& fx : testing::symbol_matrix()) {
    if (fx.goarch != "amd64") continue;
    SCOPED_TRACE(fx.path);
    auto bin = GoBinary::open(fx.path);
    ASSERT_TRUE(bin) << bin.error().message;
    auto newproc1 = (*bin)->pclntab().func_by_name("runtime.newproc1");
    ASSERT_TRUE(newproc1);
    std::vector<uint64_t> targets = atomic_add_targets((*bin)->elf(), *newproc1, 64, 16);
    // Exactly one: the other atomic adds there (gcController's heap
    // accounting) add variable amounts.
    ASSERT_EQ(targets.size(), 1u) << fx.variant;
    // Stripped builds lay out .bss differently from their default build, so
    // there is no address to compare with; their counter is checked in a
    // live process (tests/integration/governor_test.cpp).
    if (fx.variant == "stripped") continue;
    auto own = (*bin)->elf().symbol("runtime.sched");
    ASSERT_TRUE(own);
    EXPECT_EQ(targets.front(), own->value) << fx.variant;
    checked++;
  }
  EXPECT_GT(checked, 20);
}

}  // namespace
}  // namespace goroscope

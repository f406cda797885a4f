// Machine-code facts about one Go function that probes depend on:
//  - every RET instruction, because goroscope never uses uretprobes on Go
//    code (stacks move; a patched return address crashes the target) and
//    instead puts an entry-style uprobe on each RET;
//  - the first instruction after the stack-growth check, because an entry
//    probe fires twice when morestack re-enters the function; a probe placed
//    after the check fires once per call.
// amd64 is disassembled with Zydis; arm64 has fixed 4-byte instructions and
// is matched by pattern.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "symbols/elf_image.h"
#include "symbols/pclntab.h"
#include "symbols/result.h"

namespace goroscope {

struct FunctionCode {
  uint64_t entry = 0;
  uint64_t end = 0;
  std::vector<uint64_t> ret_addresses;      // link-time vaddrs
  std::optional<uint64_t> after_stack_check;  // vaddr; none for NOSPLIT functions
};

// Link-time addresses of every RIP-relative memory operand in the function
// (amd64): the globals its code references. The censuses use it to find
// runtime.allgs / runtime.allp in binaries without .symtab. Empty on arm64
// or when the code cannot be read.
std::vector<uint64_t> rip_relative_operands(const ElfImage& elf, const FuncInfo& func);

// The global addresses a function atomically adds to (LOCK XADD of
// `operand_bits`), whether addressed RIP-relative or through a register
// loaded by a RIP-relative LEA just before (Go's usual shape); with
// `addend`, only adds of that constant (loaded by a MOV reg, imm before):
// how stripped binaries locate counters such as runtime.sched.goidgen,
// which newproc1 advances by 16. amd64 only.
std::vector<uint64_t> atomic_add_targets(const ElfImage& elf, const FuncInfo& func, unsigned operand_bits = 64,
                                         std::optional<uint64_t> addend = std::nullopt);

// Fails with Truncated if the code is not in the file, Corrupt if the bytes
// do not decode as instructions up to the function's end (then no RET list
// can be trusted and no return probe may be placed).
Result<FunctionCode> analyze_function(const ElfImage& elf, const FuncInfo& func);

}  // namespace goroscope

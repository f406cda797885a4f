#include "symbols/machine_code.h"

#include <map>
#include <Zydis/Zydis.h>

#include <string>

namespace goroscope {

namespace {

std::string hex(uint64_t v) {
  char buf[32];
  snprintf(buf, sizeof buf, "%#llx", static_cast<unsigned long long>(v));
  return buf;
}

// The amd64 prologue of a Go function that can grow its stack:
//   CMPQ SP, 16(R14)            (or LEAQ -N(SP), R12; CMPQ R12, 16(R14);
//                                 large frames: MOVQ SP, R12; SUBQ $N, R12; JCS)
//   JBE  <morestack block>
// 16(R14) is g.stackguard0; runtime functions that may run on the system
// stack compare against g.stackguard1 at 24(R14) instead. The conditional
// jump's fall-through is where each call passes exactly once. Small leaf
// functions have no such check (no frame, so no morestack re-entry either).
bool is_stack_bound_compare(const ZydisDecodedInstruction& insn, const ZydisDecodedOperand* ops) {
  if (insn.mnemonic != ZYDIS_MNEMONIC_CMP || insn.operand_count_visible != 2) return false;
  for (int i = 0; i < 2; i++) {
    const auto& op = ops[i];
    if (op.type == ZYDIS_OPERAND_TYPE_MEMORY && op.mem.base == ZYDIS_REGISTER_R14 &&
        (op.mem.disp.value == 16 || op.mem.disp.value == 24))
      return true;
  }
  return false;
}

Result<FunctionCode> analyze_amd64(const ByteReader& code, const FuncInfo& func) {
  ZydisDecoder decoder;
  ZydisDecoderInit(&decoder, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
  FunctionCode out{func.entry, func.end, {}, std::nullopt};
  ZydisDecodedInstruction insn;
  ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
  bool saw_bound_compare = false;
  uint64_t off = 0;
  int index = 0;
  while (off < code.size()) {
    const uint8_t* p = code.bytes().data() + off;
    // The gap up to the next function is INT3 (0xcc) padding, which
    // decodes as one-byte instructions; nothing stops the walk early.
    if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&decoder, p, code.size() - off, &insn, ops))) {
      return Error{ErrorKind::Corrupt, std::string(func.name) + ": undecodable instruction at " + hex(func.entry + off)};
    }
    if (insn.mnemonic == ZYDIS_MNEMONIC_RET) out.ret_addresses.push_back(func.entry + off);
    if (index < 6 && is_stack_bound_compare(insn, ops)) saw_bound_compare = true;
    if (saw_bound_compare && !out.after_stack_check && insn.mnemonic == ZYDIS_MNEMONIC_JBE)
      out.after_stack_check = func.entry + off + insn.length;
    off += insn.length;
    index++;
  }
  return out;
}

Result<FunctionCode> analyze_arm64(const ByteReader& code, const FuncInfo& func) {
  FunctionCode out{func.entry, func.end, {}, std::nullopt};
  // RET {Xn}: 1101011 0010 11111 000000 nnnnn 00000
  constexpr uint32_t kRetMask = 0xfffffc1f, kRetBits = 0xd65f0000;
  // The arm64 prologue compares SP (or SP-N) with 16(g) and branches with
  // BLS to the morestack block: B.cond with cond = LS (0b1001).
  constexpr uint32_t kBcondMask = 0xff00001f, kBls = 0x54000009;
  for (uint64_t off = 0; off + 4 <= code.size(); off += 4) {
    uint32_t w = code.u32(off);
    if ((w & kRetMask) == kRetBits) out.ret_addresses.push_back(func.entry + off);
    if (!out.after_stack_check && off < 6 * 4 && (w & kBcondMask) == kBls) out.after_stack_check = func.entry + off + 4;
  }
  return out;
}

}  // namespace

namespace {

// Decodes a function's amd64 instructions in order, handing each to `visit`
// with its address; stops at the first that does not decode.
template <typename Visit>
void each_amd64_instruction(const ElfImage& elf, const FuncInfo& func, Visit visit) {
  if (elf.arch() != Arch::Amd64 || func.end <= func.entry) return;
  auto code = elf.read_vaddr(func.entry, func.end - func.entry, std::string(func.name));
  if (!code) return;
  ZydisDecoder decoder;
  ZydisDecoderInit(&decoder, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
  ZydisDecodedInstruction insn;
  ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
  for (uint64_t off = 0; off < code->size(); off += insn.length) {
    if (!ZYAN_SUCCESS(ZydisDecoderDecodeFull(&decoder, code->bytes().data() + off, code->size() - off, &insn, ops)))
      break;
    visit(insn, ops, func.entry + off);
  }
}

}  // namespace

std::vector<uint64_t> rip_relative_operands(const ElfImage& elf, const FuncInfo& func) {
  std::vector<uint64_t> out;
  each_amd64_instruction(elf, func, [&](const ZydisDecodedInstruction& insn, const ZydisDecodedOperand* ops, uint64_t pc) {
    for (unsigned i = 0; i < insn.operand_count_visible; i++) {
      ZyanU64 address = 0;
      if (ops[i].type == ZYDIS_OPERAND_TYPE_MEMORY && ops[i].mem.base == ZYDIS_REGISTER_RIP &&
          ZYAN_SUCCESS(ZydisCalcAbsoluteAddress(&insn, &ops[i], pc, &address)))
        out.push_back(address);
    }
  });
  return out;
}

std::vector<uint64_t> atomic_add_targets(const ElfImage& elf, const FuncInfo& func, unsigned operand_bits,
                                         std::optional<uint64_t> addend) {
  std::vector<uint64_t> out;
  // The last LEA of a RIP-relative address into each register, forgotten
  // when the register is written otherwise: Go's compiler emits
  // LEAQ sym(SB), R; LOCK XADDQ X, 0(R) for an atomic Add on a global.
  std::map<ZydisRegister, uint64_t> lea;
  std::map<ZydisRegister, uint64_t> immediate;  // likewise for MOV reg, imm (the addend)
  each_amd64_instruction(elf, func, [&](const ZydisDecodedInstruction& insn, const ZydisDecodedOperand* ops, uint64_t pc) {
    const bool locked_xadd = insn.mnemonic == ZYDIS_MNEMONIC_XADD && (insn.attributes & ZYDIS_ATTRIB_HAS_LOCK) &&
                             insn.operand_width == operand_bits;
    bool addend_ok = !addend;
    if (locked_xadd && addend && ops[1].type == ZYDIS_OPERAND_TYPE_REGISTER) {
      auto it = immediate.find(ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, ops[1].reg.value));
      addend_ok = it != immediate.end() && it->second == *addend;
    }
    if (locked_xadd && addend_ok && ops[0].type == ZYDIS_OPERAND_TYPE_MEMORY) {
      ZyanU64 address = 0;
      if (ops[0].mem.base == ZYDIS_REGISTER_RIP) {
        if (ZYAN_SUCCESS(ZydisCalcAbsoluteAddress(&insn, &ops[0], pc, &address))) out.push_back(address);
      } else if (ops[0].mem.index == ZYDIS_REGISTER_NONE) {
        auto it = lea.find(ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, ops[0].mem.base));
        if (it != lea.end()) out.push_back(it->second + uint64_t(ops[0].mem.disp.value));
      }
    }
    for (unsigned i = 0; i < insn.operand_count_visible; i++) {
      if (ops[i].type != ZYDIS_OPERAND_TYPE_REGISTER || !(ops[i].actions & ZYDIS_OPERAND_ACTION_MASK_WRITE)) continue;
      ZydisRegister reg = ZydisRegisterGetLargestEnclosing(ZYDIS_MACHINE_MODE_LONG_64, ops[i].reg.value);
      ZyanU64 address = 0;
      if (insn.mnemonic == ZYDIS_MNEMONIC_LEA && i == 0 && ops[1].type == ZYDIS_OPERAND_TYPE_MEMORY &&
          ops[1].mem.base == ZYDIS_REGISTER_RIP &&
          ZYAN_SUCCESS(ZydisCalcAbsoluteAddress(&insn, &ops[1], pc, &address))) {
        lea[reg] = address;
      } else {
        lea.erase(reg);
      }
      if (insn.mnemonic == ZYDIS_MNEMONIC_MOV && i == 0 && ops[1].type == ZYDIS_OPERAND_TYPE_IMMEDIATE) {
        immediate[reg] = ops[1].imm.value.u;
      } else if (!(locked_xadd && i == 1)) {  // XADD writes its source, but after the add
        immediate.erase(reg);
      }
    }
  });
  return out;
}

Result<FunctionCode> analyze_function(const ElfImage& elf, const FuncInfo& func) {
  if (func.end <= func.entry)
    return Error{ErrorKind::Corrupt, std::string(func.name) + ": empty function bounds"};
  auto code = elf.read_vaddr(func.entry, func.end - func.entry, std::string(func.name));
  if (!code) return Error{ErrorKind::Truncated, std::string(func.name) + ": code at " + hex(func.entry) + " is not in the file"};
  return elf.arch() == Arch::Amd64 ? analyze_amd64(*code, func) : analyze_arm64(*code, func);
}

}  // namespace goroscope

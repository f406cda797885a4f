// BpfSelftest: loads bpf/selftest.bpf.c and attaches it as a uprobe at one
// file offset of one binary — the smallest end-to-end use of the BPF chain
// (clang -target bpf, bpftool skeleton, libbpf load/attach, ring buffer) on a
// Go target, with the goid offset supplied from symbols/.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "selftest.h"
#include "symbols/result.h"

struct selftest_bpf;
struct bpf_link;
struct ring_buffer;

namespace goroscope {

class BpfSelftest {
 public:
  // pid -1: every process running the binary; the probe filters on pid when
  // one is given.
  static Result<std::unique_ptr<BpfSelftest>> attach(const std::string& binary, uint64_t file_offset, pid_t pid,
                                                     uint64_t goid_offset);
  ~BpfSelftest();
  BpfSelftest(const BpfSelftest&) = delete;
  BpfSelftest& operator=(const BpfSelftest&) = delete;

  // Drains the ring buffer (waiting up to timeout_ms for the first event).
  std::vector<selftest_event> poll(int timeout_ms);
  uint64_t hits() const;

 private:
  BpfSelftest() = default;
  static int on_event(void* ctx, void* data, size_t size);

  selftest_bpf* skel_ = nullptr;
  bpf_link* link_ = nullptr;
  ring_buffer* ring_ = nullptr;
  std::vector<selftest_event> pending_;
};

}  // namespace goroscope

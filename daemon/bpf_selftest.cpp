#include "daemon/bpf_selftest.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>

#include "daemon/uprobe_plumbing.h"
#include "selftest.skel.h"

namespace goroscope {

Result<std::unique_ptr<BpfSelftest>> BpfSelftest::attach(const std::string& binary, uint64_t file_offset, pid_t pid,
                                                         uint64_t goid_offset) {
  std::unique_ptr<BpfSelftest> t(new BpfSelftest());
  t->skel_ = selftest_bpf__open();
  if (!t->skel_) return Error{ErrorKind::Io, libbpf_error("opening the selftest BPF object", errno)};
  t->skel_->rodata->target_tgid = pid > 0 ? static_cast<__u32>(pid) : 0;
  t->skel_->rodata->g_goid_offset = goid_offset;
  if (int err = load_one_at_a_time(selftest_bpf__load, t->skel_))
    return Error{ErrorKind::Io, libbpf_error("loading the selftest BPF program (needs root or CAP_BPF)", err)};

  auto link = attach_uprobe({t->skel_->progs.selftest_entry, "selftest", file_offset}, pid > 0 ? pid : -1, binary);
  if (!link) return link.error();
  t->link_ = link.value();

  t->ring_ = ring_buffer__new(bpf_map__fd(t->skel_->maps.events), &BpfSelftest::on_event, t.get(), nullptr);
  if (!t->ring_) return Error{ErrorKind::Io, libbpf_error("creating the ring buffer", errno)};
  return t;
}

BpfSelftest::~BpfSelftest() {
  if (ring_) ring_buffer__free(ring_);
  if (link_) bpf_link__destroy(link_);
  if (skel_) selftest_bpf__destroy(skel_);
}

int BpfSelftest::on_event(void* ctx, void* data, size_t size) {
  auto* self = static_cast<BpfSelftest*>(ctx);
  if (size >= sizeof(selftest_event)) {
    selftest_event e;
    std::memcpy(&e, data, sizeof e);
    self->pending_.push_back(e);
  }
  return 0;
}

std::vector<selftest_event> BpfSelftest::poll(int timeout_ms) {
  ring_buffer__poll(ring_, timeout_ms);
  ring_buffer__consume(ring_);
  std::vector<selftest_event> out;
  out.swap(pending_);
  return out;
}

uint64_t BpfSelftest::hits() const {
  __u32 zero = 0;
  __u64 count = 0;
  bpf_map_lookup_elem(bpf_map__fd(skel_->maps.hits), &zero, &count);
  return count;
}

}  // namespace goroscope

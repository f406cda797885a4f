// EventRing<Event>: the BPF ring buffer a probe family's events arrive on,
// owned (freed on every path) and read as typed events. One per loaded
// skeleton; created after the skeleton is loaded.
#pragma once

#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>

#include "daemon/uprobe_plumbing.h"
#include "symbols/result.h"

namespace goroscope {

// The kernel takes a ring buffer of a power-of-two number of pages only.
inline uint32_t ring_buffer_size(uint32_t wanted_bytes) {
  uint32_t ring = static_cast<uint32_t>(sysconf(_SC_PAGESIZE));
  while (ring < wanted_bytes && ring < (1u << 31)) ring <<= 1;
  return ring;
}

template <typename Event>
class EventRing {
 public:
  using Handler = std::function<void(const Event&)>;

  EventRing() = default;
  ~EventRing() {
    if (ring_) ring_buffer__free(ring_);
  }
  EventRing(const EventRing&) = delete;
  EventRing& operator=(const EventRing&) = delete;

  // `what` names the ring in the error ("the timer event ring buffer").
  std::optional<Error> open(int map_fd, const std::string& what) {
    ring_ = ring_buffer__new(map_fd, &EventRing::on_sample, this, nullptr);
    if (!ring_) return Error{ErrorKind::Io, libbpf_error("creating " + what, errno)};
    return std::nullopt;
  }

  // Waits up to timeout_ms and hands each event to `handler`; returns how
  // many were handled, or a negative errno.
  int poll(int timeout_ms, const Handler& handler) {
    handler_ = &handler;
    int n = ring_buffer__poll(ring_, timeout_ms);
    handler_ = nullptr;
    return n;
  }

 private:
  static int on_sample(void* ctx, void* data, size_t size) {
    auto* self = static_cast<EventRing*>(ctx);
    if (size < sizeof(Event) || !self->handler_) return 0;
    Event e;
    std::memcpy(&e, data, sizeof e);  // the ring's memory is not aligned for Event
    (*self->handler_)(e);
    return 0;
  }

  ring_buffer* ring_ = nullptr;
  const Handler* handler_ = nullptr;
};

}  // namespace goroscope

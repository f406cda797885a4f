#include "daemon/switchable_links.h"

#include <bpf/libbpf.h>

#include <chrono>

namespace goroscope {

SwitchableLinks::~SwitchableLinks() { detach_now(); }

std::optional<Error> SwitchableLinks::attach() {
  if (attached()) return std::nullopt;
  wait_for_detach();
  for (const auto& p : placements_) {
    auto link = attach_uprobe(p, pid_, exe_);
    if (!link) {
      for (bpf_link* l : links_) bpf_link__destroy(l);
      links_.clear();
      return link.error();
    }
    links_.push_back(link.value());
  }
  return std::nullopt;
}

void SwitchableLinks::detach() {
  if (links_.empty()) return;
  wait_for_detach();
  detaching_ = true;
  detacher_ = std::thread([this, links = std::move(links_)] {
    auto t0 = std::chrono::steady_clock::now();
    // One thread per probe: each destroy removes its breakpoint first, then
    // waits for an RCU grace period; in sequence the last probe would keep
    // trapping through all the earlier waits (measured: most of a spawn
    // storm's exits were counted after its creation probe had gone).
    std::vector<std::thread> each;
    for (bpf_link* l : links) each.emplace_back([l] { bpf_link__destroy(l); });
    for (auto& t : each) t.join();
    detach_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    detaching_ = false;
  });
  links_.clear();
}

void SwitchableLinks::detach_now() {
  detach();
  wait_for_detach();
}

void SwitchableLinks::wait_for_detach() {
  if (detacher_.joinable()) detacher_.join();
}

}  // namespace goroscope

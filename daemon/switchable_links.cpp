#include "daemon/switchable_links.h"

#include <bpf/libbpf.h>
#include <unistd.h>

#include <chrono>
#include <algorithm>
#include <map>

#include "daemon/uprobe_multi.h"

namespace goroscope {

SwitchableLinks::~SwitchableLinks() { detach_now(); }

std::optional<Error> SwitchableLinks::attach() {
  if (attached()) return std::nullopt;
  wait_for_detach();
  if (multi_) {
    // One link per program, with all of its offsets, in placement order
    // (the probe families attach stops before creations).
    std::vector<std::pair<bpf_program*, std::vector<uint64_t>>> by_program;
    for (const auto& p : placements_) {
      auto it = std::find_if(by_program.begin(), by_program.end(), [&](const auto& e) { return e.first == p.program; });
      if (it == by_program.end()) it = by_program.insert(by_program.end(), {p.program, {}});
      it->second.push_back(p.file_offset);
    }
    for (const auto& [program, offsets] : by_program) {
      auto fd = uprobe_multi_attach(program, exe_, offsets, pid_);
      if (!fd) {
        for (int f : multi_fds_) close(f);
        multi_fds_.clear();
        return fd.error();
      }
      multi_fds_.push_back(*fd);
    }
    return std::nullopt;
  }
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
  if (!attached()) return;
  wait_for_detach();
  detaching_ = true;
  if (multi_) {
    detacher_ = std::thread([this, fds = std::move(multi_fds_)] {
      auto t0 = std::chrono::steady_clock::now();
      std::vector<std::thread> each;
      for (int fd : fds) each.emplace_back([fd] { close(fd); });
      for (auto& t : each) t.join();
      detach_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      detaching_ = false;
    });
    multi_fds_.clear();
    return;
  }
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

#include "daemon/process_memory.h"

#include <limits.h>
#include <sys/uio.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

namespace goroscope {

namespace {

// Linux rejects more than UIO_MAXIOV (1024) iovecs per call with EINVAL.
constexpr size_t kIovMax = IOV_MAX;

std::string hex(uint64_t v) {
  char buf[32];
  snprintf(buf, sizeof buf, "%#llx", static_cast<unsigned long long>(v));
  return buf;
}

Error read_error(int err, pid_t pid, uint64_t address, size_t size) {
  std::string p = std::to_string(pid);
  switch (err) {
    case ESRCH:
      return Error{ErrorKind::Io, "process " + p + " has exited"};
    case EPERM:
    case EACCES:
      return Error{ErrorKind::Io, "permission denied reading the memory of process " + p +
                                      " (needs root or CAP_SYS_PTRACE, and a ptrace scope that allows it)"};
    case EFAULT:
      return Error{ErrorKind::Io, "address " + hex(address) + " (" + std::to_string(size) +
                                      " bytes) is not mapped in process " + p};
    default:
      return Error{ErrorKind::Io, "reading " + hex(address) + " in process " + p + ": " + std::strerror(err)};
  }
}

}  // namespace

Result<size_t> ProcessMemory::read(uint64_t address, void* dest, size_t size) const {
  iovec local{dest, size};
  iovec remote{reinterpret_cast<void*>(address), size};
  ssize_t got = process_vm_readv(pid_, &local, 1, &remote, 1, 0);
  if (got < 0) return read_error(errno, pid_, address, size);
  // A short count means the range runs into an unmapped page.
  if (static_cast<size_t>(got) != size) return read_error(EFAULT, pid_, address, size);
  return size;
}

Result<size_t> ProcessMemory::read_batch(std::span<const RemoteRead> reads, std::vector<uint8_t>& filled) const {
  filled.assign(reads.size(), 0);
  std::vector<iovec> local(std::min(kIovMax, reads.size())), remote(local.size());
  size_t done = 0;
  size_t i = 0;
  while (i < reads.size()) {
    const size_t n = std::min(kIovMax, reads.size() - i);
    for (size_t k = 0; k < n; k++) {
      const RemoteRead& r = reads[i + k];
      local[k] = iovec{r.dest, r.size};
      remote[k] = iovec{reinterpret_cast<void*>(r.address), r.size};
    }
    ssize_t got = process_vm_readv(pid_, local.data(), n, remote.data(), n, 0);
    if (got < 0) {
      // The kernel stops at the first remote iovec it cannot read and
      // fails the call only if that was the first one: skip it, go on.
      if (errno == EFAULT) {
        i++;
        continue;
      }
      return read_error(errno, pid_, reads[i].address, reads[i].size);
    }
    size_t bytes = static_cast<size_t>(got);
    size_t k = 0;
    for (; k < n && bytes >= reads[i + k].size; k++) {
      bytes -= reads[i + k].size;
      filled[i + k] = 1;
      done++;
    }
    // reads[i + k], if any, was cut short by an unmapped page.
    i += k == n ? n : k + 1;
  }
  return done;
}

}  // namespace goroscope

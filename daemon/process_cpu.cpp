#include "daemon/process_cpu.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace goroscope {

uint64_t process_cpu_ns(pid_t pid) {
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  DIR* dir = opendir(tasks.c_str());
  if (!dir) return 0;
  uint64_t total = 0;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
    int fd = open((tasks + "/" + e->d_name + "/schedstat").c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    char buf[96];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) continue;
    buf[n] = 0;
    total += strtoull(buf, nullptr, 10);  // first field: time on CPU, ns
  }
  closedir(dir);
  return total;
}

}  // namespace goroscope

// A fixture program running as a child for the length of a test or
// benchmark: started with its stdout on a pipe, waited for until it prints a
// line (the fixtures print "ready" once their goroutines are in place), and
// killed and reaped when it goes out of scope.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

namespace goroscope::testing {

class RunningFixture {
 public:
  RunningFixture(const std::string& path, const std::vector<std::string>& args) {
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      dup2(out[1], 1);
      std::vector<char*> argv{const_cast<char*>(path.c_str())};
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(path.c_str(), argv.data());
      _exit(127);
    }
    close(out[1]);
    stdout_ = out[0];
  }
  ~RunningFixture() {
    kill_and_reap();
    if (stdout_ >= 0) close(stdout_);
  }
  RunningFixture(const RunningFixture&) = delete;
  RunningFixture& operator=(const RunningFixture&) = delete;

  pid_t pid() const { return pid_; }

  // True once the child printed a line equal to `line`; false on timeout or
  // if it exited first.
  bool wait_for_line(const std::string& line, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      for (size_t nl; (nl = buffered_.find('\n')) != std::string::npos;) {
        std::string got = buffered_.substr(0, nl);
        buffered_.erase(0, nl + 1);
        if (got == line) return true;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return false;
      pollfd p{stdout_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      ssize_t n = read(stdout_, buf, sizeof buf);
      if (n <= 0) return false;
      buffered_.append(buf, n);
    }
  }

  // SIGKILL and waitpid: afterwards the PID names no process.
  void kill_and_reap() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  pid_t pid_ = -1;
  int stdout_ = -1;
  std::string buffered_;
};

}  // namespace goroscope::testing

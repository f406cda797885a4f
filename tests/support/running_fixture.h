// A fixture program running as a child for the length of a test or
// benchmark: started with its stdin and stdout on pipes, waited for until it
// prints a line (the fixtures print "ready" once their goroutines are in
// place), driven by lines on stdin (spawnexit), and killed and reaped when it
// goes out of scope.
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
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      dup2(in[0], 0);
      dup2(out[1], 1);
      std::vector<char*> argv{const_cast<char*>(path.c_str())};
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv(path.c_str(), argv.data());
      _exit(127);
    }
    close(in[0]);
    close(out[1]);
    stdin_ = in[1];
    stdout_ = out[0];
  }
  ~RunningFixture() {
    kill_and_reap();
    if (stdin_ >= 0) close(stdin_);
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

  // The first line the child prints that starts with `prefix` (the lines
  // before it are dropped); empty on timeout or if it exited first.
  std::string wait_for_prefix(const std::string& prefix, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      for (size_t nl; (nl = buffered_.find('\n')) != std::string::npos;) {
        std::string got = buffered_.substr(0, nl);
        buffered_.erase(0, nl + 1);
        if (got.rfind(prefix, 0) == 0) return got;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return "";
      pollfd p{stdout_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[4096];
      ssize_t n = read(stdout_, buf, sizeof buf);
      if (n <= 0) return "";
      buffered_.append(buf, n);
    }
  }

  // Writes one line to the child's stdin.
  bool send(const std::string& line) {
    std::string s = line + "\n";
    return write(stdin_, s.data(), s.size()) == static_cast<ssize_t>(s.size());
  }

  // Waits for the child to end by itself: its wait status, or -1 on timeout.
  int wait_exit(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return status;
      }
      usleep(10000);
    }
    return -1;
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
  int stdin_ = -1;
  int stdout_ = -1;
  std::string buffered_;
};

}  // namespace goroscope::testing

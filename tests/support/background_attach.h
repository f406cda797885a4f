// `goroscope attach --format json` running in the background until SIGINT,
// as a user runs it in a terminal while exercising the target; the test
// waits for its "attached" notice, drives the target, then stops it and
// reads the final report.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "tests/support/goroscope_cli.h"

namespace goroscope::testing {

class BackgroundAttach {
 public:
  explicit BackgroundAttach(pid_t target, const std::vector<std::string>& extra_args = {"--interval", "200ms"}) {
    char tmpl[] = "/tmp/goroscope_bg_attach.XXXXXX";
    int out = mkstemp(tmpl);
    out_path_ = tmpl;
    int err[2];
    if (out < 0 || pipe2(err, O_CLOEXEC) != 0) throw std::runtime_error("cannot set up background attach");
    std::vector<std::string> args = {goroscope_path(), "attach", "--pid", std::to_string(target), "--format", "json"};
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out, 1);
      dup2(err[1], 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      execv(goroscope_path().c_str(), argv.data());
      _exit(127);
    }
    close(out);
    close(err[1]);
    stderr_ = err[0];
  }
  ~BackgroundAttach() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(stderr_);
    unlink(out_path_.c_str());
  }
  BackgroundAttach(const BackgroundAttach&) = delete;
  BackgroundAttach& operator=(const BackgroundAttach&) = delete;

  // True once goroscope says it is attached (within 30 s: a loaded 2-core
  // machine running two test processes has taken over 10 s).
  bool wait_attached() {
    std::string text;
    char buf[512];
    for (int i = 0; i < 300; i++) {
      pollfd p{stderr_, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      ssize_t n = read(stderr_, buf, sizeof buf);
      if (n <= 0) return false;
      text.append(buf, n);
      if (text.find("goroscope: attached to PID") != std::string::npos) return true;
    }
    return false;
  }

  // SIGINT (harmless if goroscope already stopped by itself), then the
  // final report; throws unless goroscope exited 0.
  nlohmann::json stop() {
    kill(pid_, SIGINT);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) throw std::runtime_error("attach did not exit 0 on SIGINT");
    std::ifstream out(out_path_);
    return nlohmann::json::parse(out);
  }

 private:
  std::string out_path_;
  pid_t pid_ = -1;
  int stderr_ = -1;
};

}  // namespace goroscope::testing

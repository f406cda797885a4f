// `goroscope daemon` running as a child for the length of a test: started
// with its log (stderr and stdout) in a temporary file, killed with the test
// process if that dies (PR_SET_PDEATHSIG), and SIGKILLed and reaped when it
// goes out of scope unless the test already stopped it. Plus what the
// daemon tests do to it from outside: HTTP requests that report a status,
// a time and a transport error instead of throwing, and polling with a
// deadline.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "tests/support/prometheus_text.h"

namespace goroscope::testing {

struct HttpReply {
  long status = 0;  // 0: no HTTP answer (see error)
  std::string body;
  double seconds = 0;  // from the start of the request to the end of the body
  std::string error;   // the transport error, if any
  bool ok() const { return error.empty() && status == 200; }
};

// One GET with libcurl, bounded by `timeout` as a whole.
HttpReply http_fetch(const std::string& url, std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Calls `done` every `step` until it returns true (true) or `timeout` has
// passed (false). `done` is called at least once.
bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout,
                std::chrono::milliseconds step = std::chrono::milliseconds(100));

class DaemonProcess {
 public:
  // Runs `goroscope daemon ARGS...`; does not wait for anything.
  explicit DaemonProcess(const std::vector<std::string>& args);
  ~DaemonProcess();  // SIGKILL and reap if still running, remove the log
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  pid_t pid() const { return pid_; }
  // False once it exited (the exit is reaped and kept for exit_status()).
  bool running();
  // Waits for it to exit by itself: its wait status, or -1 on timeout.
  int wait_exit(std::chrono::milliseconds timeout);
  int exit_status() const { return status_; }  // the wait status; -1 while running
  void send_signal(int sig);
  // Everything it wrote so far.
  std::string log() const;
  // The log's non-empty lines.
  std::vector<std::string> log_lines() const;

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  std::string log_path_;
};

// The arguments for a daemon serving on 127.0.0.1:`port`, then `more`.
std::vector<std::string> daemon_args(int port, const std::vector<std::string>& more);

// GET http://127.0.0.1:`port`/metrics and parse it strictly; throws (with
// the reason) unless it answers 200 with a valid exposition.
PromExposition scrape(int port, std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace goroscope::testing

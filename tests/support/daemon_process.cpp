#include "tests/support/daemon_process.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/support/goroscope_cli.h"

namespace goroscope::testing {

namespace {

size_t append_body(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

}  // namespace

HttpReply http_fetch(const std::string& url, std::chrono::milliseconds timeout) {
  HttpReply r;
  CURL* c = curl_easy_init();
  if (!c) {
    r.error = "curl_easy_init failed";
    return r;
  }
  char error[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, long(timeout.count()));
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, append_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  const auto start = std::chrono::steady_clock::now();
  CURLcode rc = curl_easy_perform(c);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  curl_easy_cleanup(c);
  if (rc != CURLE_OK) r.error = error[0] ? error : curl_easy_strerror(rc);
  return r;
}

bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout, std::chrono::milliseconds step) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(step);
  }
}

DaemonProcess::DaemonProcess(const std::vector<std::string>& args) {
  char tmpl[] = "/tmp/goroscope_daemon_log.XXXXXX";
  int log = mkstemp(tmpl);
  if (log < 0) throw std::runtime_error("mkstemp failed");
  log_path_ = tmpl;
  std::vector<std::string> argv = {goroscope_path(), "daemon"};
  argv.insert(argv.end(), args.begin(), args.end());
  const pid_t parent = getpid();
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    // A test that dies must not leave a daemon with probes in its targets.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    int null = open("/dev/null", O_RDONLY);
    dup2(null, 0);
    dup2(log, 1);
    dup2(log, 2);
    std::vector<char*> v;
    for (auto& a : argv) v.push_back(a.data());
    v.push_back(nullptr);
    execv(v[0], v.data());
    _exit(127);
  }
  close(log);
}

DaemonProcess::~DaemonProcess() {
  if (running()) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  unlink(log_path_.c_str());
}

bool DaemonProcess::running() {
  if (status_ != -1) return false;
  int st = 0;
  if (waitpid(pid_, &st, WNOHANG) == pid_) {
    status_ = st;
    return false;
  }
  return true;
}

int DaemonProcess::wait_exit(std::chrono::milliseconds timeout) {
  eventually([&] { return !running(); }, timeout, std::chrono::milliseconds(10));
  return status_;
}

void DaemonProcess::send_signal(int sig) {
  if (running()) kill(pid_, sig);
}

std::string DaemonProcess::log() const {
  std::ifstream f(log_path_);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<std::string> DaemonProcess::log_lines() const {
  std::vector<std::string> lines;
  std::istringstream in(log());
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  return lines;
}

std::vector<std::string> daemon_args(int port, const std::vector<std::string>& more) {
  std::vector<std::string> args = {"--web.listen-address", "127.0.0.1:" + std::to_string(port)};
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

PromExposition scrape(int port, std::chrono::milliseconds timeout) {
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/metrics";
  HttpReply r = http_fetch(url, timeout);
  if (!r.error.empty()) throw std::runtime_error("GET " + url + ": " + r.error);
  if (r.status != 200) throw std::runtime_error("GET " + url + ": HTTP " + std::to_string(r.status));
  return parse_prometheus_text(r.body);
}

}  // namespace goroscope::testing

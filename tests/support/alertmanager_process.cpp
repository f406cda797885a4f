#include "tests/support/alertmanager_process.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

namespace goroscope::testing {

namespace {

size_t append_body(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// Only what an Alertmanager needs to start: one route, one receiver with no
// integrations, so nothing is ever notified.
constexpr const char* kConfig =
    "route:\n"
    "  receiver: nobody\n"
    "receivers:\n"
    "  - name: nobody\n";

}  // namespace

std::string alertmanager_binary() {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    for (const char* name : {"prometheus-alertmanager", "alertmanager"}) {
      std::string candidate = dir + "/" + name;
      if (access(candidate.c_str(), X_OK) == 0) return candidate;
    }
  }
  return "";
}

int free_loopback_port() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    throw std::runtime_error("cannot find a free loopback port");
  close(fd);
  return ntohs(addr.sin_port);
}

std::string http_get(const std::string& url) {
  CURL* c = curl_easy_init();
  if (!c) throw std::runtime_error("curl_easy_init failed");
  std::string body;
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, append_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(c);
  if (rc != CURLE_OK) throw std::runtime_error("GET " + url + ": " + curl_easy_strerror(rc));
  if (status < 200 || status >= 300) throw std::runtime_error("GET " + url + ": HTTP " + std::to_string(status));
  return body;
}

AlertmanagerProcess::AlertmanagerProcess(int port) : port_(port) {
  std::string binary = alertmanager_binary();
  if (binary.empty()) throw std::runtime_error("prometheus-alertmanager is not on PATH");
  char tmpl[] = "/tmp/goroscope_alertmanager.XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;
  std::ofstream(dir_ + "/alertmanager.yml") << kConfig;
  std::vector<std::string> args = {
      binary, "--config.file=" + dir_ + "/alertmanager.yml", "--storage.path=" + dir_ + "/data",
      "--web.listen-address=127.0.0.1:" + std::to_string(port), "--cluster.listen-address="};
  std::string log_path = dir_ + "/log";
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    // A test that dies must not leave an Alertmanager behind.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    int log = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int null = open("/dev/null", O_RDONLY);
    dup2(null, 0);
    dup2(log, 1);
    dup2(log, 2);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      http_get(url() + "/-/ready");
      return;
    } catch (const std::exception&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  std::string why = log();
  stop();
  throw std::runtime_error("alertmanager did not become ready on port " + std::to_string(port) + ":\n" + why);
}

AlertmanagerProcess::~AlertmanagerProcess() { stop(); }

void AlertmanagerProcess::stop() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    dir_.clear();
  }
}

nlohmann::json AlertmanagerProcess::active_alerts() const {
  return nlohmann::json::parse(http_get(url() + "/api/v2/alerts"));
}

std::string AlertmanagerProcess::log() const {
  std::ifstream f(dir_ + "/log");
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace goroscope::testing

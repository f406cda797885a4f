#include "tests/support/prometheus_process.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tests/support/alertmanager_process.h"

namespace goroscope::testing {

namespace {

std::string on_path(const char* name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    std::string candidate = dir + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string url_escape(const std::string& text) {
  char* e = curl_escape(text.c_str(), int(text.size()));
  std::string out = e ? e : "";
  curl_free(e);
  return out;
}

}  // namespace

std::string prometheus_binary() { return on_path("prometheus"); }
std::string promtool_binary() { return on_path("promtool"); }

std::string rules_with_for(const std::string& rules_yaml, const std::string& for_duration) {
  static const std::regex for_line(R"(^( *for:) .*$)");
  std::istringstream in(rules_yaml);
  std::string out;
  int replaced = 0;
  for (std::string line; std::getline(in, line);) {
    if (std::regex_match(line, for_line)) {
      line = std::regex_replace(line, for_line, "$1 " + for_duration);
      replaced++;
    }
    out += line + "\n";
  }
  if (replaced == 0) throw std::runtime_error("no `for:` line in the rules");
  return out;
}

std::string source_file(const std::string& relative_path) {
  std::string path = std::string(GOROSCOPE_SOURCE_DIR) + "/" + relative_path;
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot read " + path);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

PrometheusProcess::PrometheusProcess(int port, const PrometheusSetup& setup) : port_(port) {
  std::string binary = prometheus_binary();
  if (binary.empty()) throw std::runtime_error("prometheus is not on PATH");
  char tmpl[] = "/tmp/goroscope_prometheus.XXXXXX";
  if (!mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  dir_ = tmpl;

  // scrape_timeout may not exceed scrape_interval.
  std::ostringstream config;
  config << "global:\n"
         << "  scrape_interval: " << setup.interval << "\n"
         << "  scrape_timeout: " << setup.interval << "\n"
         << "  evaluation_interval: " << setup.interval << "\n";
  if (!setup.rules.empty()) {
    std::ofstream(dir_ + "/rules.yml") << setup.rules;
    config << "rule_files:\n  - " << dir_ << "/rules.yml\n";
  }
  if (!setup.alertmanager.empty())
    config << "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['" << setup.alertmanager
           << "']\n";
  config << "scrape_configs:\n  - job_name: " << setup.job << "\n    static_configs:\n      - targets:\n";
  for (const auto& t : setup.targets) config << "          - '" << t << "'\n";
  std::ofstream(dir_ + "/prometheus.yml") << config.str();

  std::vector<std::string> args = {binary, "--config.file=" + dir_ + "/prometheus.yml",
                                   "--storage.tsdb.path=" + dir_ + "/data",
                                   "--web.listen-address=127.0.0.1:" + std::to_string(port)};
  std::string log_path = dir_ + "/log";
  const pid_t parent = getpid();
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    // A test that dies must not leave a Prometheus behind.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
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
  // Replaying an empty WAL and loading the rules takes a second or two; far
  // longer on a loaded machine.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      http_get(url() + "/-/ready");
      return;
    } catch (const std::exception&) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
      pid_ = -1;
      break;
    }
  }
  std::string why = log();
  stop();
  throw std::runtime_error("prometheus did not become ready on port " + std::to_string(port) + ":\n" + why);
}

PrometheusProcess::~PrometheusProcess() { stop(); }

void PrometheusProcess::stop() {
  if (pid_ > 0) {
    kill(pid_, SIGTERM);
    // It flushes its head block on SIGTERM; a loaded machine may make that
    // slow, but never a test's cleanup.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (waitpid(pid_, nullptr, WNOHANG) != pid_) {
      if (std::chrono::steady_clock::now() >= deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    pid_ = -1;
  }
  if (!dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
    dir_.clear();
  }
}

nlohmann::json PrometheusProcess::api(const std::string& path) const {
  auto reply = nlohmann::json::parse(http_get(url() + "/api/v1/" + path));
  if (reply.value("status", "") != "success") throw std::runtime_error("GET /api/v1/" + path + ": " + reply.dump());
  return reply["data"];
}

nlohmann::json PrometheusProcess::query(const std::string& expr) const {
  return api("query?query=" + url_escape(expr))["result"];
}

std::string PrometheusProcess::log() const { return slurp(dir_ + "/log"); }

}  // namespace goroscope::testing

#include "tests/support/fixture_matrix.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace goroscope::testing {

namespace {

std::string fixtures_dir() {
  if (const char* e = std::getenv("GOROSCOPE_FIXTURES")) return e;
  return GOROSCOPE_FIXTURES_DIR;
}

std::vector<FixtureBinary> load() {
  std::string manifest = fixtures_dir() + "/manifest.tsv";
  std::ifstream in(manifest);
  if (!in) {
    throw std::runtime_error("no fixture matrix at " + manifest +
                             "; build it with `cmake --build build --target fixtures`");
  }
  std::vector<FixtureBinary> out;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream f(line);
    FixtureBinary b;
    std::getline(f, b.fixture, '\t');
    std::getline(f, b.go, '\t');
    std::getline(f, b.variant, '\t');
    std::getline(f, b.goarch, '\t');
    std::getline(f, b.path, '\t');
    std::getline(f, b.gobin, '\t');
    std::getline(f, b.role, '\t');
    if (!b.gobin.empty()) out.push_back(std::move(b));
  }
  if (out.empty()) throw std::runtime_error("fixture manifest " + manifest + " is empty");
  return out;
}

}  // namespace

void PrintTo(const FixtureBinary& b, std::ostream* os) { *os << b.label(); }

const std::vector<FixtureBinary>& fixture_matrix() {
  static const std::vector<FixtureBinary> all = load();
  return all;
}

const std::vector<FixtureBinary>& symbol_matrix() {
  static const std::vector<FixtureBinary> symbols = [] {
    std::vector<FixtureBinary> out;
    for (const auto& b : fixture_matrix())
      if (b.role == "symbols") out.push_back(b);
    return out;
  }();
  return symbols;
}

std::vector<FixtureBinary> fixtures(const std::string& fixture, const std::string& variant) {
  std::vector<FixtureBinary> out;
  for (const auto& b : fixture_matrix())
    if (b.fixture == fixture && (variant.empty() || b.variant == variant)) out.push_back(b);
  if (out.empty()) throw std::runtime_error("no fixture builds of " + fixture + " " + variant);
  return out;
}

std::vector<FixtureBinary> runnable_builds(const std::string& fixture, const std::vector<std::string>& minors) {
  std::vector<FixtureBinary> out;
  for (const auto& b : fixtures(fixture)) {
    if (!b.runnable()) continue;
    bool wanted = minors.empty();
    for (const auto& m : minors) wanted |= b.go.rfind(m + ".", 0) == 0;
    if (wanted) out.push_back(b);
  }
  return out;
}

std::string build_name(const ::testing::TestParamInfo<FixtureBinary>& info) {
  std::string n = info.param.go + "_" + info.param.variant;
  for (char& c : n)
    if (!isalnum(static_cast<unsigned char>(c))) c = '_';
  return n;
}

const FixtureBinary& default_build_of(const FixtureBinary& b) {
  for (const auto& o : fixture_matrix())
    if (o.fixture == b.fixture && o.go == b.go && o.variant == "default") return o;
  throw std::runtime_error("no default build for " + b.label());
}

std::string run_command(const std::vector<std::string>& argv, const std::string& stdin_text) {
  int in[2], out[2];
  if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC)) throw std::runtime_error("pipe failed");
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  // Feed stdin from a thread so a large input cannot deadlock against output.
  std::thread writer([fd = in[1], &stdin_text] {
    size_t off = 0;
    while (off < stdin_text.size()) {
      ssize_t n = write(fd, stdin_text.data() + off, stdin_text.size() - off);
      if (n <= 0) break;
      off += n;
    }
    close(fd);
  });
  std::string result;
  char buf[65536];
  ssize_t n;
  while ((n = read(out[0], buf, sizeof buf)) > 0) result.append(buf, n);
  close(out[0]);
  writer.join();
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string cmd;
    for (const auto& a : argv) cmd += a + " ";
    throw std::runtime_error("command failed (status " + std::to_string(status) + "): " + cmd);
  }
  return result;
}

}  // namespace goroscope::testing

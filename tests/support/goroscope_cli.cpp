#include "tests/support/goroscope_cli.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace goroscope::testing {

namespace {
std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}
}  // namespace

const std::string& goroscope_path() {
  static const std::string path = std::string(GOROSCOPE_BINARY_DIR) + "/goroscope";
  return path;
}

CliOutcome run_goroscope(const std::vector<std::string>& args) {
  // Files rather than pipes: a JSON report can be large, and nothing here
  // needs to read it before goroscope exits.
  char out_tmpl[] = "/tmp/goroscope_out.XXXXXX", err_tmpl[] = "/tmp/goroscope_err.XXXXXX";
  int out = mkstemp(out_tmpl), err = mkstemp(err_tmpl);
  pid_t pid = fork();
  if (pid == 0) {
    int in = open("/dev/null", O_RDONLY);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    std::vector<char*> argv{const_cast<char*>(goroscope_path().c_str())};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(goroscope_path().c_str(), argv.data());
    _exit(127);
  }
  close(out);
  close(err);
  int st = 0;
  waitpid(pid, &st, 0);
  CliOutcome o{WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st), slurp(out_tmpl), slurp(err_tmpl)};
  unlink(out_tmpl);
  unlink(err_tmpl);
  return o;
}

}  // namespace goroscope::testing

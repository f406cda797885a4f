#include "daemon/process_discovery.h"

#include <dirent.h>
#include <fnmatch.h>
#include <unistd.h>

#include <cctype>
#include <climits>

namespace goroscope {

Result<ExePattern> parse_exe_pattern(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return Error{ErrorKind::NotFound, "--exe '" + text + "': " + why};
  };
  if (text.empty()) return bad("empty pattern");
  ExePattern p;
  p.glob = text;
  p.whole_path = text.find('/') != std::string::npos;
  if (p.whole_path && text[0] != '/') return bad("a path must be absolute (or give a bare file name)");
  for (size_t i = 0; i < text.size(); i++) {
    if (text[i] == '\\') {
      if (i + 1 == text.size()) return bad("trailing backslash");
      i++;
    } else if (text[i] == '[') {
      // A class: optional '!' or '^', then ']' may be its first member.
      size_t j = i + 1;
      if (j < text.size() && (text[j] == '!' || text[j] == '^')) j++;
      if (j < text.size() && text[j] == ']') j++;
      while (j < text.size() && text[j] != ']') j++;
      if (j >= text.size()) return bad("unterminated '[' character class");
      i = j;
    }
  }
  return p;
}

bool exe_matches(const ExePattern& pattern, const std::string& exe_path) {
  if (exe_path.empty()) return false;
  if (pattern.whole_path) return fnmatch(pattern.glob.c_str(), exe_path.c_str(), FNM_PATHNAME) == 0;
  size_t slash = exe_path.rfind('/');
  std::string name = slash == std::string::npos ? exe_path : exe_path.substr(slash + 1);
  return fnmatch(pattern.glob.c_str(), name.c_str(), 0) == 0;
}

std::string process_exe_path(pid_t pid) {
  char buf[PATH_MAX];
  std::string link = "/proc/" + std::to_string(pid) + "/exe";
  ssize_t n = readlink(link.c_str(), buf, sizeof buf - 1);
  if (n <= 0) return "";
  std::string path(buf, size_t(n));
  const std::string deleted = " (deleted)";
  if (path.size() > deleted.size() && path.compare(path.size() - deleted.size(), deleted.size(), deleted) == 0)
    path.resize(path.size() - deleted.size());
  return path;
}

std::map<pid_t, std::string> find_matching_processes(const std::vector<ExePattern>& patterns) {
  std::map<pid_t, std::string> found;
  if (patterns.empty()) return found;
  DIR* dir = opendir("/proc");
  if (!dir) return found;
  const pid_t self = getpid();
  while (dirent* e = readdir(dir)) {
    if (!isdigit(static_cast<unsigned char>(e->d_name[0]))) continue;
    pid_t pid = static_cast<pid_t>(atoi(e->d_name));
    if (pid <= 0 || pid == self) continue;
    std::string exe = process_exe_path(pid);
    for (const auto& p : patterns) {
      if (exe_matches(p, exe)) {
        found.emplace(pid, exe);
        break;
      }
    }
  }
  closedir(dir);
  return found;
}

}  // namespace goroscope

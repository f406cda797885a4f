#include "tests/support/prometheus_text.h"

#include <cstdlib>
#include <sstream>
#include <stdexcept>

namespace goroscope::testing {

namespace {

[[noreturn]] void fail(size_t line_no, const std::string& line, const std::string& why) {
  throw std::runtime_error("exposition line " + std::to_string(line_no) + ": " + why + ": " + line);
}

bool name_char(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' || (!first && c >= '0' && c <= '9');
}

// `# HELP name text` / `# TYPE name type`.
void comment(PromExposition& e, const std::string& line) {
  std::istringstream in(line);
  std::string hash, keyword, name;
  in >> hash >> keyword >> name;
  std::string rest;
  std::getline(in, rest);
  if (!rest.empty() && rest[0] == ' ') rest.erase(0, 1);
  if (keyword == "HELP") e.help[name] = rest;
  if (keyword == "TYPE") e.type[name] = rest;
}

PromSample sample(const std::string& line, size_t line_no) {
  PromSample s;
  size_t i = 0;
  while (i < line.size() && name_char(line[i], i == 0)) i++;
  if (i == 0) fail(line_no, line, "no metric name");
  s.name = line.substr(0, i);
  if (i < line.size() && line[i] == '{') {
    i++;
    while (i < line.size() && line[i] != '}') {
      size_t start = i;
      while (i < line.size() && name_char(line[i], i == start)) i++;
      std::string label = line.substr(start, i - start);
      if (label.empty() || i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"')
        fail(line_no, line, "bad label name");
      i += 2;
      std::string value;
      bool closed = false;
      while (i < line.size()) {
        char c = line[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c != '\\') {
          value += c;
          continue;
        }
        if (i >= line.size()) fail(line_no, line, "escape at end of line");
        char e = line[i++];
        if (e == '\\')
          value += '\\';
        else if (e == '"')
          value += '"';
        else if (e == 'n')
          value += '\n';
        else
          fail(line_no, line, std::string("unknown escape \\") + e);
      }
      if (!closed) fail(line_no, line, "unterminated label value");
      if (!s.labels.emplace(label, value).second) fail(line_no, line, "label " + label + " twice");
      if (i < line.size() && line[i] == ',') i++;
    }
    if (i >= line.size()) fail(line_no, line, "unterminated label set");
    i++;
  }
  if (i >= line.size() || line[i] != ' ') fail(line_no, line, "no value");
  std::string value = line.substr(i + 1);
  if (auto sp = value.find(' '); sp != std::string::npos) value.resize(sp);  // a timestamp follows
  char* end = nullptr;
  s.value = std::strtod(value.c_str(), &end);
  if (value.empty() || *end) fail(line_no, line, "bad value");
  return s;
}

}  // namespace

PromExposition parse_prometheus_text(const std::string& text) {
  PromExposition e;
  std::istringstream in(text);
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    line_no++;
    if (line.empty()) continue;
    if (line[0] == '#')
      comment(e, line);
    else
      e.samples.push_back(sample(line, line_no));
  }
  return e;
}

std::vector<PromSample> PromExposition::find(const std::string& name,
                                             const std::map<std::string, std::string>& match) const {
  std::vector<PromSample> out;
  for (const auto& s : samples) {
    if (s.name != name) continue;
    bool ok = true;
    for (const auto& [k, v] : match) {
      auto it = s.labels.find(k);
      ok = ok && it != s.labels.end() && it->second == v;
    }
    if (ok) out.push_back(s);
  }
  return out;
}

double PromExposition::value(const std::string& name, const std::map<std::string, std::string>& match) const {
  auto found = find(name, match);
  if (found.size() != 1) {
    std::string m;
    for (const auto& [k, v] : match) m += k + "=" + v + " ";
    throw std::runtime_error(std::to_string(found.size()) + " samples of " + name + " match " + m);
  }
  return found.front().value;
}

}  // namespace goroscope::testing

#include "daemon/log.h"

#include <time.h>

#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>

namespace goroscope {

namespace {

struct LogConfig {
  std::mutex mu;
  LogLevel level = LogLevel::Info;
  LogFormat format = LogFormat::Logfmt;
  std::ostream* out = &std::cerr;
};
LogConfig& config() {
  static LogConfig c;
  return c;
}

const char* level_name(LogLevel l) {
  switch (l) {
    case LogLevel::Debug: return "debug";
    case LogLevel::Info: return "info";
    case LogLevel::Warn: return "warn";
    case LogLevel::Error: return "error";
  }
  return "info";
}

std::string timestamp() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  tm t{};
  gmtime_r(&ts.tv_sec, &t);
  char buf[40];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &t);
  snprintf(buf + n, sizeof buf - n, ".%03ldZ", ts.tv_nsec / 1000000);
  return buf;
}

}  // namespace

std::optional<LogLevel> parse_log_level(std::string_view name) {
  for (LogLevel l : {LogLevel::Debug, LogLevel::Info, LogLevel::Warn, LogLevel::Error})
    if (name == level_name(l)) return l;
  return std::nullopt;
}

std::optional<LogFormat> parse_log_format(std::string_view name) {
  if (name == "logfmt") return LogFormat::Logfmt;
  if (name == "json") return LogFormat::Json;
  return std::nullopt;
}

void configure_log(LogLevel level, LogFormat format, std::ostream* out) {
  LogConfig& c = config();
  std::lock_guard lock(c.mu);
  c.level = level;
  c.format = format;
  if (out) c.out = out;
}

std::string logfmt_value(std::string_view v) {
  bool plain = !v.empty();
  for (char ch : v)
    if (ch <= ' ' || ch == '"' || ch == '=' || ch == '\\' || static_cast<unsigned char>(ch) >= 0x7f) plain = false;
  if (plain) return std::string(v);
  std::string q = "\"";
  for (char ch : v) {
    if (ch == '"' || ch == '\\') {
      q += '\\';
      q += ch;
    } else if (ch == '\n') {
      q += "\\n";
    } else {
      q += ch;
    }
  }
  return q + "\"";
}

void log_line(LogLevel level, std::string_view msg, const LogFields& fields) {
  LogConfig& c = config();
  std::string line;
  LogFormat format;
  {
    std::lock_guard lock(c.mu);
    if (level < c.level) return;
    format = c.format;
  }
  if (format == LogFormat::Json) {
    nlohmann::ordered_json j;
    j["ts"] = timestamp();
    j["level"] = level_name(level);
    j["msg"] = std::string(msg);
    for (const auto& [k, v] : fields) j[k] = v;
    line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else {
    line = "ts=" + timestamp() + " level=" + level_name(level) + " msg=" + logfmt_value(msg);
    for (const auto& [k, v] : fields) line += " " + k + "=" + logfmt_value(v);
  }
  line += '\n';
  std::lock_guard lock(c.mu);
  *c.out << line << std::flush;
}

}  // namespace goroscope

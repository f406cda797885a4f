// The daemon's structured log, in the exporter convention (--log.level,
// --log.format logfmt|json): one line per event on stderr, safe from any
// thread. Example:
//   log_info("attached", {{"pid", "4242"}, {"exe", "/usr/bin/api"}});
// -> ts=2026-11-26T09:20:00.123Z level=info msg=attached pid=4242 exe=/usr/bin/api
#pragma once

#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace goroscope {

enum class LogLevel { Debug, Info, Warn, Error };
enum class LogFormat { Logfmt, Json };

std::optional<LogLevel> parse_log_level(std::string_view name);
std::optional<LogFormat> parse_log_format(std::string_view name);

// Applies to every later line; the default is info, logfmt, std::cerr.
void configure_log(LogLevel level, LogFormat format, std::ostream* out = nullptr);

using LogFields = std::vector<std::pair<std::string, std::string>>;
void log_line(LogLevel level, std::string_view msg, const LogFields& fields = {});
inline void log_debug(std::string_view msg, const LogFields& f = {}) { log_line(LogLevel::Debug, msg, f); }
inline void log_info(std::string_view msg, const LogFields& f = {}) { log_line(LogLevel::Info, msg, f); }
inline void log_warn(std::string_view msg, const LogFields& f = {}) { log_line(LogLevel::Warn, msg, f); }
inline void log_error(std::string_view msg, const LogFields& f = {}) { log_line(LogLevel::Error, msg, f); }

// One logfmt value: bare when it needs no quoting, else quoted and escaped.
std::string logfmt_value(std::string_view v);

}  // namespace goroscope

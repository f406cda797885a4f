#include "symbols/addr2line.h"

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

namespace goroscope {

namespace {

// bufio.Scanner's default token limit: a line (plus its newline) must fit in
// a 64 KiB buffer, else Scan stops with ErrTooLong and addr2line, which does
// not check Err, ends as if the input had ended.
constexpr size_t kMaxScannedLine = 64 * 1024;

// strconv.ParseUint(s, 16, 64) as addr2line ignores its error: 0 for a
// syntax error (empty, a non-hex digit), the maximum for an overflow. The
// digits are checked in order, so an overflow that comes before a bad digit
// still yields the maximum.
uint64_t parse_uint_hex(std::string_view s) {
  uint64_t n = 0;
  for (char c : s) {
    unsigned digit;
    if (c >= '0' && c <= '9') {
      digit = c - '0';
    } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
      digit = (c | 0x20) - 'a' + 10;
    } else {
      return 0;
    }
    if (n > std::numeric_limits<uint64_t>::max() >> 4) return std::numeric_limits<uint64_t>::max();
    n = n << 4 | digit;
  }
  return n;
}

}  // namespace

void run_addr2line(const Pclntab& table, std::istream& in, std::ostream& out) {
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() >= kMaxScannedLine) break;
    if (!line.empty() && line.back() == '\r') line.pop_back();  // bufio.ScanLines drops one trailing CR
    std::string_view text = line;
    if (text.find(':') != std::string_view::npos) {
      // The old C tool's file:line -> pc direction, recognized but never implemented.
      out << "!reverse translation not implemented\n";
      continue;
    }
    if (text.starts_with("0x")) text.remove_prefix(2);
    FuncInfo func;
    std::string_view file;
    int line_number = 0;
    if (table.pc_to_line(parse_uint_hex(text), &func, &file, &line_number)) {
      out << func.name << '\n' << file << ':' << line_number << '\n';
    } else {
      out << "?\n?:0\n";
    }
  }
  out.flush();
}

}  // namespace goroscope

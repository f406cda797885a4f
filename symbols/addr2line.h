// `go tool addr2line` on a Pclntab: reads hex addresses (optional 0x), one a
// line, and writes the function name and file:line for each, byte for byte
// as the Go tool does (cmd/addr2line/main.go), so pprof can use either.
#pragma once

#include <istream>
#include <ostream>

#include "symbols/pclntab.h"

namespace goroscope {

void run_addr2line(const Pclntab& table, std::istream& in, std::ostream& out);

}  // namespace goroscope

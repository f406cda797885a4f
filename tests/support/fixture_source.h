// Where a fixture's sites are, from its source: the line of a marker
// comment in tests/fixtures/<fixture>/main.go (e.g. `// LEAK_SITE` on the
// leaking `go` statement), and whether a file name as a build records it is
// that main.go. Plus one build of a fixture picked from the matrix.
#pragma once

#include <fstream>
#include <stdexcept>
#include <string>

#include "tests/support/fixture_matrix.h"

namespace goroscope::testing {

// The line of `// marker` in tests/fixtures/<fixture>/main.go.
inline int marker_line(const std::string& fixture, const std::string& marker) {
  std::ifstream in(std::string(GOROSCOPE_SOURCE_DIR) + "/tests/fixtures/" + fixture + "/main.go");
  std::string line;
  for (int n = 1; std::getline(in, line); n++)
    if (line.find("// " + marker) != std::string::npos) return n;
  throw std::runtime_error("no marker " + marker + " in " + fixture);
}

// True if `file` names tests/fixtures/<fixture>/main.go as an unstripped
// build records it: an absolute path in whichever checkout the (cached)
// fixture was built from, so matched by its tail.
inline bool is_fixture_main(const std::string& file, const std::string& fixture) {
  const std::string tail = "/tests/fixtures/" + fixture + "/main.go";
  return file.size() > tail.size() && file[0] == '/' && file.compare(file.size() - tail.size(), tail.size(), tail) == 0;
}

// The runnable build of `fixture` with Go `minor` (e.g. "go1.26") and
// `variant`; throws if the matrix has none.
inline FixtureBinary fixture_build(const std::string& fixture, const std::string& minor, const std::string& variant) {
  for (const auto& b : runnable_builds(fixture, {minor}))
    if (b.variant == variant) return b;
  throw std::runtime_error("no " + variant + " build of " + fixture + " with " + minor);
}

}  // namespace goroscope::testing

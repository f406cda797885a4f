// Runs build/goroscope as a user would, with stdout and stderr captured.
#pragma once

#include <string>
#include <vector>

namespace goroscope::testing {

struct CliOutcome {
  int status = -1;  // exit code, or 128 + signal
  std::string out, err;
};

CliOutcome run_goroscope(const std::vector<std::string>& args);
const std::string& goroscope_path();

}  // namespace goroscope::testing

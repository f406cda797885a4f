// Privileged tests (BPF, reading other processes) run as root. Outside CI a
// missing privilege skips them with a message; with CI=true it fails them.
#pragma once

#include <gtest/gtest.h>

#include <string>

namespace goroscope::testing {

// Empty if this process may load BPF programs and read other processes'
// memory; otherwise says what is missing.
std::string missing_privileges();
bool in_ci();

}  // namespace goroscope::testing

#define GOROSCOPE_REQUIRE_PRIVILEGES()                                                     \
  do {                                                                                     \
    std::string missing__ = ::goroscope::testing::missing_privileges();                    \
    if (!missing__.empty()) {                                                              \
      if (::goroscope::testing::in_ci()) FAIL() << "CI=true but " << missing__;            \
      GTEST_SKIP() << "needs root with CAP_BPF/CAP_PERFMON: " << missing__;                \
    }                                                                                      \
  } while (0)

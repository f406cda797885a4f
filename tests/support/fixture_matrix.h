// The Go fixture matrix as the tests see it: every fixture binary built by
// tests/fixtures/build-matrix.sh, read from its manifest. A missing manifest
// is a test failure (with the command to build it), never a silent skip.
#pragma once

#include <gtest/gtest.h>

#include <ostream>
#include <string>
#include <vector>

namespace goroscope::testing {

struct FixtureBinary {
  std::string fixture;   // e.g. "symbolzoo"
  std::string go;        // e.g. "go1.22.12"
  std::string variant;   // default, stripped, pie, extld, arm64
  std::string goarch;    // amd64, arm64
  std::string path;      // the binary
  std::string gobin;     // the `go` of the toolchain that built it
  std::string role;      // "symbols" (every variant, parser tests) or "behaviour" (runtime scenarios)

  std::string label() const { return fixture + "/" + go + "/" + variant; }
  bool runnable() const { return goarch == "amd64"; }
};

// gtest prints a parameter by this.
void PrintTo(const FixtureBinary& b, std::ostream* os);

// All binaries; throws std::runtime_error if the matrix was not built.
const std::vector<FixtureBinary>& fixture_matrix();
// The "symbols" fixtures (leakdemo, symbolzoo) in every version and variant:
// what the parser tests run over.
const std::vector<FixtureBinary>& symbol_matrix();
// The subset for one fixture (and optionally one variant).
std::vector<FixtureBinary> fixtures(const std::string& fixture, const std::string& variant = "");
// The amd64 builds of one fixture that can run here, optionally only those of
// the given Go minor versions (e.g. {"go1.19", "go1.26"}).
std::vector<FixtureBinary> runnable_builds(const std::string& fixture, const std::vector<std::string>& minors = {});
// A gtest parameter name for a build: "go1_22_12_pie".
std::string build_name(const ::testing::TestParamInfo<FixtureBinary>& info);

// The unstripped default build of the same fixture and Go version.
const FixtureBinary& default_build_of(const FixtureBinary& b);

// Runs a command, returns its stdout; throws if it exits non-zero.
std::string run_command(const std::vector<std::string>& argv, const std::string& stdin_text = "");

}  // namespace goroscope::testing

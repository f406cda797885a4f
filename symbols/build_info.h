// BuildInfo: what the Go linker records in .go.buildinfo — the toolchain
// version, the main module, its dependencies and the build settings
// (including DefaultGODEBUG, which decides e.g. the timer regime).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "symbols/elf_image.h"
#include "symbols/result.h"

namespace goroscope {

struct GoVersion {
  int major = 0, minor = 0, patch = 0;
  std::string raw;  // as recorded, e.g. "go1.20.7 X:boringcrypto", "devel go1.24-abc Tue ..."

  // Parses "go1.N[.P][rcK|betaK][ suffix]" and "devel go1.N-...".
  static std::optional<GoVersion> parse(std::string_view raw);
  // "go1.22" — the key for per-version tables.
  std::string minor_key() const { return "go" + std::to_string(major) + "." + std::to_string(minor); }
  bool at_least(int maj, int min) const { return major > maj || (major == maj && minor >= min); }
};

struct GoModule {
  std::string path, version, sum;
  std::string replaced_by;  // "path version sum" of a => line, if any
};

struct BuildInfo {
  GoVersion go_version;
  std::string main_path;  // the `path` line: the main package
  GoModule main_module;
  std::vector<GoModule> deps;
  std::vector<std::pair<std::string, std::string>> settings;  // build key=value, in order
  std::string modinfo;  // the raw text, without sentinels

  std::string setting(const std::string& key) const;
  // Value of one GODEBUG key in the DefaultGODEBUG setting, or "".
  std::string default_godebug(const std::string& key) const;
};

// Oldest and newest Go minor versions goroscope knows how to read.
inline constexpr int kMinGoMinor = 18;
inline constexpr int kMaxGoMinor = 26;

// Reads .go.buildinfo (by section name, else by scanning the data segments for
// its magic). NotGo if absent; UnsupportedVersion for Go < 1.18 or newer than
// kMaxGoMinor (the message says which version was found).
Result<BuildInfo> read_build_info(const ElfImage& elf);

}  // namespace goroscope

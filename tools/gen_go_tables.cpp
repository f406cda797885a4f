// gen_go_tables: writes symbols/generated/go_tables.inc, the per-Go-minor
// struct offsets and wait-reason strings goroscope falls back on for binaries
// without DWARF or .symtab, from the fixture matrix built by
// tests/fixtures/build-matrix.sh.
//
// USAGE
//   gen_go_tables [-o OUTPUT] [MANIFEST]
//
//   MANIFEST  the matrix manifest (default ~/.cache/goroscope/fixtures/manifest.tsv):
//             fixture, go version, variant, GOARCH, binary, go binary; TSV.
//   OUTPUT    default symbols/generated/go_tables.inc (relative to the cwd).
//
// EXAMPLES
//   cmake --build build --target regen_go_tables
//   ./build/gen_go_tables -o /tmp/go_tables.inc ~/.cache/goroscope/fixtures/manifest.tsv
//
// For each Go release in the manifest the numbers come from the unstripped
// default amd64 build. Every other build of that release that has DWARF (pie,
// extld, arm64, the other fixtures) must give the same offsets, and every one
// with .symtab the same wait reasons, or the tool fails naming the
// difference: one table per minor version has to serve all of them.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "symbols/build_info.h"
#include "symbols/elf_image.h"
#include "symbols/struct_offsets.h"
#include "symbols/wait_reasons.h"

namespace goroscope {
namespace {

struct ManifestRow {
  std::string fixture, go, variant, goarch, path, gobin;
  std::string label() const { return fixture + "/" + go + "/" + variant; }
  bool is_reference() const { return variant == "default" && goarch == "amd64"; }
  bool has_dwarf() const { return variant != "stripped"; }  // built with -s -w
};

std::vector<ManifestRow> read_manifest(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    throw std::runtime_error("cannot read manifest " + path + " (build it: cmake --build build --target fixtures)");
  std::vector<ManifestRow> rows;
  std::string line;
  for (int line_no = 1; std::getline(in, line); line_no++) {
    if (line.empty()) continue;
    std::vector<std::string> cols;
    std::istringstream fields(line);
    for (std::string col; std::getline(fields, col, '\t');) cols.push_back(col);
    if (cols.size() != 7) throw std::runtime_error(path + ":" + std::to_string(line_no) + ": expected 7 columns");
    // Only the "symbols" fixtures use every runtime type the catalog names
    // (timers included); behaviour fixtures would leave DWARF gaps.
    if (cols[6] != "symbols") continue;
    rows.push_back({cols[0], cols[1], cols[2], cols[3], cols[4], cols[5]});
  }
  if (rows.empty()) throw std::runtime_error("manifest " + path + " is empty");
  return rows;
}

// What one Go minor version's table holds, and where it was read from.
struct MinorTables {
  GoVersion release;
  const ManifestRow* reference = nullptr;
  StructOffsets offsets;
  std::vector<std::string> wait_reasons;
  std::vector<std::string> agreeing;  // labels of the other builds that matched
};

std::shared_ptr<ElfImage> open_checked(const ManifestRow& row, const GoVersion& release) {
  auto elf = ElfImage::open(row.path);
  if (!elf) throw std::runtime_error(row.label() + ": " + elf.error().message);
  auto info = read_build_info(**elf);
  if (!info) throw std::runtime_error(row.label() + ": " + info.error().message);
  const GoVersion& built = info->go_version;
  if (built.major != release.major || built.minor != release.minor || built.patch != release.patch)
    throw std::runtime_error(row.label() + ": the manifest says " + row.go + " but the binary was built by " +
                             built.raw);
  return *elf;
}

void require_same_offsets(const StructOffsets& reference, const StructOffsets& other, const std::string& what) {
  std::string diff;
  for (const auto& [key, ref] : reference.all()) {
    auto got = other.get(key);
    if (!got)
      diff += "\n  " + key + ": missing (reference " + std::to_string(ref.value) + ")";
    else if (got->value != ref.value)
      diff += "\n  " + key + ": " + std::to_string(got->value) + " (reference " + std::to_string(ref.value) + ")";
  }
  for (const auto& [key, got] : other.all())
    if (!reference.get(key)) diff += "\n  " + key + ": " + std::to_string(got.value) + " (not in reference)";
  if (!diff.empty()) throw std::runtime_error(what + ": struct offsets differ from the default amd64 build:" + diff);
}

void add_build(MinorTables& tables, const ManifestRow& row) {
  auto elf = open_checked(row, tables.release);
  if (!row.has_dwarf()) return;
  auto offsets = read_dwarf_offsets(*elf, tables.release);
  if (!offsets) throw std::runtime_error(row.label() + ": " + offsets.error().message);
  auto reasons = read_wait_reasons(*elf);
  if (!reasons) throw std::runtime_error(row.label() + ": " + reasons.error().message);

  if (!tables.reference) {
    for (const auto& spec : required_fields())
      if (spec.exists_in(tables.release.minor) && !offsets->get(spec.key()))
        throw std::runtime_error(row.label() + ": DWARF has no " + spec.key() + ", which the catalog expects in " +
                                 tables.release.minor_key() + " (renamed? then fix required_fields())");
    tables.reference = &row;
    tables.offsets = std::move(*offsets);
    tables.wait_reasons = std::move(reasons->names);
    return;
  }
  require_same_offsets(tables.offsets, *offsets, row.label());
  if (reasons->names != tables.wait_reasons)
    throw std::runtime_error(row.label() + ": runtime.waitReasonStrings differs from " + tables.reference->label());
  tables.agreeing.push_back(row.fixture + "/" + row.variant);
}

std::map<int, MinorTables> collect(const std::vector<ManifestRow>& rows) {
  std::map<int, MinorTables> by_minor;
  std::map<int, std::vector<const ManifestRow*>> rows_by_minor;
  for (const auto& row : rows) {
    auto version = GoVersion::parse(row.go);
    if (!version || version->major != 1) throw std::runtime_error(row.label() + ": not a Go version: " + row.go);
    auto [it, fresh] = by_minor.try_emplace(version->minor);
    if (fresh) it->second.release = *version;
    if (it->second.release.raw != version->raw)
      throw std::runtime_error("two releases of " + version->minor_key() + " in the manifest (" +
                               it->second.release.raw + ", " + version->raw + "); the table keeps one per minor");
    rows_by_minor[version->minor].push_back(&row);
  }
  for (auto& [minor, tables] : by_minor) {
    auto& builds = rows_by_minor[minor];
    // The reference goes first, so every other build is compared with it.
    std::stable_partition(builds.begin(), builds.end(), [](const ManifestRow* r) { return r->is_reference(); });
    if (!builds.front()->is_reference())
      throw std::runtime_error("no unstripped default amd64 build of " + tables.release.raw + " in the manifest");
    for (const auto* row : builds) add_build(tables, *row);
  }
  return by_minor;
}

// A C++ string literal; octal escapes, unlike \x, cannot swallow what follows.
std::string cxx_literal(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\%03o", c);
      out += buf;
    }
  }
  return out + "\"";
}

std::string render(const std::map<int, MinorTables>& by_minor) {
  std::ostringstream o;
  o << "// GENERATED by tools/gen_go_tables — DO NOT EDIT BY HAND.\n"
       "//\n"
       "// Regenerate after changing required_fields() or the fixture matrix:\n"
       "//   cmake --build build --target regen_go_tables\n"
       "// which runs\n"
       "//   gen_go_tables -o symbols/generated/go_tables.inc <fixtures>/manifest.tsv\n"
       "// tests/unit/struct_offsets_test.cpp fails while this file is stale.\n"
       "//\n"
       "// Per Go minor version: struct offsets from the DWARF, wait reasons from\n"
       "// runtime.waitReasonStrings, of the unstripped default amd64 fixture build;\n"
       "// the listed builds of the same release gave identical numbers.\n";
  for (const auto& [minor, t] : by_minor) {
    std::string line = "//   " + t.release.minor_key() + ": " + t.reference->fixture + "/" + t.release.raw + "/default";
    if (!t.agreeing.empty()) line += "; agreeing:";
    for (const auto& a : t.agreeing) {
      if (line.size() + a.size() > 100) {
        o << line << "\n";
        line = "//     ";
      }
      line += " " + a;
    }
    o << line << "\n";
  }
  o << "#pragma once\n\n"
       "#include <cstdint>\n"
       "#include <span>\n"
       "#include <string_view>\n\n"
       "namespace goroscope::generated {\n\n"
       "struct GoFieldOffset {\n"
       "  std::string_view key;  // StructOffsets key: \"runtime.g.goid\", or \"runtime.g\" for its size\n"
       "  uint64_t value;\n"
       "};\n\n"
       "struct GoMinorTables {\n"
       "  int minor;                  // go1.<minor>\n"
       "  std::string_view release;   // the release the numbers were read from\n"
       "  std::span<const GoFieldOffset> offsets;\n"
       "  std::span<const std::string_view> wait_reasons;  // index = waitReason value\n"
       "};\n\n"
       "// clang-format off\n";
  for (const auto& [minor, t] : by_minor) {
    std::string id = "kGo1_" + std::to_string(minor);
    o << "\ninline constexpr GoFieldOffset " << id << "Offsets[] = {\n";
    for (const auto& [key, offset] : t.offsets.all())
      o << "    {" << cxx_literal(key) << ", " << offset.value << "},\n";
    o << "};\n\ninline constexpr std::string_view " << id << "WaitReasons[] = {\n";
    for (size_t i = 0; i < t.wait_reasons.size(); i++)
      o << "    /* " << i << " */ " << cxx_literal(t.wait_reasons[i]) << ",\n";
    o << "};\n";
  }
  o << "\ninline constexpr GoMinorTables kGoMinorTables[] = {\n";
  for (const auto& [minor, t] : by_minor) {
    std::string id = "kGo1_" + std::to_string(minor);
    o << "    {" << minor << ", " << cxx_literal(t.release.raw) << ", " << id << "Offsets, " << id << "WaitReasons},\n";
  }
  o << "};\n// clang-format on\n\n}  // namespace goroscope::generated\n";
  return o.str();
}

// Write-then-rename, so a failed run never leaves half a table behind.
void write_file(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error("cannot write " + tmp);
    out << text;
    if (!out.flush()) throw std::runtime_error("cannot write " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error("cannot rename " + tmp + " to " + path);
}

constexpr char kUsage[] =
    "usage: gen_go_tables [-o OUTPUT] [MANIFEST]\n"
    "  e.g. gen_go_tables -o symbols/generated/go_tables.inc ~/.cache/goroscope/fixtures/manifest.tsv\n";

int run(int argc, char** argv) {
  const char* home = std::getenv("HOME");
  std::string manifest = std::string(home ? home : "") + "/.cache/goroscope/fixtures/manifest.tsv";
  std::string output = "symbols/generated/go_tables.inc";
  for (int i = 1; i < argc; i++) {
    std::string arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      return 0;
    }
    if (arg == "-o" && i + 1 < argc) {
      output = argv[++i];
    } else if (arg.starts_with("-")) {
      std::cerr << kUsage;
      return 2;
    } else {
      manifest = arg;
    }
  }
  const std::vector<ManifestRow> rows = read_manifest(manifest);  // MinorTables point into it
  auto by_minor = collect(rows);
  write_file(output, render(by_minor));
  std::cerr << "gen_go_tables: wrote " << output << " (" << by_minor.size() << " Go minor versions)\n";
  return 0;
}

}  // namespace
}  // namespace goroscope

int main(int argc, char** argv) {
  try {
    return goroscope::run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "gen_go_tables: " << e.what() << "\n";
    return 1;
  }
}

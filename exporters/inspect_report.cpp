#include "exporters/inspect_report.h"

#include <cstdio>
#include <iomanip>

namespace goroscope {

namespace {

std::string hex(uint64_t v) {
  char buf[32];
  snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

nlohmann::json inspect_json(const InspectSubject& subject, const GoBinary& binary, const ProbePlan& plan) {
  using nlohmann::json;
  const BuildInfo& bi = binary.build_info();
  json j;
  j["path"] = subject.path;
  if (subject.pid) j["pid"] = subject.pid;
  j["go_version"] = bi.go_version.raw;
  j["arch"] = to_string(binary.elf().arch());
  j["build_id"] = binary.elf().build_id();
  j["stripped"] = binary.stripped();
  j["dwarf"] = binary.has_dwarf();
  j["pie"] = binary.pie();
  j["main_package"] = bi.main_path;
  j["module"] = {{"path", bi.main_module.path}, {"version", bi.main_module.version}, {"sum", bi.main_module.sum}};
  json deps = json::array();
  for (const auto& d : bi.deps) {
    json dj = {{"path", d.path}, {"version", d.version}, {"sum", d.sum}};
    if (!d.replaced_by.empty()) dj["replaced_by"] = d.replaced_by;
    deps.push_back(dj);
  }
  j["deps"] = deps;
  json settings = json::object();
  for (const auto& [k, v] : bi.settings) settings[k] = v;
  j["build_settings"] = settings;

  const Pclntab& pt = binary.pclntab();
  j["pclntab"] = {{"address", pt.vaddr()},
                  {"text_start", pt.text_start()},
                  {"moduledata", pt.moduledata_vaddr()},
                  {"functions", pt.num_funcs()}};

  json funcs = json::object();
  for (const auto& p : plan.points) {
    json f = {{"address", p.address},
              {"end", p.end},
              {"file_offset", p.file_offset},
              {"ret_addresses", p.ret_addresses},
              {"ret_offsets", p.ret_file_offsets},
              {"purpose", p.purpose}};
    if (p.after_stack_check) {
      f["after_stack_check"] = *p.after_stack_check;
      f["after_stack_check_offset"] = p.after_stack_check_file_offset.value_or(0);
    }
    if (!p.code_ok) f["ret_offsets_unknown"] = true;
    funcs[p.function] = f;
  }
  j["functions"] = funcs;

  json offsets = json::object();
  for (const auto& [key, off] : binary.offsets().all())
    offsets[key] = {{"value", off.value}, {"source", to_string(off.source)}};
  j["offsets"] = offsets;

  const WaitReasons& wr = binary.wait_reasons();
  j["wait_reasons"] = {{"source", wr.source == OffsetSource::Dwarf ? "binary" : "table"}, {"values", wr.names}};

  json warnings = binary.warnings();
  for (const auto& w : plan.warnings) warnings.push_back(w);
  j["warnings"] = warnings;
  j["notes"] = plan.notes;
  return j;
}

void print_inspect_text(std::ostream& out, const InspectSubject& subject, const GoBinary& binary, const ProbePlan& plan) {
  const BuildInfo& bi = binary.build_info();
  const Pclntab& pt = binary.pclntab();
  out << subject.path;
  if (subject.pid) out << " (pid " << subject.pid << ")";
  out << "\n";
  out << "  go version   " << bi.go_version.raw << " " << to_string(binary.elf().arch()) << "\n";
  out << "  main package " << bi.main_path << "\n";
  out << "  module       " << bi.main_module.path << " " << bi.main_module.version << "\n";
  out << "  binary       " << (binary.pie() ? "PIE" : "not PIE") << ", "
      << (binary.stripped() ? "stripped (no .symtab)" : "with .symtab") << ", "
      << (binary.has_dwarf() ? "with DWARF" : "no DWARF") << "\n";
  std::string godebug = bi.setting("DefaultGODEBUG");
  if (!godebug.empty()) out << "  DefaultGODEBUG " << godebug << "\n";
  out << "  pclntab      " << hex(pt.vaddr()) << ", " << pt.num_funcs() << " functions, text at "
      << hex(pt.text_start()) << "\n";

  out << "\nprobe points (address, file offset, RET file offsets)\n";
  size_t width = 0;
  for (const auto& p : plan.points) width = std::max(width, p.function.size());
  for (const auto& p : plan.points) {
    out << "  " << std::left << std::setw(static_cast<int>(width)) << p.function << "  " << std::setw(10)
        << hex(p.address) << "  +" << std::setw(9) << hex(p.file_offset) << "  ret:";
    if (!p.code_ok) out << " unknown";
    for (uint64_t r : p.ret_file_offsets) out << " " << hex(r);
    out << "\n";
  }

  out << "\nstruct offsets\n";
  width = 0;
  for (const auto& [key, _] : binary.offsets().all()) width = std::max(width, key.size());
  for (const auto& [key, off] : binary.offsets().all())
    out << "  " << std::left << std::setw(static_cast<int>(width)) << key << "  " << std::right << std::setw(6)
        << off.value << "  (" << to_string(off.source) << ")\n" << std::left;

  const WaitReasons& wr = binary.wait_reasons();
  out << "\nwait reasons (" << (wr.source == OffsetSource::Dwarf ? "from the binary" : "from the table") << "): "
      << wr.names.size() << "\n";

  auto list = [&](const char* title, const std::vector<std::string>& items) {
    if (items.empty()) return;
    out << "\n" << title << "\n";
    for (const auto& w : items) out << "  " << w << "\n";
  };
  list("warnings", binary.warnings());
  list("probe warnings", plan.warnings);
  list("notes", plan.notes);
}

}  // namespace goroscope

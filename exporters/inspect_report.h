// The report of `goroscope inspect`: everything symbols/ learned about one Go
// binary, as JSON (the contract in DESIGN.md: go_version, stripped, pie,
// functions{name: address, file_offset, ret_offsets}, offsets{key: value,
// source}) or as text for a person.
#pragma once

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "symbols/go_binary.h"
#include "symbols/probe_points.h"

namespace goroscope {

struct InspectSubject {
  std::string path;  // as the user named it, or the target's exe path
  int pid = 0;       // 0 when inspecting a file
};

nlohmann::json inspect_json(const InspectSubject& subject, const GoBinary& binary, const ProbePlan& plan);
void print_inspect_text(std::ostream& out, const InspectSubject& subject, const GoBinary& binary, const ProbePlan& plan);

}  // namespace goroscope

#include "daemon/inspect_command.h"

#include <iostream>

#include "daemon/target_process.h"
#include "exporters/inspect_report.h"
#include "symbols/addr2line.h"
#include "symbols/go_binary.h"
#include "symbols/probe_points.h"

namespace goroscope {

int run_inspect(const InspectOptions& options) {
  InspectSubject subject;
  std::string open_path;
  if (options.pid) {
    auto target = resolve_target_process(options.pid);
    if (!target) {
      std::cerr << "goroscope: " << target.error().message << "\n";
      return 1;
    }
    subject = {target->exe_path, options.pid};
    open_path = target->exe_link;
  } else {
    subject = {options.binary, 0};
    open_path = options.binary;
  }

  auto binary = GoBinary::open(open_path);
  if (!binary) {
    std::string msg = binary.error().message;
    // Name the file the user knows rather than /proc/PID/exe.
    if (options.pid && msg.rfind(open_path, 0) == 0) msg = subject.path + msg.substr(open_path.size());
    std::cerr << "goroscope: " << msg << "\n";
    return 1;
  }

  if (options.addr2line) {
    run_addr2line((*binary)->pclntab(), std::cin, std::cout);
    return 0;
  }

  ProbePlan plan = resolve_probe_points(**binary);
  if (options.format == "json") {
    std::cout << inspect_json(subject, **binary, plan).dump(2) << "\n";
  } else {
    print_inspect_text(std::cout, subject, **binary, plan);
  }
  return 0;
}

}  // namespace goroscope

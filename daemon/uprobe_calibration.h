// What one uprobe hit costs on this machine, measured at start-up: the
// overhead governor turns probe hit counts into CPU time with it. A uprobe
// trap costs about 1-3 µs on bare metal and ~10 µs in some VMs (DESIGN.md),
// so no constant is right everywhere.
//
// Method: a function of this process is called N times bare and N times
// with bpf/calibrate.bpf.c attached to it (a handler as heavy as goroscope's
// real ones); the difference per call, median of a few rounds, is the cost.
// About 50-150 ms.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "symbols/result.h"

namespace goroscope {

struct UprobeCalibration {
  double cost_seconds = 0;  // per hit
  uint64_t hits = 0;        // the probe's hit count over all rounds (sanity)
  int rounds = 0;
};

Result<UprobeCalibration> calibrate_uprobe_cost(int calls_per_round = 5000, int rounds = 3);

// The cost the engine uses: `given` when positive, else this process's
// calibration (measured once, then remembered), else 10 µs (the figure
// measured on these VMs) when calibration fails; `note` says which.
double resolve_uprobe_cost(double given, std::string* note = nullptr);

// The file and file offset of a function of goroscope itself (from
// /proc/self/maps): where the calibration and capability probes attach.
Result<std::pair<std::string, uint64_t>> own_code_location(const void* address);

// The function those probes attach to.
extern "C" void goroscope_uprobe_calibration_target(uint64_t* counter);

}  // namespace goroscope

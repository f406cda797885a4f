// The alerts one attached process raises at an evaluation, from its
// AttachSnapshot: a goroutine or timer leak per creation site, lost events,
// probe overhead above its budget; and the alert for a target that could
// not be attached at all. The daemon hands the union over all its targets
// to the Alertmanager pusher (exporters/alertmanager_push.h).
//
// Label set of the site alerts: alertname, severity, exe, pid, function,
// file, line, kind (goroutine|timer), verdict. The others carry alertname,
// severity, exe and pid. Counts and reasons change between evaluations and
// so are annotations, never labels: a label change would be a new alert.
// The overhead alert needs a minute since attach: the ratio over less is
// noise.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "exporters/alert.h"
#include "exporters/attach_report.h"
#include "symbols/pclntab.h"

namespace goroscope {

// `lost_events_before`: snap.lost_events at the previous evaluation of the
// same process (0 at the first), so that GoroscopeEventsLost says "events
// are being lost now" rather than firing forever after one burst.
std::vector<Alert> attach_alerts(const AttachSnapshot& snap, const Pclntab& pclntab, uint64_t lost_events_before);

Alert attach_failed_alert(const std::string& exe, int pid, const std::string& error);

}  // namespace goroscope

#pragma once
// kairosctl schedule: the arguments of a schedule(command, targets, T) call
// and the printed result (docs/DESIGN.md 5.4, 5.8).
#include <cstdint>
#include <string>
#include <vector>

#include "kairos.pb.h"

namespace kairos::ctl {

// Fills req from the words after `schedule`; "" or the error (exit 2).
// now_us: the wall clock, for --at in the past.
std::string parse_schedule_args(const std::vector<std::string>& args, kairos_v1_ScheduleRequest& req,
                                std::int64_t now_us);
// A time for --at: seconds since the Unix epoch ("1763922600.25") or UTC
// ISO 8601 ("2026-11-23T18:30:00.250Z"); -1 when it is neither.
std::int64_t parse_time_us(const std::string& s);
std::string format_time_us(std::int64_t us);  // UTC ISO 8601 with milliseconds
// How long to wait for the reply: until T + the window (and its extensions), plus a margin.
int schedule_wait_ms(const kairos_v1_ScheduleRequest& req, std::int64_t now_us, int timeout_ms);
// Prints the result; the exit status: 0 for PROCEED, 3 for any other verdict.
int print_schedule(const kairos_v1_ScheduleReply& r, bool json);

}  // namespace kairos::ctl

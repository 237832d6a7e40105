#pragma once
// kairosctl delegate, jobs and breakers (docs/DESIGN.md 5.5, 5.6, 5.8).
#include <string>
#include <vector>

#include "kairos.pb.h"

namespace kairos::ctl {

// Fills req from the words after `delegate`; "" or the error (exit 2).
std::string parse_delegate_args(const std::vector<std::string>& args, kairos_v1_DelegateRequest& req);
// Fills req from the words after `jobs`; "" or the error (exit 2).
std::string parse_jobs_args(const std::vector<std::string>& args, kairos_v1_JobsRequest& req);
// How long to wait for a delegate's reply.
int delegate_wait_ms(const kairos_v1_DelegateRequest& req, int timeout_ms);
// Prints a job; the exit status: 0 accepted, running or DONE, 3 FAILED.
int print_job(const kairos_v1_JobInfo& j, bool json);
int print_jobs(const kairos_v1_JobList& l, bool json);
int print_breakers(const kairos_v1_BreakerList& l, bool json);

}  // namespace kairos::ctl

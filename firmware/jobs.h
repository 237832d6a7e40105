#pragma once
// Jobs on the node (docs/DESIGN.md 5.5): the command handlers of the config's
// allow-list ([jobs.<name>]) run as child processes beside the loop, never
// blocking it. A handler is started with posix_spawn (no shell, no PATH
// lookup), reads the job's payload on stdin, and its stdout is the result.
// The loop calls poll() every turn while jobs run: pipes are non-blocking
// and children are reaped with WNOHANG.
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/core/frame.h"

namespace kairos::node {

// One [jobs.<name>] table.
struct JobConfig {
  std::string name;
  std::vector<std::string> command;   // argv; command[0] is an absolute path
  std::uint32_t timeout_ms = 10'000;  // the handler is killed after this long
  std::size_t max_output = 4096;      // bytes of stdout kept (JobResult.output holds 4096)
};

// Handler names the node answers itself; a [jobs.<name>] may not take them.
inline constexpr std::string_view kBuiltinJobs[] = {"read", "actuate"};

// What became of one job: the content of a JobResult.
struct JobOutcome {
  std::uint64_t job_id = 0;
  std::uint32_t attempt = 0;
  kairos_v1_JobStatus status = kairos_v1_JobStatus_JOB_ERROR;
  std::string output;
  std::string error;
  std::int32_t exit_code = 0;  // the exit status, or minus the signal that ended the handler
  std::uint32_t duration_ms = 0;
  bool truncated = false;      // stdout was longer than max_output
};

// The payload of the built-in `actuate`: "<output> <re> <im> <c> [hold_ms]",
// separated by spaces; it drives the output as set_output does.
struct ActuateRequest {
  std::string output;
  double re = 0, im = 0, c = 0;  // c in [0, 1]
  std::uint32_t hold_ms = 0;     // 0: 1000 ms, as set_output
};
// nullopt and error set when the payload does not read.
std::optional<ActuateRequest> parse_actuate(std::string_view payload, std::string& error);

// Text safe for a protobuf string and a log line: printable ASCII, control
// characters as spaces or '?', no trailing space.
std::string printable(std::string_view text);

// An outcome for job that ran nothing (a refusal, a built-in's answer).
JobOutcome job_outcome(const kairos_v1_Job& job, kairos_v1_JobStatus status, std::string error = {});
// The JobResult envelope of an outcome; the header is filled when it is signed.
EnvelopePtr result_envelope(const JobOutcome& outcome);

class JobRunner {
 public:
  // More than max_running jobs at once are refused ("busy").
  explicit JobRunner(std::size_t max_running = 4);
  ~JobRunner();  // kills and reaps what still runs
  JobRunner(const JobRunner&) = delete;
  JobRunner& operator=(const JobRunner&) = delete;

  // Starts handler on job at now_us (monotonic). nullopt: it runs and its
  // outcome comes from poll(). An outcome: it did not start (REFUSED: busy,
  // or the executable cannot be run).
  std::optional<JobOutcome> start(const JobConfig& handler, const kairos_v1_Job& job, std::int64_t now_us);
  // Collects output, kills (SIGKILL) the jobs past their time, reaps the
  // ones that ended: their outcomes. Never blocks.
  std::vector<JobOutcome> poll(std::int64_t now_us);
  // Kills and reaps every job still running (the node stops): their
  // outcomes, REFUSED "node stopping".
  std::vector<JobOutcome> stop(std::int64_t now_us);
  std::size_t running() const { return jobs_.size(); }

 private:
  struct Job;
  std::size_t max_running_;
  std::vector<std::unique_ptr<Job>> jobs_;
};

}  // namespace kairos::node

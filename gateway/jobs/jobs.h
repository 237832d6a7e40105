#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/core/bytes.h"
#include "common/core/crypto.h"
#include "kairos.pb.h"

namespace kairos::gw {

// Jobs (docs/DESIGN.md 5.5): routed to the capable nodes of lowest impedance, retried
// elsewhere with backoff, voted on by result hash when r > 1. Pure logic:
// time comes in as monotonic microseconds, the gateway does the I/O through
// the hooks.

enum class JobState { queued, running, done, failed };
const char* to_string(JobState s);
std::optional<JobState> parse_job_state(std::string_view s);

struct JobSpec {
  std::string handler;
  std::vector<std::string> needs;  // capabilities every candidate must have
  std::string to;                  // "", "class:<X>", "cluster:<c>" or a capability
  Bytes payload;
  std::uint32_t timeout_ms = 10'000;
  int redundancy = 1;  // r
  int retries = 3;     // copies sent again after a timeout or a refusal
  // A poll (kairosctl ask): the copies go to a random sample of the
  // candidates, every answer is kept, none is voted down.
  bool poll = false;
  // Conversational Ball text for a node: sent and answered, never written
  // to the database (the job row keeps no payload and no output).
  bool private_data = false;
  std::string asked_by{};  // the operator whose request made it; "" for the gateway's own (a Ball holder's)
};

// One copy of a job, sent to one node.
struct JobCopy {
  std::string node;
  std::uint32_t attempt = 0;
  std::int64_t deadline_us = 0;  // monotonic: no result by then is a timeout
  std::int64_t sent_wall_us = 0;  // gateway wall clock when it left
  bool answered = false;         // a result that counts in the vote (OK or ERROR)
  bool failed = false;           // timed out or refused: its slot went to another node
  kairos_v1_JobStatus status = kairos_v1_JobStatus_JOB_UNSPECIFIED;
  Bytes output;
  std::string error;
  int exit_code = 0;
  Digest hash{};  // of status, exit code and output: what the vote compares
  bool awaited() const { return !answered && !failed; }  // out, neither answered nor given up
};

struct Job {
  std::uint64_t id = 0;
  JobSpec spec;
  JobState state = JobState::queued;
  std::int64_t created_wall_us = 0;
  std::int64_t finished_wall_us = 0;
  std::vector<JobCopy> copies;  // this run's copies (a restart begins a new run)
  std::uint32_t next_attempt = 1;
  int retries_used = 0;
  int open_slots = 0;               // copies still to send
  std::int64_t not_before_us = 0;   // monotonic: backoff before the next send
  // The outcome.
  kairos_v1_JobStatus status = kairos_v1_JobStatus_JOB_UNSPECIFIED;
  Bytes output;
  int exit_code = 0;
  std::string error;
  std::vector<std::string> winners;
  std::vector<std::string> dissent;
  bool final() const { return state == JobState::done || state == JobState::failed; }
  // Copies still out.
  int awaited() const {
    return static_cast<int>(std::count_if(copies.begin(), copies.end(), [](const JobCopy& c) { return c.awaited(); }));
  }
};

struct JobCandidate {
  std::string id;
  double impedance = 0;
  double reliability = 0;
};

// What happened to a job, as logged (job_events).
struct JobEvent {
  std::uint64_t job = 0;
  std::string kind;  // created, sent, result, timeout, refused, retry, done, failed, late, resumed
  std::string node;
  std::uint32_t attempt = 0;
  std::string detail;
};

struct JobHooks {
  // Nodes that may take the job now: online, not quarantined, breaker
  // closed, capable. `any` asks whether a capable node exists at all
  // (breakers and liveness aside): no_capable_node otherwise.
  std::function<std::vector<JobCandidate>(const JobSpec&, bool any)> candidates;
  // Sends a copy; false when it could not leave (no key, link down).
  std::function<bool(const std::string& node, const Job& job, std::uint32_t attempt)> send;
  // The job changed: persist its row and the event (before anything about it is acknowledged).
  std::function<void(const Job&, const JobEvent&)> changed;
  // A node's copy succeeded or failed (reputation, circuit breakers).
  std::function<void(const std::string& node, bool good, const std::string& why)> outcome;
  // Nodes outvoted: a DATA_CONTRADICTION.
  std::function<void(const Job&, const std::vector<std::string>& dissent, const std::string& detail)> contradiction;
  // A node refused a handler it advertised: a CAPABILITY_MISMATCH.
  std::function<void(const std::string& node, const Job&, const std::string& detail)> incapable;
  std::function<void(const Job&)> finished;
};

struct JobCounts {
  std::uint64_t queued = 0, running = 0, done = 0, failed = 0;
  std::uint64_t retries = 0, contradictions = 0, late_results = 0, stray_results = 0;
};

struct JobLimits {
  std::int64_t backoff_us = 200'000;        // before the first retry; doubles with each
  std::int64_t backoff_max_us = 5'000'000;
  std::int64_t grace_us = 1'000'000;        // transit allowed on top of the job's timeout
  int per_node = 4;                         // copies in flight on one node
};

Digest result_hash(kairos_v1_JobStatus status, int exit_code, ByteView output);

class JobBook {
 public:
  explicit JobBook(JobHooks hooks, JobLimits limits = {});

  // A new job with this id; it is dispatched by the next service().
  const Job& submit(std::uint64_t id, JobSpec spec, std::int64_t now_us, std::int64_t now_wall_us);
  // A job read back after a gateway restart: copies in flight then are void
  // (their results went to a gateway that no longer exists); it runs again
  // from its next attempt number, with the retries it had left.
  void restore(Job job, std::int64_t now_us);
  void on_result(const std::string& node, const kairos_v1_JobResult& r, std::int64_t now_us, std::int64_t now_wall_us);
  // The node refused the command carrying the copy (a CONFLICT ack).
  void on_refused(const std::string& node, std::uint64_t job, std::uint32_t attempt, const std::string& why,
                  std::int64_t now_us, std::int64_t now_wall_us);
  // Timeouts, retries and sends that are due.
  void service(std::int64_t now_us, std::int64_t now_wall_us);
  std::int64_t next_deadline_us() const;
  const Job* find(std::uint64_t id) const;
  // The copy of job id sent to node as attempt, if this run sent it.
  const JobCopy* copy(std::uint64_t id, const std::string& node, std::uint32_t attempt) const;
  const std::map<std::uint64_t, Job>& jobs() const { return jobs_; }
  const JobCounts& counts() const { return counts_; }
  int in_flight(const std::string& node) const;
  // Forgets finished jobs beyond the newest keep (they stay in the database).
  void trim(std::size_t keep);

 private:
  void dispatch(Job& job, std::int64_t now_us, std::int64_t now_wall_us);
  void copy_failed(Job& job, JobCopy& copy, const std::string& kind, const std::string& why, std::int64_t now_us,
                   std::int64_t now_wall_us);
  void vote(Job& job, std::int64_t now_wall_us);
  void finish(Job& job, JobState state, const std::string& error, std::int64_t now_wall_us);
  void event(const Job& job, std::string kind, const std::string& node = "", std::uint32_t attempt = 0,
             std::string detail = "");
  void set_state(Job& job, JobState s);
  // The copy of job sent to node as attempt (const or not, as job is).
  template <class J>
  static auto copy_of(J& job, const std::string& node, std::uint32_t attempt) -> decltype(&job.copies[0]);
  void release(const std::string& node);
  void sort_candidates(std::vector<JobCandidate>& cands, std::size_t first) const;

  JobHooks hooks_;
  std::int64_t backoff_us_;
  std::int64_t backoff_max_us_;
  std::int64_t grace_us_;
  int max_per_node_;
  std::map<std::string, int> in_flight_;  // node -> copies out
  std::mt19937_64 rng_{std::random_device{}()};
  std::map<std::uint64_t, Job> jobs_;
  std::vector<std::uint64_t> active_;  // jobs not yet final, oldest first
  JobCounts counts_;
};

}  // namespace kairos::gw

#pragma once
// Jobs at the gateway (docs/DESIGN.md 5.5): the job book wired to the mesh.
// Candidates come from the registry (capable, online, behind a closed
// breaker, lowest impedance first), copies leave as signed job commands,
// outcomes feed reliability and the breakers, contradictions and refusals
// become conflicts, and every change is logged through the outbox before an
// answer about it leaves. It answers the delegate, jobs and ask verbs.
// Other modules submit jobs and hear of finished ones through a hook; the
// desk knows nothing of them.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "gateway/escalation/escalation.h"
#include "gateway/gateway_config.h"
#include "gateway/jobs/job_log.h"
#include "gateway/jobs/jobs.h"
#include "gateway/link/reply.h"
#include "gateway/registry/registry.h"
#include "gateway/store/outbox.h"

namespace kairos::gw {

// A job's view for the control RPC.
void fill_job(const Job& job, kairos_v1_JobInfo& o, bool with_output);

class JobDesk {
 public:
  struct Ports {
    SendCommand send;
    Answer answer;
    // The link is up and the registry has settled since the start: "no
    // capable node" would otherwise be a guess.
    std::function<bool()> ready;
    // A job ended (after the desk's own answers about it).
    std::function<void(const Job& job)> finished;
  };
  JobDesk(const GatewayConfig& config, Registry& registry, Escalation& escalation, Outbox& outbox, Ports ports);
  // The jobs that had not finished, from the database: none is lost, none completes twice.
  void restore();

  void delegate(const ReplyTo& to, std::uint64_t request_id, const kairos_v1_DelegateRequest& req);
  void jobs(const ReplyTo& to, std::uint64_t request_id, const kairos_v1_JobsRequest& req);
  // When the newest finished job finished (wall clock; 0: none): what a sector tells its root.
  std::int64_t newest_finished_us() { return store_.newest_finished_us(); }
  void ask(const ReplyTo& to, std::uint64_t request_id, const kairos_v1_AskRequest& req);
  // A job of another module (asked_by in the spec).
  const Job& submit(JobSpec spec);

  // Dispatch and timeouts, unless not ready or automation is halted.
  void service();
  // The ack of a job command: true when it was one.
  bool on_ack(const std::string& id, const kairos_v1_Ack& ack);
  void on_result(const std::string& id, const kairos_v1_JobResult& r);
  // A result as it came (env: its stamp; frame: the evidence): one stamped
  // before its job was sent, beyond what the node's clock estimate allows,
  // is a TEMPORAL_PARADOX and is not counted (the copy times out and goes elsewhere).
  void on_result(const std::string& id, const Envelope& env, ByteView frame);
  // Jobs beyond the in-memory limit and command copies never answered are forgotten.
  void tidy();
  std::int64_t next_deadline_us() const { return book_.next_deadline_us(); }
  const JobBook& book() const { return book_; }

 private:
  std::vector<JobCandidate> candidates(const JobSpec& spec, bool any) const;
  bool send(const std::string& node, const Job& job, std::uint32_t attempt);
  void outcome(const std::string& node, bool good);
  void finished(const Job& job);
  // Answered once what it reports is on disk.
  void defer(const ReplyTo& to, std::unique_ptr<kairos_v1_ControlResponse> resp);

  const GatewayConfig& config_;
  Registry& registry_;
  Escalation& escalation_;
  Outbox& outbox_;
  Ports ports_;
  JobBook book_;
  JobStore store_;
  JobLog log_{book_, store_};
  std::uint64_t next_id_ = 1;
  struct Waiter {
    ReplyTo to;
    std::uint64_t request_id;
  };
  std::multimap<std::uint64_t, Waiter> waiters_;  // job id -> delegate --wait callers
  std::map<std::uint64_t, Waiter> asks_;           // job id -> the ask to answer
  struct Copy {
    std::uint64_t job;
    std::uint32_t attempt;
    std::string node;
    std::int64_t sent_us;
  };
  std::map<std::uint64_t, Copy> commands_;  // command id -> the copy it carries
};

}  // namespace kairos::gw

#pragma once
// Commands to many nodes (docs/DESIGN.md 5.4, 5.8): the schedule verb (one
// command landing on every target at T, each sent ahead by its own lead),
// and broadcast, freeze and thaw (a command to every target at once, acks
// gathered). Each is judged against the mode first and answered when it
// ends; what the targets did feeds back into their impedance.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gateway/escalation/escalation.h"
#include "gateway/gateway_config.h"
#include "gateway/link/reply.h"
#include "gateway/registry/registry.h"
#include "gateway/schedule/scheduler.h"

namespace kairos::gw {

// The node ids a selector names: "all", "cluster:<c>" or "class:<X>" (the
// online ones), or a comma-separated list of ids (named nodes count even
// offline or unknown: they are skipped, and say why). Empty, with error
// set, when it names none or is malformed.
std::vector<std::string> select_targets(const Registry& registry, const std::string& selector, std::string& error);

class Schedules {
 public:
  enum class Verb { schedule, broadcast, freeze, thaw };
  struct Ports {
    SendCommand send;
    Answer answer;
    // Writes a snapshot of the mesh before a freeze acts (kind, scope, by): its id.
    std::function<std::uint64_t(const std::string& kind, const std::string& scope, const std::string& by)> snapshot;
    // A gathered schedule, broadcast, freeze or thaw ended (the KPIs); may be empty.
    std::function<void(Verb verb, const ScheduleResult& r)> ended;
  };
  Schedules(const GatewayConfig& config, Registry& registry, const Escalation& escalation, Ports ports);

  // schedule(command, targets, T): answered when it ends.
  void schedule(const ReplyTo& to, std::uint64_t request_id, const kairos_v1_ScheduleRequest& req);
  // broadcast, freeze and thaw: answered at once (gather false) or when the acks are in.
  void command(const ReplyTo& to, std::uint64_t request_id, Verb verb, const std::string& selector,
               const kairos_v1_Command& action, bool gather, std::uint32_t window_ms, bool confirm);
  // An ack of a command of ours: true when it was one (t4: its arrival, gateway wall clock).
  bool on_ack(const std::string& id, const kairos_v1_Ack& ack, std::int64_t t4) {
    return scheduler_.on_ack(id, ack.command_id, ack.state, ack.received_at_us, ack.executed_at_us, ack.detail, t4);
  }
  void service(std::int64_t wall_now_us) { scheduler_.service(wall_now_us); }
  // When service() next has something to do, on the wall clock; INT64_MAX if never.
  std::int64_t next_deadline_us() const { return scheduler_.next_deadline_us(); }
  // The last schedule's one-line summary (kairosctl status).
  const std::string& last_cascade() const { return last_cascade_; }

 private:
  struct Pending {
    ReplyTo to;
    std::uint64_t request_id = 0;
    kairos_v1_Command command;  // the action template
    Verb verb = Verb::schedule;
    std::uint64_t snapshot_id = 0;
  };
  std::optional<TargetView> target_view(const std::string& id) const;
  std::uint64_t send(const std::string& id, std::int64_t execute_at_us, std::uint32_t ttl_ms, std::uint64_t sched);
  void calibrate(const std::string& id, const TargetResult& t, double late_us);
  void finished(const ScheduleResult& r);
  void command_finished(const Pending& p, const ScheduleResult& r);

  Registry& registry_;
  const Escalation& escalation_;
  Ports ports_;
  Scheduler scheduler_;
  const double lead_quantile_;  // what share of a node's delays its lead covers
  std::map<std::uint64_t, Pending> pending_;  // schedule id -> the request to answer
  std::string last_cascade_;
};

}  // namespace kairos::gw

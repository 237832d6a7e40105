#pragma once
// The root's mesh-wide verbs (docs/DESIGN.md 5.9), over its sectors and
// never over nodes: `nodes` merges the sectors' pages; `schedule` is a
// cascade (the root picks T, one order per sector, each sector schedules
// its own nodes for T with its own impedance model and answers with its
// gathered outcome; the root applies the quorum rule over the sectors);
// `delegate` goes to the best capable sector, and to the next when one
// refuses it or its breaker is open (never after silence: the first may
// have taken it, and a job runs once).
#include <cstdint>
#include <string>

#include "gateway/gateway_config.h"
#include "gateway/hierarchy/fanout.h"
#include "gateway/hierarchy/sectors.h"
#include "gateway/link/reply.h"

namespace kairos::gw {

class RootDesk {
 public:
  RootDesk(const GatewayConfig& config, SectorBook& book, Fanout& fanout, Answer answer);

  void nodes(const ReplyTo& to, std::uint64_t request_id, const kairos_v1_NodesRequest& q, std::int64_t now_us);
  void schedule(const ReplyTo& to, std::uint64_t request_id, const kairos_v1_ScheduleRequest& q, std::int64_t now_us);
  void delegate(const ReplyTo& to, std::uint64_t request_id, const kairos_v1_DelegateRequest& q, std::int64_t now_us);
  // The last cascade's one-line outcome (kairosctl status).
  const std::string& last_cascade() const { return last_cascade_; }

 private:
  // A sector's wave of a cascade, in order (wave: one sector after the other).
  void cascade_step(std::shared_ptr<struct Cascade> c);
  void cascade_done(const std::shared_ptr<struct Cascade>& c);
  void delegate_to(std::shared_ptr<struct Delegation> d);

  const GatewayConfig& config_;
  SectorBook& book_;
  Fanout& fanout_;
  Answer answer_;
  std::string last_cascade_;
};

}  // namespace kairos::gw

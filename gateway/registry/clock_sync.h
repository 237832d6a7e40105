#pragma once
// Clock sync (docs/DESIGN.md 5.1): every online node is pinged from its own
// deadline, every ping period (the fast one while it has fewer than 8
// samples or is unstable). The ack's four stamps feed the node's clock
// filter, its reliability and its baseline impedance; an ack that does
// not come within the timeout counts against its reliability.
//
// Two budgets keep the pings from measuring their own queue: at most
// max_in_flight unanswered at once, and a rate that is a share of what
// the mesh reports (so ping traffic grows linearly with the mesh and
// stays a fixed fraction of its ingest), never below min_rate. Pings due
// beyond the budget wait, oldest deadline first: in a mass join every node
// gets its turn.
#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>

#include "gateway/registry/registry.h"
#include "kairos.pb.h"

namespace kairos::gw {

class ClockSync {
 public:
  struct Settings {
    std::int64_t period_us = 10'000'000;
    std::int64_t fast_period_us = 2'000'000;
    std::int64_t timeout_us = 5'000'000;
    std::size_t max_in_flight = 256;
    double share = 0.08;      // pings a second per frame a second accepted
    double min_rate = 1000;   // pings a second, whatever the ingest
  };
  // Sends a ping to n, stamping t1 (its send time on the wall clock, us);
  // the ping's command id, 0 when it could not be sent.
  using Send = std::function<std::uint64_t(const NodeEntry& n, std::int64_t& t1_wall_us)>;
  ClockSync(Registry& registry, Settings settings, Send send)
      : registry_(registry), settings_(settings), send_(std::move(send)) {}

  // Missed acks counted, then the pings due sent within the budgets.
  // now_us monotonic; accepted: frames accepted so far (the ingest rate's source).
  void service(std::int64_t now_us, bool connected, std::uint64_t accepted);
  // An ack from node id: true when it answered one of our pings (consumed).
  // t4: its arrival on the gateway's wall clock; now_us: the same on the monotonic one.
  bool on_ack(const std::string& id, const kairos_v1_Ack& ack, std::int64_t t4_wall_us, std::int64_t now_us);

  std::size_t in_flight() const { return pending_.size(); }
  double rate() const { return rate_; }  // the current budget, pings a second
  std::uint64_t sent() const { return sent_; }
  std::uint64_t missed() const { return missed_; }

 private:
  void budget(std::int64_t now_us, std::uint64_t accepted);
  struct Pending {
    std::string node;
    std::int64_t t1_wall_us;
    std::int64_t sent_mono_us;
  };
  Registry& registry_;
  const Settings settings_;
  Send send_;
  std::unordered_map<std::uint64_t, Pending> pending_;  // command id -> ping in flight
  std::int64_t oldest_check_us_ = 0;
  // The rate budget: credit in pings, refilled at rate_.
  double rate_ = 0;
  double credit_ = 0;
  std::int64_t last_us_ = 0;
  std::int64_t window_us_ = 0;       // start of the ingest measurement window
  std::uint64_t window_frames_ = 0;  // accepted at its start
  std::uint64_t sent_ = 0, missed_ = 0;
};

}  // namespace kairos::gw

#pragma once
// What a sector gateway tells its root (docs/DESIGN.md 5.9): a summary of
// each cluster and of the whole sector, published retained and signed with
// the sector's key every summary period, and sooner (at most once a second)
// when the online count, the mode or a breaker changed. Counts by state and
// class, impedance mean and p95 with the slowest and fastest node, clock
// quality, and the mesh sync's partial sums, from which the root computes
// the global Z, C and A exactly.
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "common/core/frame.h"
#include "gateway/escalation/breakers.h"
#include "gateway/gateway_config.h"
#include "gateway/registry/registry.h"

namespace kairos::gw {

// Counts and sums over a group of nodes, one node at a time.
class GroupTally {
 public:
  // now_us monotonic (the nodes' times), at_wall_us what the sums are stamped with.
  GroupTally(const RegistrySettings& settings, std::int64_t now_us, std::int64_t at_wall_us);
  void add(const NodeEntry& n);
  void add(const GroupTally& other);
  void fill(kairos_v1_GroupSummary& g, const std::string& name, const std::string& breaker) const;
  std::uint32_t known() const { return known_; }
  std::uint32_t online() const { return online_; }

 private:
  const RegistrySettings& settings_;
  std::int64_t now_us_;
  std::int64_t at_wall_us_;
  std::uint32_t known_ = 0, online_ = 0, synced_ = 0;
  std::uint32_t by_status_[7] = {};
  std::uint32_t by_class_[7] = {};
  std::vector<int> scores_;      // online nodes with clock samples
  std::vector<double> rtts_ms_;  // ... their minimum round trips
  std::set<std::string> capabilities_;  // of online nodes
  std::string slowest_, fastest_;
  int slowest_score_ = -1, fastest_score_ = 1 << 30;
  kairos_v1_PhaseSums sums_ = kairos_v1_PhaseSums_init_zero;
};

// What the sector's other modules add to its summary.
struct SectorFacts {
  kairos_v1_MeshMode mode = kairos_v1_MeshMode_FULL;
  std::uint32_t conflicts_open[5] = {};
  std::uint64_t jobs_queued = 0, jobs_running = 0;
  std::string last_cascade;
  std::uint64_t uptime_ms = 0;
  std::uint64_t conflict_high = 0;    // the newest conflict of priority 3 or more
  std::int64_t job_finished_us = 0;   // when the newest finished job finished
};

class SectorReporter {
 public:
  struct Ports {
    // Signs env with the sector's key and publishes it retained on topic.
    std::function<void(const std::string& topic, Envelope& env)> publish;
    std::function<SectorFacts()> facts;
  };
  SectorReporter(const GatewayConfig& config, const RegistrySettings& settings, const Registry& registry,
                 const Breakers& breakers, Ports ports);
  // Publishes the summaries when they are due.
  void service(std::int64_t now_us, bool connected);
  // The next summary is due at once (a reconnect: the root hears the sector now).
  void soon() { next_us_ = 0; }
  std::uint64_t published() const { return seq_; }

 private:
  void publish(std::int64_t now_us);
  // What a change of is told at once: online count, known count, mode, breakers open.
  std::string fingerprint(std::int64_t now_us) const;

  const GatewayConfig& config_;
  const RegistrySettings& settings_;
  const Registry& registry_;
  const Breakers& breakers_;
  Ports ports_;
  std::int64_t next_us_ = 0;
  std::int64_t next_look_us_ = 0;
  std::string last_fingerprint_;
  std::uint64_t seq_ = 0;
};

}  // namespace kairos::gw

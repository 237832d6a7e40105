#pragma once
#include <array>
#include <complex>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/core/bytes.h"
#include "common/core/impedance.h"
#include "common/core/meshsync.h"
#include "kairos.pb.h"

namespace kairos::gw {

struct NodeEntry {
  std::string id;
  std::string cluster;
  std::string board;
  std::string firmware;
  std::string capabilities;  // comma separated
  kairos_v1_DeviceClass device_class = kairos_v1_DeviceClass_CLASS_E;
  Bytes context_hash;
  std::uint64_t session = 0;
  bool online = false;
  kairos_v1_NodeStatus status = kairos_v1_NodeStatus_OFFLINE;
  std::int64_t hb_period_us = 5'000'000;
  std::int64_t last_seen_us = 0;  // monotonic, last accepted frame
  std::int64_t last_hb_us = 0;    // monotonic, last heartbeat (or birth)
  bool heard = false;             // a live (not retained) frame since gateway start
  std::complex<double> z{0, 0};
  double c = 0;
  bool phase_valid = false;
  std::int64_t phase_us = 0;      // monotonic, receipt of the last phase
  std::uint64_t historical_phases = 0;  // late phase reports (store and forward), not used for sync
  std::uint64_t events = 0;             // events logged
  // clock and impedance (docs/DESIGN.md 5.1, 5.2)
  ClockFilter clock;
  EwRate reliability;
  double processing_ms = -1;     // the node's measured processing time (heartbeats), -1 = unknown
  std::uint32_t queue_depth = 0;
  double baseline_score = 0;     // slow EMA of the node's own score
  bool quarantined = false;       // by the gateway (a CAT-1 breach seen here), until heal
  std::string quarantine_reason;
  double feedback_ms = 0;        // lead learned from late scheduled executions (docs/DESIGN.md 5.4 calibration)
  double calibration_ms() const { return clock.inbound_tail_us() / 1000.0 + feedback_ms; }
  std::int64_t next_ping_us = 0; // monotonic
  // Live frames of older sessions (monotonic times, the last minute): two
  // devices with one identity (docs/DESIGN.md 5.6).
  std::vector<std::int64_t> stale_frames_us;
  std::int64_t duplicate_alert_us = 0;
  Impedance impedance(std::int64_t now_us) const;
};

// The registry of docs/DESIGN.md 5.1: nodes from births, liveness from heartbeats and
// Wills. Pure logic; time comes in as monotonic microseconds.
class Registry {
 public:
  // A birth: creates or refreshes the node. Returns the entry.
  NodeEntry& on_birth(const std::string& id, const std::string& cluster, std::uint64_t session,
                      const kairos_v1_NodeBirth& birth, std::int64_t now_us, std::int64_t default_hb_us);
  // state online/offline of the node's current session. True if online changed.
  bool on_state(const std::string& id, bool online, std::int64_t now_us);
  // Returns false for an unknown node.
  bool on_heartbeat(const std::string& id, const kairos_v1_Heartbeat& hb, std::int64_t now_us);
  bool on_phase(const std::string& id, const kairos_v1_PhaseReport& phase, std::int64_t now_us);
  // Marks OFFLINE every online node whose last heartbeat is older than
  // missed * its period; returns their ids.
  std::vector<std::string> expire(std::int64_t now_us, int missed);
  // Restarts every online node's liveness clock at now: after the gateway's
  // own outage, missing heartbeats are not the nodes' fault.
  void grace(std::int64_t now_us);
  // Phases of online nodes weighted by class and age (docs/DESIGN.md 5.3).
  std::vector<NodePhase> sync_inputs(std::int64_t now_us, double stale_after_s,
                                     const std::array<double, 6>& class_weight) const;

  void restore(NodeEntry entry) { nodes_[entry.id] = std::move(entry); }
  const NodeEntry* find(const std::string& id) const;
  NodeEntry* find(const std::string& id);
  const std::map<std::string, NodeEntry>& nodes() const { return nodes_; }
  std::map<std::string, NodeEntry>& nodes_mut() { return nodes_; }
  std::size_t online_count() const;

 private:
  std::map<std::string, NodeEntry> nodes_;
};

}  // namespace kairos::gw

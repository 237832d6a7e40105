#pragma once
// What the gateway does when something goes wrong (docs/DESIGN.md 5.6):
// conflicts logged (append-only, throttled), alerts, quarantine, the
// duplicate-identity and context-divergence checks, the mesh's mode and
// what it refuses, and the circuit breakers. It reads the registry,
// writes through the outbox (a conflict is on disk before its alert
// leaves), and reaches the rest of the gateway through two hooks.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/core/crypto.h"
#include "common/core/frame.h"
#include "common/core/json.h"
#include "gateway/escalation/breakers.h"
#include "gateway/escalation/hook.h"
#include "gateway/gateway_config.h"
#include "gateway/registry/registry.h"
#include "gateway/store/outbox.h"

namespace kairos::gw {

// The mode for a share of active nodes (docs/DESIGN.md 5.6).
kairos_v1_MeshMode mode_for(double active_rate);
// The breakers' settings of the config's [breakers].
BreakerSettings breaker_settings(const GatewayConfig& config);
// The suggested resolution strategy of a conflict type.
std::string suggestion(const std::string& type);

class Escalation : public Writer {
 public:
  struct Ports {
    // Signs an alert for the operators' topic.
    std::function<Bytes(const std::string& topic, Envelope& env)> seal_alert;
    // Writes a snapshot of the registry and mesh state (kind, scope, by): its id.
    std::function<std::uint64_t(const std::string& kind, const std::string& scope, const std::string& by)> snapshot;
  };
  Escalation(const GatewayConfig& config, Registry& registry, Outbox& outbox, Ports ports);

  // Logs a conflict to the append-only log, at most one per node and type
  // every 10 s unless throttle is false; priority 3 and up alerts.
  void conflict(const std::string& type, int priority, const std::string& node, const std::string& detail,
                std::int64_t now_us, bool throttle = true);
  // Priority 3 alerts the sector, 4 the operator (and runs the hook);
  // published after the conflict is committed.
  void alert(const StoredConflict& c);
  // The signed alert of c for the operators' topic (alert_topic), counted:
  // alert() publishes it after the commit; an alert about the database
  // itself cannot wait for one and is sent at once.
  Bytes alert_frame(const StoredConflict& c);
  std::uint64_t alerts() const { return alerts_; }
  // A CAT-1 breach: no commands, no work, until an operator's heal.
  void quarantine(const std::string& id, const std::string& why);
  // The frame that proved something, kept in the quarantine store.
  void keep_data(const std::string& node, const std::string& reason, ByteView data);
  // Frames of an older session of a live node: DUPLICATE_IDENTITY when they keep coming.
  void duplicate_identity(const std::string& id, std::uint64_t stale_session, std::int64_t now_us);
  // CONTEXT_DIVERGENCE in the clusters that changed since the last look.
  void check_contexts();

  // Judges the mode from the share of active nodes (not before the
  // registry has settled after a start); true when it changed.
  bool judge(std::size_t online, std::size_t known, bool settled);
  kairos_v1_MeshMode mode() const { return mode_; }
  double active_rate() const { return active_rate_; }
  // Why the current mode refuses an operation, or "".
  std::string mode_refusal(bool mesh_wide, std::size_t targets, bool confirm) const;
  // Drops targets in clusters whose breaker is not closed (DEGRADED_MODERATE and SEVERE).
  void healthy_only(std::vector<std::string>& ids) const;
  // A confirmed request in EMERGENCY: job dispatch resumes until the mode changes.
  void confirmed_in_emergency();
  bool automation_halted() const { return mode_ == kairos_v1_MeshMode_EMERGENCY && !emergency_override_; }

  Breakers& breakers() { return breakers_; }
  const Breakers& breakers() const { return breakers_; }
  Hook& hook() { return hook_; }

  bool pending() const override { return !conflicts_.empty() || !quarantine_.empty(); }
  void write(Store& store) override;
  void written() override;

 private:
  struct AlertScope {
    std::string cluster, sector, suggested;
  };
  AlertScope scope_of(const StoredConflict& c) const;
  Bytes frame(const StoredConflict& c, const AlertScope& s);
  const GatewayConfig& config_;
  Registry& registry_;
  Outbox& outbox_;
  Ports ports_;
  Breakers breakers_;
  Hook hook_;
  std::uint64_t alerts_ = 0;
  std::map<std::string, std::int64_t> last_conflict_us_;  // "type/node" -> when last logged
  std::map<std::string, Digest> diverged_;                // node -> the divergent context hash already logged
  struct Quarantine {
    std::string node, action, reason;
    Bytes data;
    std::int64_t at_wall_us;
  };
  std::vector<StoredConflict> conflicts_;  // committed with the next outbox commit
  std::vector<Quarantine> quarantine_;
  kairos_v1_MeshMode mode_ = kairos_v1_MeshMode_FULL;
  double active_rate_ = 1.0;
  bool emergency_override_ = false;
};

// The body of a snapshot (docs/DESIGN.md 5.6), written before a freeze or
// an EMERGENCY acts: the mesh's figures and every node's state.
struct SnapshotHead {
  std::string kind, scope, gateway, by;
};
Json snapshot_json(const Registry& registry, const kairos_v1_MeshState& ms, const SnapshotHead& head, std::int64_t now_us);

}  // namespace kairos::gw

#pragma once
// Node frames in (docs/DESIGN.md 4, 5.1, 5.6): each opened under the key
// that signed it, checked against its topic and its session's order,
// counted and logged with its reason when dropped, then applied to the
// registry; events are kept, acks and job results handed on through ports.
// What must survive a restart (sessions and their high waters, nodes,
// events) is written once a second (flush).
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/core/frame.h"
#include "common/core/replay.h"
#include "common/io/log.h"
#include "common/io/mqtt.h"
#include "gateway/escalation/escalation.h"
#include "gateway/gateway_config.h"
#include "gateway/link/rotation.h"
#include "gateway/registry/registry.h"
#include "gateway/store/outbox.h"

namespace kairos::gw {

class Ingest {
 public:
  struct Ports {
    // An ack; t4: its arrival on the gateway's wall clock (us).
    std::function<void(const std::string& id, const kairos_v1_Ack& ack, std::int64_t t4)> ack;
    // A job result, in the envelope that carried it (its stamp) and the frame (evidence).
    std::function<void(const std::string& id, const Envelope& env, ByteView frame)> result;
    // The node's first frame under a new key: its rotation is complete.
    std::function<void(const std::string& id)> rotated;
    // A birth, state, heartbeat or phase report applied to a known node
    // (the bridges follow the node with it); may be empty.
    std::function<void(NodeEntry& n, TopicKind kind, const Envelope& env)> applied;
  };
  // Sessions and their high waters are restored from the store.
  Ingest(const GatewayConfig& config, KeyBook& keys, Registry& registry, Escalation& escalation, Outbox& outbox,
         Ports ports);

  // A frame on a node's topic t (parsed from m.topic, of this mesh).
  void node_frame(const Topic& t, const Inbound& m, std::int64_t now_us);
  // Counted under its reason and logged (rate limited).
  void drop(DropReason reason, const std::string& topic, const std::string& detail, std::int64_t now_us);
  // The link's inbound queue has dropped total messages since the start: the new ones count as queue_full.
  void link_dropped(std::uint64_t total, std::int64_t now_us);
  void count_accepted() { ++accepted_; }
  // The node's row is written at the next flush.
  void node_changed(const std::string& id) { dirty_nodes_.insert(id); }
  // A node forgotten (kairosctl forget): what ingest keeps of it goes, but
  // its session's high water, so that its old frames stay refused.
  void forget(const std::string& id);
  // Nodes, sessions and events changed since the last flush, in one
  // transaction: true when something was written.
  bool flush();

  const DropCounters& drops() const { return drops_; }
  std::uint64_t accepted() const { return accepted_; }
  log::Gate& wire_log() { return wire_log_; }

 private:
  // A live heartbeat's or phase report's one-way delay (receipt on the
  // gateway's wall clock minus its sending, through the node's clock
  // offset) into the node's sketch (docs/DESIGN.md 5.2).
  void one_way(NodeEntry& n, const Envelope& env, const Inbound& m);
  // The wall clock minus the monotonic one (us), read once a second (flush):
  // a frame's receipt on the wall clock without a clock read per frame.
  std::int64_t wall_minus_mono_us_ = 0;
  // Opened under whichever of the node's keys signed it; null when dropped
  // (counted and logged, a bad MAC handled as a breach).
  // What ingest finds once per node and keeps: its keys, its session and
  // replay window, its registry entry (none of them is ever removed), so
  // that a frame costs one lookup. Made when a node's frame first opens.
  struct Slot {
    NodeKeys* keys = nullptr;
    SessionGuard::Sender* session = nullptr;
    NodeEntry* node = nullptr;
  };
  struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  EnvelopePtr open(const Topic& t, const Inbound& m, NodeKeys*& keys, std::int64_t now_us);
  // The session's order; false when the frame goes no further.
  bool in_order(const Topic& t, const Inbound& m, const Envelope& env, Slot& slot, std::int64_t now_us);
  void apply(const Topic& t, const Inbound& m, const Envelope& env, NodeEntry* known, std::int64_t now_us);

  const GatewayConfig& config_;
  KeyBook& keys_;
  Registry& registry_;
  Escalation& escalation_;
  Outbox& outbox_;
  Ports ports_;
  SessionGuard guard_;
  std::unordered_map<std::string, Slot, NameHash, std::equal_to<>> slots_;  // node id -> what its frames need
  std::set<std::string> dirty_sessions_;
  std::set<std::string> dirty_nodes_;
  std::vector<StoredEvent> pending_events_;
  DropCounters drops_;
  log::Gate wire_log_{5.0, 20.0};  // every line a frame causes (docs/DESIGN.md 4)
  std::uint64_t accepted_ = 0;
  std::uint64_t queue_drops_seen_ = 0;
};

}  // namespace kairos::gw

#pragma once
#include <algorithm>
#include <array>
#include <complex>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/core/bytes.h"
#include "common/core/impedance.h"
#include "common/core/meshsync.h"
#include "common/core/sketch.h"
#include "gateway/registry/deadlines.h"
#include "gateway/registry/sync_waits.h"
#include "kairos.pb.h"

namespace kairos::gw {

// A node's place in the registry's table, given once when it is first heard.
using NodeIndex = std::uint32_t;

struct NodeEntry {
  std::string id;
  NodeIndex index = 0;  // its slot in the registry's table
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
  DelaySketch one_way;           // its frames' one-way delays (us), through the clock offset
  DelaySketch inbound;           // the gateway's frames' one-way delays to it (pings, scheduled commands)
  OneWayFloors floors;           // both directions' raw one-way times: the offset on a heavy tail
  // node clock - gateway clock at gateway wall time t_us: from the one-way
  // floors once both directions have enough frames, else the clock filter's.
  double offset_at_us(std::int64_t t_us) const {
    double o = 0;
    return floors.offset_at_us(t_us, clock.drift_ppm(), o) ? o : clock.offset_at_us(t_us);
  }
  // A frame of the gateway's reached the node: it left at sent_us (gateway
  // wall clock) and arrived at received_node_us (node clock). Its raw time
  // feeds the inbound floor, its delay through the offset the inbound sketch.
  void command_arrived(std::int64_t sent_us, std::int64_t received_node_us) {
    const auto raw = static_cast<double>(received_node_us - sent_us);
    floors.inbound(sent_us, raw);
    inbound.add(raw - offset_at_us(sent_us));
  }
  EwRate reliability;
  double processing_ms = -1;     // the node's measured processing time (heartbeats), -1 = unknown
  std::uint32_t queue_depth = 0;
  double audio_delay_ms = 0;     // its speaker's buffer (heartbeats): a start at T is handed over this much earlier
  double baseline_score = 0;     // slow EMA of the node's own score
  bool quarantined = false;       // by the gateway (a CAT-1 breach seen here), until heal
  std::string quarantine_reason;
  double feedback_ms = 0;        // lead learned from late scheduled executions (docs/DESIGN.md 5.4 calibration)
  double calibration_ms() const { return clock.inbound_tail_us() / 1000.0 + feedback_ms; }
  // The one-way delay toward the node at quantile q (us), from its
  // sketches: the inbound one once it holds kTailSamples, until then the
  // larger of both directions' (a link's tail shows both ways) once they
  // hold kFirstTailSamples between them; nullopt before.
  std::optional<double> delay_tail_us(double q) const;
  static constexpr std::uint32_t kTailSamples = 32;
  static constexpr std::uint32_t kFirstTailSamples = 16;
  std::int64_t next_ping_us = 0; // monotonic
  std::int64_t session_saved_us = 0;  // monotonic: the replay high water last marked for the database
  // The registry's own bookkeeping (registry.cpp): the pending liveness and
  // ping deadlines, and what the node adds to the mesh sums.
  std::int64_t liveness_slot_us = 0;
  std::int64_t ping_slot_us = 0;
  std::int64_t fill_slot_us = 0;  // the ping deadline while its clock filter fills
  bool in_sums = false;
  bool in_cluster = false;        // listed among its cluster's members
  double sum_weight = 0;          // class weight of the phase in the sums
  std::int64_t sum_phase_us = 0;  // its receipt time
  std::complex<double> sum_z{0, 0};
  double sum_c = 0;
  // Live frames of older sessions (monotonic times, the last minute): two
  // devices with one identity (docs/DESIGN.md 5.6).
  std::vector<std::int64_t> stale_frames_us;
  std::int64_t duplicate_alert_us = 0;
  std::int64_t down_since_us = 0;  // monotonic: went offline after being online here; 0 = not down
  std::uint32_t bridge_slot = 0;   // its record in the bridges (gateway/bridges), 0 = none
  // Its impedance now (docs/DESIGN.md 5.2), the lead covering quantile q of
  // its delays (q = 0: the lead without them, rtt/2 + 3 sd + calibration).
  Impedance impedance(std::int64_t now_us, double q = kDefaultLeadQuantile) const;
  static constexpr double kDefaultLeadQuantile = 0.999;
  // Its state as operators and the bridges show it: OFFLINE when offline,
  // QUARANTINED while the gateway holds it so, else what it reports.
  kairos_v1_NodeStatus shown_status() const {
    return !online ? kairos_v1_NodeStatus_OFFLINE : quarantined ? kairos_v1_NodeStatus_QUARANTINED : status;
  }
};

// The registry's nodes in id order (kairosctl's pages, and every walk that
// wants a stable order), as a view of its table: an item is the node's id
// and its entry.
class NodeTable {
 public:
  using Order = std::map<std::string_view, const NodeEntry*>;
  struct Item {
    const std::string& first;
    const NodeEntry& second;
  };
  class const_iterator {
   public:
    const_iterator() = default;
    explicit const_iterator(Order::const_iterator it) : it_(it) {}
    Item operator*() const { return {it_->second->id, *it_->second}; }
    struct Arrow {
      Item item;
      const Item* operator->() const { return &item; }
    };
    Arrow operator->() const { return {**this}; }
    const_iterator& operator++() {
      ++it_;
      return *this;
    }
    bool operator==(const const_iterator& o) const { return it_ == o.it_; }

   private:
    Order::const_iterator it_;
  };
  explicit NodeTable(const Order& order) : order_(&order) {}
  const_iterator begin() const { return const_iterator(order_->begin()); }
  const_iterator end() const { return const_iterator(order_->end()); }
  std::size_t size() const { return order_->size(); }
  bool empty() const { return order_->empty(); }
  const_iterator find(std::string_view id) const { return const_iterator(order_->find(id)); }
  const_iterator upper_bound(std::string_view id) const { return const_iterator(order_->upper_bound(id)); }

 private:
  const Order* order_;
};

// Settings of the registry (docs/DESIGN.md 5.1, 5.3).
struct RegistrySettings {
  int missed_heartbeats = 3;
  double stale_after_s = 15.0;
  std::array<double, 6> class_weight{1, 1, 1, 1, 1, 1};  // A..F
};

// The registry of docs/DESIGN.md 5.1: nodes from births, liveness from heartbeats and
// Wills. Pure logic; time comes in as monotonic microseconds. What it costs
// follows the frames, not the node count: a node's id is interned once, when
// it is first heard, into its index in a table (a vector of entries that
// never move), so a frame costs one hash of its id; liveness and pings come
// due from per-node deadlines, and the online count and the mesh sums are
// kept up to date on each change.
class Registry {
 public:
  explicit Registry(RegistrySettings settings = {});
  // A birth: creates or refreshes the node. Returns the entry.
  NodeEntry& on_birth(const std::string& id, const std::string& cluster, std::uint64_t session,
                      const kairos_v1_NodeBirth& birth, std::int64_t now_us, std::int64_t default_hb_us);
  // state online/offline of the node's current session. True if online changed.
  bool on_state(const std::string& id, bool online, std::int64_t now_us);
  bool on_state(NodeEntry& n, bool online, std::int64_t now_us);
  // Returns false for an unknown node.
  bool on_heartbeat(const std::string& id, const kairos_v1_Heartbeat& hb, std::int64_t now_us);
  void on_heartbeat(NodeEntry& n, const kairos_v1_Heartbeat& hb, std::int64_t now_us);
  bool on_phase(const std::string& id, const kairos_v1_PhaseReport& phase, std::int64_t now_us);
  void on_phase(NodeEntry& n, const kairos_v1_PhaseReport& phase, std::int64_t now_us);
  // Quarantine by the gateway, or lifted by heal.
  void set_quarantined(NodeEntry& n, bool quarantined, const std::string& reason);
  // A quarantine from the database: the node's, or, for a node not known yet
  // (its row was not written before a crash), held until it is heard.
  void restore_quarantine(const std::string& id, const std::string& reason);
  // Marks OFFLINE every online node whose last heartbeat is older than
  // missed_heartbeats periods; returns their ids. Visits only nodes whose
  // deadline has come.
  std::vector<std::string> expire(std::int64_t now_us);
  // Restarts every online node's liveness clock at now: after the gateway's
  // own outage, missing heartbeats are not the nodes' fault.
  void grace(std::int64_t now_us);
  // The next online node whose clock ping is due (next_ping_us), or nullptr;
  // after a ping, ping_at() sets its next one. Nodes whose clock filter
  // holds fewer than kSyncedSamples (new, or restarted at a level shift)
  // come first: in a mass join, the synced ones wait while the budget
  // fills the others. Quarantined nodes are skipped until healed, offline
  // ones until they are back.
  NodeEntry* ping_due(std::int64_t now_us);
  void ping_at(NodeEntry& n, std::int64_t at_us);
  // A clock sample was added to n's filter: a node that joined short of
  // kSyncedSamples and has them now ends its wait (sync_waits()).
  void clock_sampled(NodeEntry& n, std::int64_t now_us);
  // How long joining nodes took to be synced, and who still waits: online
  // nodes the gateway pings (not quarantined).
  SyncWaits::View sync_waits(std::int64_t now_us) const { return waits_.view(now_us); }
  // The earliest time a liveness or ping deadline may come due.
  std::int64_t next_deadline_us() const { return std::min({liveness_.next(), pings_.next(), fills_.next()}); }
  // The mesh figures (docs/DESIGN.md 5.3) from sums kept up to date on each
  // phase and state change: the age weight exp(-age/stale_after) is common
  // to all nodes up to a factor, which cancels.
  MeshFigures figures(std::int64_t now_us);
  // Phases of online nodes weighted by class and age, node by node (the
  // reference figures() is checked against).
  std::vector<NodePhase> sync_inputs(std::int64_t now_us) const;

  void restore(NodeEntry entry);
  // Removes an offline node (kairosctl forget): false when it is unknown or
  // online. Pointers to its entry are invalid afterwards.
  bool forget(const std::string& id);
  const NodeEntry* find(std::string_view id) const;
  NodeEntry* find(std::string_view id);
  // The node at an index find() gave (entry.index), or nullptr once forgotten.
  NodeEntry* at(NodeIndex index) { return index < table_.size() ? table_[index].get() : nullptr; }
  NodeTable nodes() const { return NodeTable(order_); }
  std::size_t online_count() const { return online_; }
  // Nodes back online after having gone offline while known here, and their time down in all (us).
  std::uint64_t recoveries() const { return recoveries_; }
  std::int64_t recovery_total_us() const { return recovery_total_us_; }
  // Clusters and their members, kept as births assign them.
  std::size_t cluster_count() const { return clusters_.size(); }
  const std::vector<NodeEntry*>& members(const std::string& cluster) const;
  const std::map<std::string, std::vector<NodeEntry*>>& clusters() const { return clusters_; }
  // Clusters whose members' online state or context hash changed since the
  // last call (the context check looks at these only).
  std::vector<std::string> take_context_changes();

 private:
  NodeEntry& entry(const std::string& id);
  void join(NodeEntry& n, const std::string& cluster);
  void set_online(NodeEntry& n, bool online, std::int64_t now_us);
  bool contributes(const NodeEntry& n) const;
  // Takes n's contribution out of the sums and puts its current one in.
  void resum(NodeEntry& n);
  void rebase(std::int64_t now_us);
  double anchor(std::int64_t phase_us) const;  // exp((phase_us - base)/stale_after)

  RegistrySettings settings_;
  // The table: entries by index; a forgotten node's slot is reused. The
  // views of ids below point into the entries' own id strings.
  std::vector<std::unique_ptr<NodeEntry>> table_;
  std::vector<NodeIndex> free_slots_;
  std::unordered_map<std::string_view, NodeIndex> index_;  // id -> index
  NodeTable::Order order_;                                  // id order: pages of kairosctl nodes
  std::map<std::string, std::string> held_quarantines_;  // restored for nodes not known yet: id -> reason
  std::map<std::string, std::vector<NodeEntry*>> clusters_;
  std::set<std::string> context_changes_;
  std::size_t online_ = 0;
  std::uint64_t recoveries_ = 0;
  std::int64_t recovery_total_us_ = 0;
  NodeDeadlines<NodeEntry> liveness_{&NodeEntry::liveness_slot_us};
  NodeDeadlines<NodeEntry> pings_{&NodeEntry::ping_slot_us};
  NodeDeadlines<NodeEntry> fills_{&NodeEntry::fill_slot_us};  // pings of nodes still filling their clock filter
  // Queues n's ping no later than at_us, among the filling or the synced.
  void queue_ping(NodeEntry& n, std::int64_t at_us);
  // Starts or ends n's wait for its samples as it comes online, leaves, or is quarantined or healed.
  void track_wait(NodeEntry& n, std::int64_t now_us);
  SyncWaits waits_;
  // sum over contributors of a_i, a_i z_i, a_i c_i, a_i |z_i|^2 with
  // a_i = class weight * exp((t_i - base)/stale_after)
  std::int64_t base_us_ = 0;
  bool based_ = false;
  std::size_t contributors_ = 0;
  double s_w_ = 0, s_c_ = 0, s_zz_ = 0;
  std::complex<double> s_z_{0, 0};
};

}  // namespace kairos::gw

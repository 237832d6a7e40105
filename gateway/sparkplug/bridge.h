#pragma once
// The Sparkplug B bridge (docs/SPARKPLUG.md): the gateway as one edge node,
// each Kairos node one of its devices, on an MQTT connection of its own
// whose Will is the NDEATH of that connection's bdSeq. NBIRTH and a DBIRTH
// per online node at each connect and on a host's rebirth request (NCMD);
// NDATA and DDATA of what changed, at most once per data_interval_s and
// within the message budget (the nodes that waited longest first); a
// DDATA marked historical at once for a phase report the node's backlog
// replayed; DDEATH when a node goes offline or is forgotten.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "common/io/mqtt.h"
#include "gateway/bridges/bridge_link.h"
#include "gateway/bridges/node_facts.h"
#include "gateway/gateway_config.h"
#include "gateway/registry/registry.h"
#include "gateway/sparkplug/edge.h"

namespace kairos::gw::sparkplug {

class Bridge {
 public:
  // next_bd_seq: the next bdSeq, kept across restarts (one per connect attempt).
  // wake: the loop's waker, called when the connection has news.
  Bridge(const GatewayConfig& config, const Registry& registry, NodeFactsBook& facts, MqttOptions options,
         std::function<std::uint64_t()> next_bd_seq, std::function<void()> wake);

  // A node's state, online or readings changed: DDATA (or DBIRTH, DDEATH) at a next turn;
  // described: its birth changed its metrics, a new DBIRTH.
  void changed(NodeFacts& f, std::uint32_t handle, bool described) {
    if (described) born_.erase(f.id);
    dirty_.add(f, handle);
  }
  // A phase report the node's backlog replayed, taken at sample_ms: a historical DDATA now.
  void historical(const NodeFacts& f, const std::vector<InputReading>& readings, std::uint64_t sample_ms);
  void forgotten(const std::string& id);
  void service(std::int64_t now_us, const kairos_v1_MeshState& mesh);
  // NDEATH, then disconnects.
  void close();

  std::uint64_t published() const { return published_; }
  bool connected() const { return up_; }
  std::uint64_t rebirths() const { return rebirths_; }

 private:
  Settings settings() const;
  static MqttOptions::Will will(const EdgeNode& e);  // its NDEATH
  void next_will();  // a new bdSeq, its NDEATH the Will of the next connect
  void births(const kairos_v1_MeshState& mesh);
  void publish(const std::optional<Publication>& p);
  DeviceState state_of(const NodeEntry& n, const NodeFacts& f) const;
  void on_ncmd(const Inbound& m, const kairos_v1_MeshState& mesh);

  const GatewayConfig& config_;
  const Registry& registry_;
  NodeFactsBook& facts_;
  std::function<std::uint64_t()> next_bd_seq_;
  std::unique_ptr<EdgeNode> edge_;
  std::unique_ptr<BridgeLink> link_;
  std::set<std::string> born_;  // devices with a DBIRTH on this connection
  HandleQueue dirty_{4};  // nodes with news: a DBIRTH, DDATA or DDEATH each
  std::int64_t next_data_us_ = 0;
  bool up_ = false;  // connected, as the events taken say
  std::uint64_t published_ = 0, rebirths_ = 0;
};

}  // namespace kairos::gw::sparkplug

#pragma once
// The Home Assistant bridge (docs/HOMEASSISTANT.md): on a connection of its
// own, whose Will says the gateway is offline, it keeps Home Assistant's
// retained discovery configs equal to the nodes the gateway knows (deleting
// those of nodes forgotten, and of inputs or outputs a node no longer has),
// publishes each node's and the mesh's JSON state at most once per
// state_interval_s and within its message budget (the nodes that waited
// longest first), each node's availability as it changes, and turns a
// number entity's command into a signed set_output (allow_commands only).
// Nodes stay signed-only: nothing here reaches them but through send.
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/io/mqtt.h"
#include "gateway/bridges/bridge_link.h"
#include "gateway/bridges/node_facts.h"
#include "gateway/gateway_config.h"
#include "gateway/homeassistant/discovery.h"
#include "gateway/link/reply.h"
#include "gateway/registry/registry.h"

namespace kairos::gw::ha {

class Bridge {
 public:
  struct Ports {
    SendCommand send;               // a set_output for a node, signed with its key
    std::function<bool()> settled;  // births re-read since the start: configs not wanted can go
    std::function<void()> wake;     // the loop's waker: the connection has news
  };
  // options: the broker connection (client id and Will are set here); wake: the loop's waker.
  Bridge(const GatewayConfig& config, const Registry& registry, NodeFactsBook& facts, MqttOptions options, Ports ports);

  // A node's state, online or readings changed: its JSON state at a next turn;
  // described: its birth changed what it shows (inputs, outputs, board, firmware), its configs too.
  void changed(NodeFacts& f, std::uint32_t handle, bool described) {
    if (described) described_.add(f, handle);
    dirty_.add(f, handle);
  }
  // A node forgotten (kairosctl forget): its configs deleted, its topics cleared.
  void forgotten(const NodeFacts& n);
  // Connects, takes commands and publishes what is due; the mesh's figures as they are now.
  void service(std::int64_t now_us, const kairos_v1_MeshState& mesh);
  // Says the gateway is offline and disconnects.
  void close();

  std::uint64_t commands() const { return commands_; }
  std::uint64_t refused() const { return refused_; }
  std::uint64_t published() const { return published_; }
  bool connected() const { return up_; }

 private:
  void on_connected();
  void on_message(const Inbound& m);
  void on_command(const Inbound& m);
  // Configs, deletions and availability at QoS 1; states at QoS 0.
  void publish(const std::string& topic, const std::string& payload, bool retained, int qos = 1);
  void publish_configs(const NodeFacts& n);
  void publish_node(const NodeFacts& f);
  // Deletes the configs found retained on the broker that nothing here would write.
  void sweep();

  const GatewayConfig& config_;
  const Registry& registry_;
  NodeFactsBook& facts_;
  Settings settings_;
  Ports ports_;
  std::unique_ptr<BridgeLink> link_;
  HandleQueue described_{1};  // configs to publish
  std::map<std::string, std::set<std::string>> configs_;  // per node, the config topics published
  HandleQueue dirty_{2};      // states to publish
  std::map<std::string, bool> availability_;  // what each node's availability topic says
  std::set<std::string> found_;               // retained configs of this mesh's devices seen on the broker
  // Configs the sweep kept for nodes known but not described since the start: deleted if they are forgotten.
  std::map<std::string, std::set<std::string>> kept_;
  bool swept_ = false;
  bool up_ = false;  // connected, as the events taken say
  std::int64_t connected_at_us_ = 0;
  std::string last_mesh_;
  std::int64_t next_state_us_ = 0;
  std::uint64_t commands_ = 0, refused_ = 0, published_ = 0;
};

}  // namespace kairos::gw::ha

#pragma once
// The Home Assistant bridge (docs/HOMEASSISTANT.md): on a connection of its
// own, whose Will says the gateway is offline, it keeps Home Assistant's
// retained discovery configs equal to the nodes the gateway knows (deleting
// those of nodes forgotten, and of inputs or outputs a node no longer has),
// publishes each node's and the mesh's JSON state at most once per
// state_interval_s, each node's availability as it changes, and turns a
// number entity's command into a signed set_output (allow_commands only).
// Nodes stay signed-only: nothing here reaches them but through send.
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/io/mqtt.h"
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
  };
  // options: the broker connection (client id and Will are set here); wake: the loop's waker.
  Bridge(const GatewayConfig& config, const Registry& registry, const NodeFactsBook& facts, MqttOptions options,
         Ports ports);

  // A node's birth changed what it shows (inputs, outputs, board, firmware): its configs again.
  void described(const std::string& id) { described_.insert(id); changed(id); }
  // A node's state, online or readings changed: its JSON state at the next interval.
  void changed(const std::string& id) { dirty_.insert(id); }
  // A node forgotten (kairosctl forget): its configs deleted, its topics cleared.
  void forgotten(const NodeFacts& n);
  // Connects, takes commands and publishes what is due; the mesh's figures as they are now.
  void service(std::int64_t now_us, const kairos_v1_MeshState& mesh);
  // Says the gateway is offline and disconnects.
  void close();

  std::uint64_t commands() const { return commands_; }
  std::uint64_t refused() const { return refused_; }
  std::uint64_t published() const { return published_; }
  bool connected() const { return link_->connected(); }

 private:
  void on_connected();
  void on_message(const Inbound& m);
  void on_command(const Inbound& m);
  void publish(const std::string& topic, const std::string& payload, bool retained);
  void publish_configs(const std::string& id);
  void publish_node(const std::string& id);
  // Deletes the configs found retained on the broker that nothing here would write.
  void sweep();

  const GatewayConfig& config_;
  const Registry& registry_;
  const NodeFactsBook& facts_;
  Settings settings_;
  Ports ports_;
  std::unique_ptr<MqttLink> link_;
  std::set<std::string> described_;
  std::map<std::string, std::set<std::string>> configs_;  // per node, the config topics published
  std::set<std::string> dirty_;
  std::map<std::string, bool> availability_;  // what each node's availability topic says
  std::set<std::string> found_;               // retained configs of this mesh's devices seen on the broker
  // Configs the sweep kept for nodes known but not described since the start: deleted if they are forgotten.
  std::map<std::string, std::set<std::string>> kept_;
  bool swept_ = false;
  std::int64_t connected_at_us_ = 0;
  std::string last_mesh_;
  std::int64_t next_state_us_ = 0;
  std::uint64_t commands_ = 0, refused_ = 0, published_ = 0;
};

}  // namespace kairos::gw::ha

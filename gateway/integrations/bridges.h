#pragma once
// The bridges to other systems, each off by default and on by its own config
// section: Home Assistant discovery ([homeassistant], docs/HOMEASSISTANT.md)
// and Sparkplug B ([sparkplug], docs/SPARKPLUG.md). Each runs on an MQTT
// connection of its own (its own Will, its own Paho thread), so that none
// of them stands in the way of the nodes' frames; what they show of a node
// comes from the registry and from the facts book ingest feeds.
#include <functional>
#include <memory>
#include <string>

#include "common/core/frame.h"
#include "common/core/topic.h"
#include "gateway/bridges/node_facts.h"
#include "gateway/gateway_config.h"
#include "gateway/homeassistant/bridge.h"
#include "gateway/link/reply.h"
#include "gateway/registry/registry.h"
#include "gateway/sparkplug/bridge.h"
#include "gateway/store/store.h"

namespace kairos::gw {

class Bridges {
 public:
  struct Ports {
    SendCommand send;               // a command to a node (Home Assistant's number entities)
    std::function<bool()> settled;  // births re-read since the start
    std::function<void()> wake;     // the loop's waker: the bridges' connections have news
  };
  Bridges(const GatewayConfig& config, const Registry& registry, Store& store, Ports ports);
  ~Bridges();
  bool any() const { return ha_ || sparkplug_; }
  std::uint64_t published() const {
    return (ha_ ? ha_->published() : 0) + (sparkplug_ ? sparkplug_->published() : 0);
  }
  bool connected() const { return (!ha_ || ha_->connected()) && (!sparkplug_ || sparkplug_->connected()); }

  // A node's frame applied by ingest (birth, state, heartbeat, phase); a
  // birth sets the node's handle here (NodeEntry::bridge_slot).
  void applied(NodeEntry& n, TopicKind kind, const Envelope& env);
  // A node the registry marked OFFLINE (its heartbeats missed).
  void offline(const std::string& id);
  // A node forgotten (kairosctl forget), before the registry lets it go.
  void forgotten(const std::string& id);
  void service(std::int64_t now_us, const kairos_v1_MeshState& mesh);
  // Each says it is going (availability offline, NDEATH) and disconnects.
  void close();

  const ha::Bridge* homeassistant() const { return ha_.get(); }
  const sparkplug::Bridge* sparkplug() const { return sparkplug_.get(); }

 private:
  const GatewayConfig& config_;
  const Registry& registry_;
  NodeFactsBook facts_;
  std::unique_ptr<ha::Bridge> ha_;
  std::unique_ptr<sparkplug::Bridge> sparkplug_;
};

}  // namespace kairos::gw

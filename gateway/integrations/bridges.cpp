#include "gateway/integrations/bridges.h"

#include <algorithm>

#include "common/io/mqtt.h"

namespace kairos::gw {

Bridges::Bridges(const GatewayConfig& config, const Registry& registry, Store& store, Ports ports)
    : config_(config), registry_(registry) {
  auto options = [&] {
    auto o = mqtt_options(config.broker, config.mesh + "-gw-" + config.id);
    o.will.reset();
    return o;
  };
  if (config.homeassistant.enabled)
    ha_ = std::make_unique<ha::Bridge>(config, registry, facts_, options(),
                                       ha::Bridge::Ports{ports.send, ports.settled, ports.wake});
  if (config.sparkplug.enabled)
    sparkplug_ = std::make_unique<sparkplug::Bridge>(config, registry, facts_, options(), [s = &store] {
      return s->next_count("sparkplug_bd_seq");  // one per connect, across restarts
    }, ports.wake);
}

Bridges::~Bridges() = default;

void Bridges::applied(NodeEntry& n, TopicKind kind, const Envelope& env) {
  bool described = false;
  switch (kind) {
    case TopicKind::birth:
      n.bridge_slot = facts_.on_birth(n.id, env.message.birth.cluster, env.message.birth, described);
      break;
    case TopicKind::phase:
      if (env.historical) {  // history, not the node's present
        if (const NodeFacts* f = facts_.at(n.bridge_slot); f && sparkplug_)
          sparkplug_->historical(*f, facts_.readings_of(n.bridge_slot, env.message.phase),
                                 static_cast<std::uint64_t>(std::max<std::int64_t>(0, env.sent_at_us / 1000)));
        return;
      }
      facts_.on_phase(n.bridge_slot, env.message.phase);
      break;
    case TopicKind::hb:
    case TopicKind::state: break;
    default: return;
  }
  NodeFacts* f = facts_.at(n.bridge_slot);
  if (!f) return;  // not described since the start: nothing to show it under yet
  if (ha_) ha_->changed(*f, n.bridge_slot, described);
  if (sparkplug_) sparkplug_->changed(*f, n.bridge_slot, described);
}

void Bridges::offline(const std::string& id) {
  const std::uint32_t h = facts_.handle(id);
  NodeFacts* f = facts_.at(h);
  if (!f) return;
  if (ha_) ha_->changed(*f, h, false);
  if (sparkplug_) sparkplug_->changed(*f, h, false);
}

void Bridges::forgotten(const std::string& id) {
  const NodeFacts* f = facts_.find(id);
  NodeFacts known;
  if (f) known = *f;
  else known.id = id;  // not described since the start: its configs are found by the sweep of a restart
  if (ha_) ha_->forgotten(known);
  if (sparkplug_) sparkplug_->forgotten(id);
  facts_.forget(id);
}

void Bridges::service(std::int64_t now_us, const kairos_v1_MeshState& mesh) {
  if (ha_) ha_->service(now_us, mesh);
  if (sparkplug_) sparkplug_->service(now_us, mesh);
}

void Bridges::close() {
  if (ha_) ha_->close();
  if (sparkplug_) sparkplug_->close();
}

}  // namespace kairos::gw

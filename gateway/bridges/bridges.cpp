#include "gateway/bridges/bridges.h"

#include <algorithm>

#include "common/io/mqtt.h"

namespace kairos::gw {

Bridges::Bridges(const GatewayConfig& config, const Registry& registry, Store& store, Ports ports)
    : config_(config), registry_(registry) {
  auto options = [&] {
    auto o = mqtt_options(config.broker, config.mesh + "-gw-" + config.id);
    o.on_event = ports.wake;
    o.will.reset();
    return o;
  };
  if (config.homeassistant.enabled)
    ha_ = std::make_unique<ha::Bridge>(config, registry, facts_, options(), ha::Bridge::Ports{ports.send, ports.settled});
  if (config.sparkplug.enabled)
    sparkplug_ = std::make_unique<sparkplug::Bridge>(config, registry, facts_, options(), [s = &store] {
      return s->next_count("sparkplug_bd_seq");  // one per connect, across restarts
    });
}

Bridges::~Bridges() = default;

void Bridges::applied(const std::string& id, TopicKind kind, const Envelope& env) {
  if (!any()) return;
  bool described = false;
  switch (kind) {
    case TopicKind::birth: described = facts_.on_birth(id, env.message.birth.cluster, env.message.birth); break;
    case TopicKind::phase:
      if (env.historical) {  // history, not the node's present
        if (sparkplug_)
          sparkplug_->historical(id, facts_.readings_of(id, env.message.phase),
                                 static_cast<std::uint64_t>(std::max<std::int64_t>(0, env.sent_at_us / 1000)));
        return;
      }
      facts_.on_phase(id, env.message.phase);
      break;
    case TopicKind::hb:
    case TopicKind::state: break;
    default: return;
  }
  if (ha_) {
    if (described) ha_->described(id);
    else ha_->changed(id);
  }
  if (sparkplug_) {
    if (described) sparkplug_->described(id);
    else sparkplug_->changed(id);
  }
}

void Bridges::offline(const std::string& id) {
  if (ha_) ha_->changed(id);
  if (sparkplug_) sparkplug_->changed(id);
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

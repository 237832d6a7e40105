#include "gateway/sparkplug/bridge.h"

#include <cmath>

#include "common/core/frame.h"
#include "common/core/utf8.h"
#include "common/io/clock.h"
#include "common/io/log.h"

namespace kairos::gw::sparkplug {

namespace {

std::uint64_t now_ms() { return static_cast<std::uint64_t>(wall_us() / 1000); }

MeshState mesh_of(const kairos_v1_MeshState& m) {
  MeshState s;
  s.phase_deg = std::fmod(std::atan2(m.z.im, m.z.re) * 180.0 / M_PI + 360.0, 360.0);
  s.coherence = m.coherence;
  s.agreement = m.agreement;
  s.unified = m.unified;
  s.mode = std::string(kairos::to_string(m.mode));
  s.online = m.nodes_online;
  s.known = m.nodes_known;
  return s;
}

log::Gate ncmd_log{1.0, 5.0};

}  // namespace

Bridge::Bridge(const GatewayConfig& config, const Registry& registry, const NodeFactsBook& facts, MqttOptions options,
               std::function<std::uint64_t()> next_bd_seq)
    : config_(config), registry_(registry), facts_(facts), next_bd_seq_(std::move(next_bd_seq)) {
  options.client_id += "-spb";
  link_ = std::make_unique<MqttLink>(std::move(options));
  arm();
  link_->add_subscription(edge_->ncmd_topic(), 1);
}

void Bridge::arm() {
  const auto bd = static_cast<std::uint8_t>(next_bd_seq_() % 256);
  edge_ = std::make_unique<EdgeNode>(Settings{config_.sparkplug.group_id, config_.id}, bd);
  const auto death = edge_->death();
  link_->set_will({death.topic, death.payload, death.qos, death.retained});
  born_.clear();
}

void Bridge::publish(const std::optional<Publication>& p) {
  if (!p) return;
  ++published_;
  link_->publish(p->topic, p->payload, p->qos, p->retained);
}

DeviceState Bridge::state_of(const NodeEntry& n, const NodeFacts& f) const {
  DeviceState s;
  const auto status = !n.online ? kairos_v1_NodeStatus_OFFLINE
                      : n.quarantined ? kairos_v1_NodeStatus_QUARANTINED
                                      : n.status;
  s.status = std::string(kairos::to_string(status));
  s.inputs = f.readings;
  s.impedance = static_cast<double>(n.impedance(mono_us()).score);
  s.reliability = n.reliability.value();
  return s;
}

void Bridge::births(const kairos_v1_MeshState& mesh) {
  born_.clear();
  publish(edge_->birth(mesh_of(mesh), now_ms()));
  for (const auto& [id, f] : facts_.nodes()) {
    const NodeEntry* n = registry_.find(id);
    if (!n || !n->online) continue;
    if (auto p = edge_->device_birth(f, state_of(*n, f), now_ms())) {
      publish(p);
      born_.insert(id);
    } else if (auto why = EdgeNode::refusal(f); !why.empty()) {
      log::warn("sparkplug", "node " + id + " is not published as a device: " + why);
    }
  }
  dirty_.clear();
}

void Bridge::described(const std::string& id) {
  born_.erase(id);  // its next turn is a DBIRTH with its new metrics
  dirty_.insert(id);
}

void Bridge::historical(const std::string& id, const std::vector<InputReading>& readings, std::uint64_t sample_ms) {
  if (!link_->connected() || !born_.count(id)) return;
  const NodeFacts* f = facts_.find(id);
  const NodeEntry* n = registry_.find(id);
  if (!f || !n) return;
  DeviceState s = state_of(*n, *f);
  s.inputs = readings;
  publish(edge_->device_data(id, s, now_ms(), true, sample_ms));
}

void Bridge::forgotten(const std::string& id) {
  if (born_.erase(id) && link_->connected()) publish(edge_->device_death(id, now_ms()));
  dirty_.erase(id);
}

void Bridge::on_ncmd(const Inbound& m, const kairos_v1_MeshState& mesh) {
  const Command c = EdgeNode::parse_ncmd(m.payload);
  if (!c.error.empty()) {
    ncmd_log.write(log::Level::warn, "sparkplug", "NCMD refused: " + c.error, mono_us());
    return;
  }
  if (!c.rebirth) return;
  ++rebirths_;
  log::info("sparkplug", "rebirth asked by a host (NCMD Node Control/Rebirth): NBIRTH and every DBIRTH again");
  births(mesh);
}

void Bridge::service(std::int64_t now_us, const kairos_v1_MeshState& mesh) {
  link_->service(now_us);
  for (auto& ev : link_->wait(0)) {
    switch (ev.type) {
      case LinkEvent::Type::connected: births(mesh); break;
      case LinkEvent::Type::message:
        if (ev.msg.topic == edge_->ncmd_topic() && !ev.msg.retained) on_ncmd(ev.msg, mesh);
        break;
      default:
        log::warn("sparkplug", "broker: " + describe(ev, origin_of(config_.broker, config_.path)) + "; retrying");
        arm();  // every connect carries a new bdSeq
        break;
    }
  }
  if (!link_->connected() || now_us < next_data_us_) return;
  next_data_us_ = now_us + static_cast<std::int64_t>(config_.sparkplug.data_interval_s * 1e6);
  for (const auto& id : dirty_) {
    const NodeFacts* f = facts_.find(id);
    const NodeEntry* n = registry_.find(id);
    if (!f || !n) continue;
    if (!n->online) {
      if (born_.erase(id)) publish(edge_->device_death(id, now_ms()));
    } else if (!born_.count(id)) {
      if (auto p = edge_->device_birth(*f, state_of(*n, *f), now_ms())) {
        publish(p);
        born_.insert(id);
      }
    } else {
      publish(edge_->device_data(id, state_of(*n, *f), now_ms(), false, now_ms()));
    }
  }
  dirty_.clear();
  publish(edge_->node_data(mesh_of(mesh), now_ms()));
}

void Bridge::close() {
  const auto death = edge_->death();
  link_->close(death.topic, death.payload, 2000);
}

}  // namespace kairos::gw::sparkplug

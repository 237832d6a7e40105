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
  s.phase_deg = phase_degrees(m.z.re, m.z.im);
  s.coherence = m.coherence;
  s.agreement = m.agreement;
  s.unified = m.unified;
  s.mode = std::string(kairos::to_string(m.mode));
  s.online = m.nodes_online;
  s.known = m.nodes_known;
  return s;
}

log::Gate ncmd_log{1.0, 5.0};
log::Gate refusal_log{1.0, 5.0};

}  // namespace

Bridge::Bridge(const GatewayConfig& config, const Registry& registry, NodeFactsBook& facts, MqttOptions options,
               std::function<std::uint64_t()> next_bd_seq, std::function<void()> wake)
    : config_(config), registry_(registry), facts_(facts), next_bd_seq_(std::move(next_bd_seq)) {
  options.client_id += "-spb";
  const auto bd = static_cast<std::uint8_t>(next_bd_seq_() % 256);
  edge_ = std::make_unique<EdgeNode>(settings(), bd);
  options.will = will(*edge_);
  link_ = std::make_unique<BridgeLink>(std::move(options), std::vector<std::pair<std::string, int>>{{edge_->ncmd_topic(), 1}},
                                       std::move(wake), bd);
  next_will();
}

Settings Bridge::settings() const { return Settings{config_.sparkplug.group_id, config_.id}; }

MqttOptions::Will Bridge::will(const EdgeNode& e) {
  const auto death = e.death();
  return {death.topic, death.payload, death.qos, death.retained};
}

void Bridge::next_will() {
  // Every connect carries a new bdSeq: the link's thread swaps this Will in when the connection is lost.
  const auto bd = static_cast<std::uint8_t>(next_bd_seq_() % 256);
  link_->set_next_will(will(EdgeNode(settings(), bd)), bd);
}

void Bridge::publish(const std::optional<Publication>& p) {
  if (!p) return;
  ++published_;
  link_->publish({p->topic, p->payload, p->qos, p->retained});
}

DeviceState Bridge::state_of(const NodeEntry& n, const NodeFacts& f) const {
  DeviceState s;
  s.status = std::string(kairos::to_string(n.shown_status()));
  s.inputs = f.readings;
  s.impedance = static_cast<double>(n.impedance(mono_us()).score);
  s.reliability = n.reliability.value();
  return s;
}

void Bridge::births(const kairos_v1_MeshState& mesh) {
  born_.clear();
  dirty_.clear(facts_);
  publish(edge_->birth(mesh_of(mesh), now_ms()));
  // Each online node's DBIRTH follows, within the budget, before any DDATA of it.
  facts_.each([&](std::uint32_t h, const NodeFacts& f) {
    const NodeEntry* n = registry_.find(f.id);
    if (n && n->online) dirty_.add(*facts_.at(h), h);
  });
  next_data_us_ = 0;
}

void Bridge::historical(const NodeFacts& f, const std::vector<InputReading>& readings, std::uint64_t sample_ms) {
  if (!up_ || !born_.count(f.id)) return;
  const NodeEntry* n = registry_.find(f.id);
  if (!n) return;
  DeviceState s = state_of(*n, f);
  s.inputs = readings;
  publish(edge_->device_data(f.id, s, now_ms(), true, sample_ms));
}

void Bridge::forgotten(const std::string& id) {
  // Its queued turn is skipped: the book forgets it next.
  if (born_.erase(id) && up_) publish(edge_->device_death(id, now_ms()));
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
  for (auto& ev : link_->take()) {
    switch (ev.type) {
      case LinkEvent::Type::connected:
        // The session of the Will this connection holds.
        if (link_->will_tag() != edge_->bd_seq())
          edge_ = std::make_unique<EdgeNode>(settings(), static_cast<std::uint8_t>(link_->will_tag()));
        up_ = true;
        births(mesh);
        // The next connect's bdSeq, once the one queued has been taken (one more per connect, none skipped).
        if (!link_->has_next_will()) next_will();
        break;
      case LinkEvent::Type::message:
        if (ev.msg.topic == edge_->ncmd_topic() && !ev.msg.retained) on_ncmd(ev.msg, mesh);
        break;
      default:
        log::warn("sparkplug", "broker: " + describe(ev, origin_of(config_.broker, config_.path)) + "; retrying");
        up_ = false;
        born_.clear();
        break;
    }
  }
  // Up from the connect taken on: nothing goes out before that session's NBIRTH.
  if (!up_ || now_us < next_data_us_) return;
  const double interval_s = config_.sparkplug.data_interval_s;
  next_data_us_ = now_us + static_cast<std::int64_t>(interval_s * 1e6);
  publish(edge_->node_data(mesh_of(mesh), now_ms()));
  const std::uint64_t budget = published_ + static_cast<std::uint64_t>(config_.sparkplug.max_messages_per_s * interval_s);
  while (published_ < budget) {
    const NodeFacts* f = dirty_.pop(facts_);
    if (!f) break;
    const std::string& id = f->id;
    const NodeEntry* n = registry_.find(id);
    if (!n) continue;
    if (!n->online) {
      if (born_.erase(id)) publish(edge_->device_death(id, now_ms()));
    } else if (!born_.count(id)) {
      if (auto p = edge_->device_birth(*f, state_of(*n, *f), now_ms())) {
        publish(p);
        born_.insert(id);
      } else if (auto why = EdgeNode::refusal(*f); !why.empty()) {
        refusal_log.write(log::Level::warn, "sparkplug", "node " + id + " is not published as a device: " + why,
                          mono_us());
      }
    } else {
      publish(edge_->device_data(id, state_of(*n, *f), now_ms(), false, now_ms()));
    }
  }
}

void Bridge::close() {
  const auto death = edge_->death();  // NDEATH is never retained
  link_->close({death.topic, death.payload, 1, false}, 2000);
}

}  // namespace kairos::gw::sparkplug

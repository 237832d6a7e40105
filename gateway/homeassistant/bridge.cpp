#include "gateway/homeassistant/bridge.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "common/core/lists.h"
#include "common/core/frame.h"
#include "common/core/utf8.h"
#include "common/io/clock.h"
#include "common/io/log.h"

namespace kairos::gw::ha {

namespace {

Bytes bytes(const std::string& s) { return Bytes(s.begin(), s.end()); }

// A number entity's command: a decimal in [0, 1], nothing else.
bool parse_level(const Bytes& payload, double& out) {
  if (payload.empty() || payload.size() > 32) return false;
  const std::string text(payload.begin(), payload.end());
  char* end = nullptr;
  out = std::strtod(text.c_str(), &end);
  while (end && (*end == ' ' || *end == '\n' || *end == '\r')) ++end;
  return end && *end == '\0' && end != text.c_str() && std::isfinite(out) && out >= 0.0 && out <= 1.0;
}

log::Gate command_log{5.0, 20.0};

}  // namespace

Bridge::Bridge(const GatewayConfig& config, const Registry& registry, NodeFactsBook& facts, MqttOptions options,
               Ports ports)
    : config_(config), registry_(registry), facts_(facts), ports_(std::move(ports)) {
  settings_.discovery_prefix = config.homeassistant.discovery_prefix;
  settings_.state_prefix = config.homeassistant.state_prefix;
  settings_.mesh = config.mesh;
  settings_.gateway = config.id;
  settings_.allow_commands = config.homeassistant.allow_commands;
  options.client_id += "-ha";
  // The gateway's availability: offline when this connection is lost.
  options.will = MqttOptions::Will{gateway_availability_topic(settings_), bytes("offline"), 1, true};
  // Home Assistant's configs can be larger than the mesh's frames; a stray huge one is cut and ignored.
  std::vector<std::pair<std::string, int>> subscriptions{
      {settings_.discovery_prefix + "/+/+/+/config", 1}};  // what is retained there, to sweep
  if (settings_.allow_commands) subscriptions.emplace_back(settings_.state_prefix + "/node/+/output/+/set", 1);
  link_ = std::make_unique<BridgeLink>(std::move(options), subscriptions, ports_.wake);
}

void Bridge::publish(const std::string& topic, const std::string& payload, bool retained, int qos) {
  ++published_;
  link_->publish({topic, bytes(payload), qos, retained});
}

void Bridge::on_connected() {
  publish(gateway_availability_topic(settings_), "online", true);
  for (const auto& p : mesh_configs(settings_)) publish(p.topic, p.payload, true);
  last_mesh_.clear();
  availability_.clear();
  found_.clear();
  swept_ = false;
  connected_at_us_ = mono_us();
  described_.clear(facts_);
  dirty_.clear(facts_);
  facts_.each([&](std::uint32_t h, const NodeFacts&) { changed(*facts_.at(h), h, true); });
  next_state_us_ = 0;
}

void Bridge::publish_configs(const NodeFacts& n) {
  const std::string& id = n.id;
  std::set<std::string> now;
  for (const auto& p : node_configs(settings_, n)) {
    publish(p.topic, p.payload, true);
    now.insert(p.topic);
  }
  // An input or output the node no longer has: its entity goes.
  for (const auto& before : configs_[id])
    if (!now.count(before)) publish(before, "", true);
  configs_[id] = std::move(now);
}

void Bridge::publish_node(const NodeFacts& f) {
  const std::string& id = f.id;
  const NodeEntry* n = registry_.find(id);
  if (!n) return;
  const bool online = n->online;
  auto [it, fresh] = availability_.try_emplace(id, !online);
  if (fresh || it->second != online) {
    it->second = online;
    publish(node_availability_topic(settings_, id), online ? "online" : "offline", true);
  }
  // QoS 0: the next state replaces it, and the broker keeps the last retained whatever its QoS.
  publish(node_state_topic(settings_, id), node_state(f, std::string(kairos::to_string(n->shown_status())), online), true,
          0);
}

void Bridge::forgotten(const NodeFacts& n) {
  for (const auto& p : node_removal(settings_, n)) publish(p.topic, "", true);
  for (const auto& topic : configs_[n.id]) publish(topic, "", true);
  for (const auto& topic : kept_[n.id]) publish(topic, "", true);
  configs_.erase(n.id);
  kept_.erase(n.id);
  publish(node_state_topic(settings_, n.id), "", true);
  publish(node_availability_topic(settings_, n.id), "", true);
  availability_.erase(n.id);  // its queued turns are skipped: the book forgets it next
}

void Bridge::sweep() {
  swept_ = true;
  std::set<std::string> wanted;
  for (const auto& p : mesh_configs(settings_)) wanted.insert(p.topic);
  facts_.each([&](std::uint32_t, const NodeFacts& n) {  // published or still queued
    for (const auto& p : node_configs(settings_, n)) wanted.insert(p.topic);
  });
  std::size_t deleted = 0;
  for (const auto& topic : found_) {
    if (wanted.count(topic)) continue;
    auto ct = parse_config_topic(settings_, topic);
    if (!ct) continue;
    // A node the gateway knows but has not heard describe itself since the start: kept.
    if (registry_.find(ct->node) && !facts_.find(ct->node)) {
      kept_[ct->node].insert(topic);
      continue;
    }
    if (ct->node == "gateway_" + settings_.gateway) {
      // The mesh device's: only an entity it no longer has.
    } else if (ct->node.rfind("gateway_", 0) == 0 && !registry_.find(ct->node)) {
      continue;  // another gateway's mesh device (several gateways on one broker)
    }
    publish(topic, "", true);
    ++deleted;
  }
  found_.clear();
  if (deleted) log::info("homeassistant", "deleted " + std::to_string(deleted) + " discovery configs of nodes, inputs " +
                                              "or outputs this gateway no longer has");
}

void Bridge::on_command(const Inbound& m) {
  // <state_prefix>/node/<id>/output/<output>/set
  auto refuse = [&](const std::string& why) {
    ++refused_;
    command_log.write(log::Level::warn, "homeassistant", "command on " + log_safe(m.topic) + " refused: " + why, mono_us());
  };
  // Its levels after "<state_prefix>/node/" (an empty one drops out, and the count no longer fits).
  const auto part = split_list(std::string_view(m.topic).substr(settings_.state_prefix.size() + 6), '/');
  if (part.size() != 4 || part[1] != "output" || part[3] != "set") return refuse("not a command topic");
  const std::string& id = part[0];
  const std::string& output = part[2];
  if (m.retained) return refuse("a retained command is old news, not an operator's wish now");
  double level = 0;
  if (!parse_level(m.payload, level)) return refuse("the value is not a number from 0 to 1");
  const NodeFacts* f = facts_.find(id);
  const NodeEntry* n = registry_.find(id);
  if (!f || !n) return refuse("no node '" + log_safe(id) + "' here");
  if (std::find(f->outputs.begin(), f->outputs.end(), output) == f->outputs.end())
    return refuse("node " + id + " has no output '" + log_safe(output) + "'");
  if (!n->online) return refuse("node " + id + " is offline");
  const std::uint32_t hold = config_.homeassistant.hold_ms;
  const auto sent = ports_.send(*n, 10'000, [&](kairos_v1_Command& cmd) {
    cmd.which_action = kairos_v1_Command_set_output_tag;
    auto& so = cmd.action.set_output;
    set_string(so.output, output);
    so.has_z = true;
    so.z.re = 1;
    so.c = static_cast<float>(level);
    so.hold_ms = hold;
  });
  if (!sent) return refuse("no key for node " + id);
  ++commands_;
  command_log.write(log::Level::info, "homeassistant",
                    "set_output " + output + " of " + id + " to " + std::to_string(level) + " for " +
                        std::to_string(hold) + " ms",
                    mono_us());
}

void Bridge::on_message(const Inbound& m) {
  if (settings_.allow_commands && m.topic.rfind(settings_.state_prefix + "/node/", 0) == 0) return on_command(m);
  if (!swept_ && m.retained && !m.payload.empty() && parse_config_topic(settings_, m.topic)) found_.insert(m.topic);
}

void Bridge::service(std::int64_t now_us, const kairos_v1_MeshState& mesh) {
  for (auto& ev : link_->take()) {
    if (ev.type == LinkEvent::Type::connected) {
      up_ = true;
      on_connected();
    } else if (ev.type == LinkEvent::Type::message) {
      on_message(ev.msg);
    } else {
      up_ = false;
      log::warn("homeassistant", "broker: " + describe(ev, origin_of(config_.broker, config_.path)) + "; retrying");
    }
  }
  // Up from the connect taken on: what goes out follows its availability and configs.
  if (!up_) return;
  // Once the nodes have announced themselves and the retained configs have come in.
  if (!swept_ && ports_.settled() && now_us - connected_at_us_ >= 2'000'000) sweep();
  if (now_us < next_state_us_) return;
  const double interval_s = config_.homeassistant.state_interval_s;
  next_state_us_ = now_us + static_cast<std::int64_t>(interval_s * 1e6);
  // This turn's messages: the mesh first, then configs, then states, each queue oldest first.
  const std::uint64_t budget = published_ + static_cast<std::uint64_t>(config_.homeassistant.max_messages_per_s * interval_s);
  auto text = mesh_state(phase_degrees(mesh.z.re, mesh.z.im), mesh.coherence, mesh.agreement, mesh.unified, std::string(kairos::to_string(mesh.mode)),
                         mesh.nodes_online);
  if (text != last_mesh_) {
    publish(mesh_state_topic(settings_), text, true, 0);
    last_mesh_ = std::move(text);
  }
  while (published_ < budget)
    if (const NodeFacts* f = described_.pop(facts_)) publish_configs(*f);
    else break;
  while (published_ < budget)
    if (const NodeFacts* f = dirty_.pop(facts_)) publish_node(*f);
    else break;
}

void Bridge::close() {
  link_->close({gateway_availability_topic(settings_), bytes("offline"), 1, true}, 2000);
}

}  // namespace kairos::gw::ha

#pragma once
// Home Assistant MQTT discovery (docs/HOMEASSISTANT.md): the retained
// configs that make each node a device in Home Assistant, and the plain
// JSON state topics they read. Pure logic: what to publish for a node or
// for the mesh, from what the gateway knows of it.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "gateway/bridges/node_facts.h"

namespace kairos::gw::ha {

using gw::NodeFacts;

struct Settings {
  std::string discovery_prefix = "homeassistant";  // Home Assistant's default
  std::string state_prefix;                         // plain JSON topics: "kairos-ha/<mesh>"
  std::string mesh;
  std::string gateway;                              // the gateway's id (via_device, availability)
  bool allow_commands = false;                      // outputs as number entities with a command topic
};

struct Publication {
  std::string topic;
  std::string payload;  // empty: delete the retained config
};

// The node's device identifier in Home Assistant (and its discovery node_id).
std::string device_id(const Settings& s, const std::string& node);
// Topics of the plain JSON side.
std::string node_state_topic(const Settings& s, const std::string& node);
std::string node_availability_topic(const Settings& s, const std::string& node);
std::string gateway_availability_topic(const Settings& s);
std::string mesh_state_topic(const Settings& s);
std::string output_command_topic(const Settings& s, const std::string& node, const std::string& output);

// Every retained discovery config of a node: its state (enum sensor), online
// (connectivity binary_sensor), per input its value, phase (degrees) and
// coherence sensors, per output a number (only with allow_commands).
std::vector<Publication> node_configs(const Settings& s, const NodeFacts& n);
// The empty retained payloads that delete those configs (a node removed or renamed).
std::vector<Publication> node_removal(const Settings& s, const NodeFacts& n);
// The mesh's own device: global phase, coherence, agreement, unified, mode, online count.
std::vector<Publication> mesh_configs(const Settings& s);

// The JSON a node's entities read: {"state", "online" ON/OFF, "inputs": {name: {value, phase, coherence}}};
// a figure not known yet is null (Home Assistant shows it as unknown).
std::string node_state(const NodeFacts& n, const std::string& status, bool online);
// The mesh's: {"phase" (degrees), "coherence", "agreement", "unified" ON/OFF, "mode", "online"}.
std::string mesh_state(double phase_deg, double coherence, double agreement, bool unified, const std::string& mode,
                       std::uint32_t online);
// The node and object of a discovery config topic of this mesh's devices
// ("<prefix>/<component>/kairos_<mesh>_<node>/<object>/config"); nullopt for any other topic.
struct ConfigTopic {
  std::string node;  // the device's node part (the mesh's own device: "gateway_<id>")
  std::string object;
};
std::optional<ConfigTopic> parse_config_topic(const Settings& s, const std::string& topic);

}  // namespace kairos::gw::ha

#pragma once
// Home Assistant MQTT discovery (docs/HOMEASSISTANT.md): the retained
// configs that make each node a device in Home Assistant, and the plain
// JSON state topics they read. Pure logic: what to publish for a node or
// for the mesh, from what the gateway knows of it.
#include <string>
#include <vector>

namespace kairos::gw::ha {

struct Settings {
  std::string discovery_prefix = "homeassistant";  // Home Assistant's default
  std::string state_prefix;                         // plain JSON topics: "kairos-ha/<mesh>"
  std::string mesh;
  std::string gateway;                              // the gateway's id (via_device, availability)
  bool allow_commands = false;                      // outputs as number entities with a command topic
};

struct NodeFacts {
  std::string id;
  std::string board;
  std::string firmware;
  std::vector<std::string> inputs;
  std::vector<std::string> outputs;
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

}  // namespace kairos::gw::ha

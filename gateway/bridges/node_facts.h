#pragma once
// What the bridges to other systems (Home Assistant, Sparkplug B) show of
// each node, beyond the registry: its inputs and outputs as its birth names
// them, and each input's latest sample, phase and coherence from its phase
// reports. Fed by ingest as frames are applied; pure logic.
#include <cstdint>
#include <map>
#include <unordered_map>
#include <optional>
#include <string>
#include <vector>

#include "kairos.pb.h"

namespace kairos::gw {

struct InputReading {
  std::string name;
  std::optional<double> value;      // the latest sample, in the input's own unit
  std::optional<double> phase_deg;  // the primary scale's phase, degrees in [0, 360)
  std::optional<double> coherence;  // its coherence, 0..1
};

struct NodeFacts {
  std::string id;
  std::string cluster;
  std::string board;
  std::string firmware;
  std::vector<std::string> inputs;   // as the birth lists them
  std::vector<std::string> outputs;
  std::uint32_t primary_scale = 0;   // the scale whose phase an input shows
  std::vector<InputReading> readings;  // one per input, in the birth's order
};

class NodeFactsBook {
 public:
  // A birth: the node's inputs and outputs (readings of inputs it still has are kept).
  // True when what the bridges describe of it (inputs, outputs, board, firmware) changed.
  bool on_birth(const std::string& id, const std::string& cluster, const kairos_v1_NodeBirth& b);
  // A live phase report: each named input's latest reading.
  void on_phase(const std::string& id, const kairos_v1_PhaseReport& p);
  // The readings a phase report carries, without keeping them (a report the node's backlog replayed).
  std::vector<InputReading> readings_of(const std::string& id, const kairos_v1_PhaseReport& p) const;
  void forget(const std::string& id) { nodes_.erase(id); }
  const NodeFacts* find(const std::string& id) const;
  const std::unordered_map<std::string, NodeFacts>& nodes() const { return nodes_; }

 private:
  std::unordered_map<std::string, NodeFacts> nodes_;
};

}  // namespace kairos::gw

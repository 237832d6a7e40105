#include "gateway/bridges/node_facts.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace kairos::gw {

namespace {

// An input's figures in a report, under the node's primary scale, into r (its name untouched).
void read_into(InputReading& r, const kairos_v1_InputPhase& in, std::uint32_t scale) {
  r.value.reset();
  r.phase_deg.reset();
  r.coherence.reset();
  if (in.has_value && std::isfinite(in.value)) r.value = in.value;
  if (in.scales_count > 0) {
    const auto& s = in.scales[scale < in.scales_count ? scale : 0];
    double deg = std::atan2(s.z.im, s.z.re) * 180.0 / std::numbers::pi;
    if (deg < 0) deg += 360.0;
    if (std::isfinite(deg)) r.phase_deg = deg;
    if (std::isfinite(s.c)) r.coherence = std::clamp<double>(s.c, 0.0, 1.0);
  }
}

}  // namespace

bool NodeFactsBook::on_birth(const std::string& id, const std::string& cluster, const kairos_v1_NodeBirth& b) {
  NodeFacts next;
  next.id = id;
  next.cluster = cluster;
  next.board = b.board;
  next.firmware = b.firmware_version;
  next.primary_scale = b.primary_scale;
  for (pb_size_t i = 0; i < b.inputs_count; ++i) next.inputs.emplace_back(b.inputs[i].name);
  for (pb_size_t i = 0; i < b.outputs_count; ++i) next.outputs.emplace_back(b.outputs[i].name);
  auto it = nodes_.find(id);
  for (const auto& in : next.inputs) {
    InputReading kept{in, {}, {}, {}};
    if (it != nodes_.end())
      for (const auto& r : it->second.readings)
        if (r.name == in) kept = r;
    next.readings.push_back(kept);
  }
  const bool changed = it == nodes_.end() || it->second.inputs != next.inputs || it->second.outputs != next.outputs ||
                       it->second.board != next.board || it->second.firmware != next.firmware ||
                       it->second.cluster != next.cluster;
  nodes_[id] = std::move(next);
  return changed;
}

std::vector<InputReading> NodeFactsBook::readings_of(const std::string& id, const kairos_v1_PhaseReport& p) const {
  std::vector<InputReading> out;
  auto it = nodes_.find(id);
  const std::uint32_t scale = it == nodes_.end() ? 0 : it->second.primary_scale;
  for (pb_size_t i = 0; i < p.inputs_count; ++i) {
    InputReading r;
    r.name = p.inputs[i].input;
    read_into(r, p.inputs[i], scale);
    out.push_back(std::move(r));
  }
  return out;
}

void NodeFactsBook::on_phase(const std::string& id, const kairos_v1_PhaseReport& p) {
  auto it = nodes_.find(id);
  if (it == nodes_.end()) return;  // no birth yet: nothing to show it under
  // In place: a report costs no allocation.
  for (pb_size_t i = 0; i < p.inputs_count; ++i)
    for (auto& mine : it->second.readings)
      if (mine.name == p.inputs[i].input) read_into(mine, p.inputs[i], it->second.primary_scale);
}

const NodeFacts* NodeFactsBook::find(const std::string& id) const {
  auto it = nodes_.find(id);
  return it == nodes_.end() ? nullptr : &it->second;
}

}  // namespace kairos::gw

#include "gateway/bridges/node_facts.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace kairos::gw {

double phase_degrees(double re, double im) {
  const double deg = std::atan2(im, re) * 180.0 / std::numbers::pi;
  return deg < 0 ? deg + 360.0 : deg;
}

namespace {

// An input's figures in a report, under the node's primary scale, into r (its name untouched).
void read_into(InputReading& r, const kairos_v1_InputPhase& in, std::uint32_t scale) {
  r.value.reset();
  r.phase_deg.reset();
  r.coherence.reset();
  if (in.has_value && std::isfinite(in.value)) r.value = in.value;
  if (in.scales_count > 0) {
    const auto& s = in.scales[scale < in.scales_count ? scale : 0];
    if (const double deg = phase_degrees(s.z.re, s.z.im); std::isfinite(deg)) r.phase_deg = deg;
    if (std::isfinite(s.c)) r.coherence = std::clamp<double>(s.c, 0.0, 1.0);
  }
}

}  // namespace

std::uint32_t NodeFactsBook::on_birth(const std::string& id, const std::string& cluster, const kairos_v1_NodeBirth& b,
                                      bool& changed) {
  auto [it, fresh] = index_.try_emplace(id, 0);
  if (fresh) {
    records_.emplace_back();
    it->second = static_cast<std::uint32_t>(records_.size());
  }
  NodeFacts& f = records_[it->second - 1];
  NodeFacts next;
  next.id = id;
  next.cluster = cluster;
  next.board = b.board;
  next.firmware = b.firmware_version;
  next.primary_scale = b.primary_scale;
  next.queued = f.queued;
  for (pb_size_t i = 0; i < b.inputs_count; ++i) next.inputs.emplace_back(b.inputs[i].name);
  for (pb_size_t i = 0; i < b.outputs_count; ++i) next.outputs.emplace_back(b.outputs[i].name);
  for (const auto& in : next.inputs) {
    InputReading kept{in, {}, {}, {}};
    for (const auto& r : f.readings)
      if (r.name == in) kept = r;
    next.readings.push_back(kept);
  }
  changed = fresh || f.inputs != next.inputs || f.outputs != next.outputs || f.board != next.board ||
            f.firmware != next.firmware || f.cluster != next.cluster;
  f = std::move(next);
  return it->second;
}

std::vector<InputReading> NodeFactsBook::readings_of(std::uint32_t handle, const kairos_v1_PhaseReport& p) const {
  std::vector<InputReading> out;
  const std::uint32_t scale = handle && handle <= records_.size() ? records_[handle - 1].primary_scale : 0;
  for (pb_size_t i = 0; i < p.inputs_count; ++i) {
    InputReading r;
    r.name = p.inputs[i].input;
    read_into(r, p.inputs[i], scale);
    out.push_back(std::move(r));
  }
  return out;
}

void NodeFactsBook::on_phase(std::uint32_t handle, const kairos_v1_PhaseReport& p) {
  NodeFacts* f = at(handle);
  if (!f) return;  // no birth yet: nothing to show it under
  // In place: a report costs no allocation.
  for (pb_size_t i = 0; i < p.inputs_count; ++i)
    for (auto& mine : f->readings)
      if (mine.name == p.inputs[i].input) read_into(mine, p.inputs[i], f->primary_scale);
}

void NodeFactsBook::forget(const std::string& id) {
  auto it = index_.find(id);
  if (it == index_.end()) return;
  records_[it->second - 1] = NodeFacts{};
  index_.erase(it);
}

std::uint32_t NodeFactsBook::handle(const std::string& id) const {
  auto it = index_.find(id);
  return it == index_.end() ? 0 : it->second;
}

const NodeFacts* NodeFactsBook::find(const std::string& id) const {
  const std::uint32_t h = handle(id);
  return h ? &records_[h - 1] : nullptr;
}

}  // namespace kairos::gw

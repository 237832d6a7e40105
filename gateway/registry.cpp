#include "gateway/registry.h"

#include <algorithm>

namespace kairos::gw {

NodeEntry& Registry::on_birth(const std::string& id, const std::string& cluster, std::uint64_t session,
                              const kairos_v1_NodeBirth& b, std::int64_t now_us, std::int64_t default_hb_us) {
  NodeEntry& n = nodes_[id];
  bool new_session = n.session != session;
  n.id = id;
  n.cluster = cluster;
  n.board = b.board;
  n.firmware = b.firmware_version;
  n.device_class = b.device_class == kairos_v1_DeviceClass_CLASS_UNSPECIFIED ? kairos_v1_DeviceClass_CLASS_E
                                                                              : b.device_class;
  n.context_hash.assign(b.context_hash.bytes, b.context_hash.bytes + b.context_hash.size);
  n.capabilities.clear();
  for (pb_size_t i = 0; i < b.capabilities_count; ++i) {
    if (i) n.capabilities.push_back(',');
    n.capabilities.append(b.capabilities[i]);
  }
  n.hb_period_us = b.heartbeat_period_ms ? static_cast<std::int64_t>(b.heartbeat_period_ms) * 1000 : default_hb_us;
  n.session = session;
  if (new_session) n.phase_valid = false;
  n.online = true;
  if (n.status == kairos_v1_NodeStatus_OFFLINE || n.status == kairos_v1_NodeStatus_STATUS_UNSPECIFIED)
    n.status = kairos_v1_NodeStatus_COMPLIANT;
  n.last_seen_us = now_us;
  n.last_hb_us = now_us;  // the liveness clock starts at birth
  return n;
}

bool Registry::on_state(const std::string& id, bool online, std::int64_t now_us) {
  auto* n = find(id);
  if (!n) return false;
  n->last_seen_us = now_us;
  if (n->online == online) return false;
  n->online = online;
  if (online) {
    n->last_hb_us = now_us;
    n->status = kairos_v1_NodeStatus_COMPLIANT;
  } else {
    n->status = kairos_v1_NodeStatus_OFFLINE;
    n->phase_valid = false;
  }
  return true;
}

Impedance NodeEntry::impedance(std::int64_t now_us) const {
  ImpedanceInputs in;
  in.device_class = device_class;
  in.rtt_ms = clock.rtt_us() / 1000.0;
  in.jitter_ms = clock.jitter_us() / 1000.0;
  in.processing_ema_ms = processing_ms;
  in.queue_depth = queue_depth;
  in.reliability = reliability.value();
  in.heartbeat_fresh = last_hb_us > 0 && now_us - last_hb_us < 10'000'000;
  in.calibration_ms = calibration_ms();
  return kairos::impedance(in, baseline_score);
}

bool Registry::on_heartbeat(const std::string& id, const kairos_v1_Heartbeat& hb, std::int64_t now_us) {
  auto* n = find(id);
  if (!n) return false;
  n->processing_ms = hb.processing_ms;
  n->queue_depth = hb.queue_depth;
  n->last_seen_us = now_us;
  n->last_hb_us = now_us;
  n->status = hb.status;
  n->online = true;
  return true;
}

bool Registry::on_phase(const std::string& id, const kairos_v1_PhaseReport& p, std::int64_t now_us) {
  auto* n = find(id);
  if (!n) return false;
  n->last_seen_us = now_us;
  if (!p.valid) return true;
  n->z = {p.node_z.re, p.node_z.im};
  n->c = p.node_c;
  n->phase_valid = true;
  n->phase_us = now_us;
  return true;
}

std::vector<std::string> Registry::expire(std::int64_t now_us, int missed) {
  std::vector<std::string> gone;
  for (auto& [id, n] : nodes_) {
    if (!n.online) continue;
    if (now_us - n.last_hb_us > missed * n.hb_period_us) {
      n.online = false;
      n.status = kairos_v1_NodeStatus_OFFLINE;
      n.phase_valid = false;
      gone.push_back(id);
    }
  }
  return gone;
}

void Registry::grace(std::int64_t now_us) {
  for (auto& [id, n] : nodes_)
    if (n.online) n.last_hb_us = std::max(n.last_hb_us, now_us);
}

std::vector<NodePhase> Registry::sync_inputs(std::int64_t now_us, double stale_after_s,
                                             const std::array<double, 6>& class_weight) const {
  std::vector<NodePhase> out;
  out.reserve(nodes_.size());
  for (const auto& [id, n] : nodes_) {
    if (!n.online || !n.phase_valid || n.quarantined || n.status == kairos_v1_NodeStatus_QUARANTINED) continue;
    auto cls = static_cast<std::size_t>(std::clamp<int>(n.device_class, 1, 6) - 1);
    double age_s = static_cast<double>(now_us - n.phase_us) / 1e6;
    out.push_back({n.z, n.c, sync_weight(class_weight[cls], age_s, stale_after_s)});
  }
  return out;
}

const NodeEntry* Registry::find(const std::string& id) const {
  auto it = nodes_.find(id);
  return it == nodes_.end() ? nullptr : &it->second;
}

NodeEntry* Registry::find(const std::string& id) {
  auto it = nodes_.find(id);
  return it == nodes_.end() ? nullptr : &it->second;
}

std::size_t Registry::online_count() const {
  return static_cast<std::size_t>(std::count_if(nodes_.begin(), nodes_.end(), [](const auto& kv) { return kv.second.online; }));
}

}  // namespace kairos::gw

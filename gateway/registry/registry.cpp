#include "gateway/registry/registry.h"

#include <algorithm>
#include <cmath>

namespace kairos::gw {

Registry::Registry(RegistrySettings settings) : settings_(settings) {}

NodeEntry& Registry::entry(const std::string& id) {
  if (auto it = index_.find(id); it != index_.end()) return *table_[it->second];
  NodeIndex index;
  if (free_slots_.empty()) {
    index = static_cast<NodeIndex>(table_.size());
    table_.emplace_back();
  } else {
    index = free_slots_.back();
    free_slots_.pop_back();
  }
  table_[index] = std::make_unique<NodeEntry>();
  NodeEntry& n = *table_[index];
  n.id = id;
  n.index = index;
  index_.emplace(std::string_view(n.id), index);
  order_.emplace(std::string_view(n.id), &n);
  if (auto q = held_quarantines_.find(id); q != held_quarantines_.end()) {
    set_quarantined(n, true, q->second);
    held_quarantines_.erase(q);
  }
  return n;
}

void Registry::restore_quarantine(const std::string& id, const std::string& reason) {
  if (auto* n = find(id)) return set_quarantined(*n, true, reason);
  held_quarantines_[id] = reason;
}

void Registry::join(NodeEntry& n, const std::string& cluster) {
  if (n.in_cluster && n.cluster == cluster) return;
  if (n.in_cluster) {
    auto it = clusters_.find(n.cluster);
    std::erase(it->second, &n);
    context_changes_.insert(n.cluster);
    if (it->second.empty()) clusters_.erase(it);
  }
  n.cluster = cluster;
  n.in_cluster = true;
  clusters_[cluster].push_back(&n);
  context_changes_.insert(cluster);
}

const std::vector<NodeEntry*>& Registry::members(const std::string& cluster) const {
  static const std::vector<NodeEntry*> none;
  auto it = clusters_.find(cluster);
  return it == clusters_.end() ? none : it->second;
}

std::vector<std::string> Registry::take_context_changes() {
  std::vector<std::string> out(context_changes_.begin(), context_changes_.end());
  context_changes_.clear();
  return out;
}

bool Registry::forget(const std::string& id) {
  NodeEntry* found = find(id);
  if (!found || found->online) return false;
  NodeEntry& n = *found;
  if (n.in_sums) {
    n.phase_valid = false;
    resum(n);
  }
  if (n.in_cluster) {
    auto c = clusters_.find(n.cluster);
    std::erase(c->second, &n);
    context_changes_.insert(n.cluster);
    if (c->second.empty()) clusters_.erase(c);
  }
  waits_.stop(&n);
  liveness_.drop(&n);
  pings_.drop(&n);
  fills_.drop(&n);
  index_.erase(std::string_view(n.id));
  order_.erase(std::string_view(n.id));
  const NodeIndex index = n.index;
  table_[index].reset();
  free_slots_.push_back(index);
  return true;
}

void Registry::restore(NodeEntry entry_in) {
  NodeEntry& n = entry(entry_in.id);
  waits_.stop(&n);
  const bool was_online = n.online;
  if (n.in_sums) {  // out of the sums before the entry is replaced
    n.online = false;
    resum(n);
  }
  const std::string cluster = entry_in.cluster;
  entry_in.cluster = n.cluster;  // membership moves through join()
  entry_in.in_cluster = n.in_cluster;
  // The entry's id string and index stay: the index and the id order view them.
  std::string id = std::move(n.id);
  const NodeIndex index = n.index;
  n = std::move(entry_in);
  n.id = std::move(id);
  n.index = index;
  join(n, cluster);
  n.liveness_slot_us = n.ping_slot_us = n.fill_slot_us = 0;
  n.in_sums = false;
  if (was_online) --online_;
  if (n.online) {
    ++online_;
    liveness_.at(n, n.last_hb_us + settings_.missed_heartbeats * n.hb_period_us);
    queue_ping(n, n.next_ping_us ? n.next_ping_us : 1);
  }
  resum(n);
}

void Registry::set_online(NodeEntry& n, bool online, std::int64_t now_us) {
  if (n.online != online) {
    if (online) ++online_;
    else --online_;
    n.online = online;
    context_changes_.insert(n.cluster);
    // A node that was online and failed, back: its recovery time (the KPI).
    if (!online) n.down_since_us = now_us;
    if (online && n.down_since_us) {
      ++recoveries_;
      recovery_total_us_ += std::max<std::int64_t>(0, now_us - n.down_since_us);
      n.down_since_us = 0;
    }
  }
  track_wait(n, now_us);
  if (!online) return;
  liveness_.at(n, n.last_hb_us + settings_.missed_heartbeats * n.hb_period_us);
  queue_ping(n, std::max(n.next_ping_us, now_us));
}

void Registry::track_wait(NodeEntry& n, std::int64_t now_us) {
  const bool pinged = n.online && !n.quarantined && n.status != kairos_v1_NodeStatus_QUARANTINED;
  if (!pinged) waits_.stop(&n);
  else if (n.clock.count() < ClockFilter::kSyncedSamples) waits_.start(&n, now_us);
}

void Registry::clock_sampled(NodeEntry& n, std::int64_t now_us) {
  if (n.clock.count() >= ClockFilter::kSyncedSamples) waits_.synced(&n, now_us);
}

NodeEntry& Registry::on_birth(const std::string& id, const std::string& cluster, std::uint64_t session,
                              const kairos_v1_NodeBirth& b, std::int64_t now_us, std::int64_t default_hb_us) {
  NodeEntry& n = entry(id);
  bool new_session = n.session != session;
  join(n, cluster);
  context_changes_.insert(cluster);  // its context hash may have changed
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
  if (n.status == kairos_v1_NodeStatus_OFFLINE || n.status == kairos_v1_NodeStatus_STATUS_UNSPECIFIED)
    n.status = kairos_v1_NodeStatus_COMPLIANT;
  n.last_seen_us = now_us;
  n.last_hb_us = now_us;  // the liveness clock starts at birth
  set_online(n, true, now_us);
  resum(n);
  return n;
}

bool Registry::on_state(const std::string& id, bool online, std::int64_t now_us) {
  auto* n = find(id);
  return n && on_state(*n, online, now_us);
}

bool Registry::on_state(NodeEntry& n, bool online, std::int64_t now_us) {
  n.last_seen_us = now_us;
  if (n.online == online) return false;
  if (online) {
    n.last_hb_us = now_us;
    n.status = kairos_v1_NodeStatus_COMPLIANT;
  } else {
    n.status = kairos_v1_NodeStatus_OFFLINE;
    n.phase_valid = false;
  }
  set_online(n, online, now_us);
  resum(n);
  return true;
}

std::optional<double> NodeEntry::delay_tail_us(double q) const {
  if (inbound.count() >= kTailSamples) return inbound.quantile(q);
  if (inbound.count() + one_way.count() >= kFirstTailSamples) return std::max(inbound.quantile(q), one_way.quantile(q));
  return std::nullopt;
}

Impedance NodeEntry::impedance(std::int64_t now_us, double q) const {
  ImpedanceInputs in;
  in.device_class = device_class;
  in.rtt_ms = clock.rtt_us() / 1000.0;
  in.jitter_ms = clock.jitter_us() / 1000.0;
  in.processing_ema_ms = processing_ms;
  in.queue_depth = queue_depth;
  // A speaker renders ahead by its buffer: the start must be there before
  // the frame for T is written, with a wake of its engine (10 ms) to spare.
  in.output_ms = audio_delay_ms > 0 ? audio_delay_ms + 10 : 0;
  in.reliability = reliability.value();
  in.heartbeat_fresh = last_hb_us > 0 && now_us - last_hb_us < 10'000'000;
  if (auto tail = q > 0 ? delay_tail_us(q) : std::nullopt) {
    in.delay_tail_ms = *tail / 1000.0;
    in.calibration_ms = feedback_ms;
  } else {
    in.calibration_ms = calibration_ms();
  }
  return kairos::impedance(in, baseline_score);
}

bool Registry::on_heartbeat(const std::string& id, const kairos_v1_Heartbeat& hb, std::int64_t now_us) {
  auto* n = find(id);
  if (!n) return false;
  on_heartbeat(*n, hb, now_us);
  return true;
}

void Registry::on_heartbeat(NodeEntry& n, const kairos_v1_Heartbeat& hb, std::int64_t now_us) {
  n.processing_ms = hb.processing_ms;
  n.queue_depth = hb.queue_depth;
  n.audio_delay_ms = std::isfinite(hb.audio_delay_ms) ? std::clamp<double>(hb.audio_delay_ms, 0, 1000) : 0;
  n.last_seen_us = now_us;
  n.last_hb_us = now_us;
  const bool status_changed = n.status != hb.status;
  n.status = hb.status;
  if (!n.online) set_online(n, true, now_us);
  else if (status_changed && n.status != kairos_v1_NodeStatus_QUARANTINED)
    queue_ping(n, std::max(n.next_ping_us, now_us));  // back from its own quarantine
  if (status_changed) track_wait(n, now_us);
  // The liveness deadline already queued is earlier than the new one: it is
  // moved when it comes due, not on every heartbeat.
  if (status_changed || !n.in_sums) resum(n);
}

bool Registry::on_phase(const std::string& id, const kairos_v1_PhaseReport& p, std::int64_t now_us) {
  auto* n = find(id);
  if (!n) return false;
  on_phase(*n, p, now_us);
  return true;
}

void Registry::on_phase(NodeEntry& n, const kairos_v1_PhaseReport& p, std::int64_t now_us) {
  n.last_seen_us = now_us;
  if (!p.valid) return;
  n.z = {p.node_z.re, p.node_z.im};
  n.c = p.node_c;
  n.phase_valid = true;
  n.phase_us = now_us;
  resum(n);
}

void Registry::set_quarantined(NodeEntry& n, bool quarantined, const std::string& reason) {
  n.quarantined = quarantined;
  n.quarantine_reason = quarantined ? reason : std::string();
  if (!quarantined && n.online) queue_ping(n, std::max<std::int64_t>(n.next_ping_us, 1));
  track_wait(n, n.last_seen_us);  // a healed node's wait starts with its last frame
  resum(n);
}

std::vector<std::string> Registry::expire(std::int64_t now_us) {
  std::vector<std::string> gone;
  // Offline once now - last heartbeat > missed * period: due at deadline + 1 us.
  while (NodeEntry* n = liveness_.due(now_us - 1)) {
    if (!n->online) continue;
    const std::int64_t deadline = n->last_hb_us + settings_.missed_heartbeats * n->hb_period_us;
    if (now_us <= deadline) {  // heard since: due again at its new deadline
      liveness_.at(*n, deadline);
      continue;
    }
    n->status = kairos_v1_NodeStatus_OFFLINE;
    n->phase_valid = false;
    set_online(*n, false, now_us);
    resum(*n);
    gone.push_back(n->id);
  }
  return gone;
}

void Registry::grace(std::int64_t now_us) {
  // After an outage of the gateway's own: rare, and every online node is concerned.
  for (auto& n : table_)
    if (n && n->online) n->last_hb_us = std::max(n->last_hb_us, now_us);
}

NodeEntry* Registry::ping_due(std::int64_t now_us) {
  for (auto* queue : {&fills_, &pings_}) {
    while (NodeEntry* n = queue->due(now_us)) {
      if (!n->online || n->quarantined || n->status == kairos_v1_NodeStatus_QUARANTINED) continue;  // queued again when back
      return n;
    }
  }
  return nullptr;
}

void Registry::ping_at(NodeEntry& n, std::int64_t at_us) {
  n.next_ping_us = at_us;
  queue_ping(n, at_us);
}

void Registry::queue_ping(NodeEntry& n, std::int64_t at_us) {
  const bool filling = n.clock.count() < ClockFilter::kSyncedSamples;
  auto& to = filling ? fills_ : pings_;
  // A deadline queued on the other side moves here (its entry there is superseded).
  std::int64_t& other = filling ? n.ping_slot_us : n.fill_slot_us;
  if (other != 0) {
    at_us = std::min(at_us, other);
    other = 0;
  }
  to.at(n, at_us);
}

bool Registry::contributes(const NodeEntry& n) const {
  if (!n.online || !n.phase_valid || n.quarantined || n.status == kairos_v1_NodeStatus_QUARANTINED) return false;
  return settings_.class_weight[static_cast<std::size_t>(std::clamp<int>(n.device_class, 1, 6) - 1)] > 0;
}

double Registry::anchor(std::int64_t phase_us) const {
  return std::exp(static_cast<double>(phase_us - base_us_) / 1e6 / settings_.stale_after_s);
}

void Registry::resum(NodeEntry& n) {
  if (settings_.stale_after_s <= 0) return;  // no phase has weight
  if (n.in_sums) {
    const double a = n.sum_weight * anchor(n.sum_phase_us);
    s_w_ -= a;
    s_z_ -= a * n.sum_z;
    s_c_ -= a * n.sum_c;
    s_zz_ -= a * std::norm(n.sum_z);
    n.in_sums = false;
    if (--contributors_ == 0) {  // nothing left: no rounding carried over
      s_w_ = s_c_ = s_zz_ = 0;
      s_z_ = {0, 0};
    }
  }
  if (!contributes(n)) return;
  if (!based_) {
    base_us_ = n.phase_us;
    based_ = true;
  }
  n.in_sums = true;
  n.sum_weight = settings_.class_weight[static_cast<std::size_t>(std::clamp<int>(n.device_class, 1, 6) - 1)];
  n.sum_phase_us = n.phase_us;
  n.sum_z = n.z;
  n.sum_c = n.c;
  const double a = n.sum_weight * anchor(n.sum_phase_us);
  s_w_ += a;
  s_z_ += a * n.sum_z;
  s_c_ += a * n.sum_c;
  s_zz_ += a * std::norm(n.sum_z);
  ++contributors_;
  if (n.phase_us - base_us_ > static_cast<std::int64_t>(4 * settings_.stale_after_s * 1e6)) rebase(n.phase_us);
}

void Registry::rebase(std::int64_t now_us) {
  // Anchors grow as exp(age/stale_after): moving the base scales every sum
  // by one factor (no node visited), keeping them far from overflow.
  const double f = std::exp(-static_cast<double>(now_us - base_us_) / 1e6 / settings_.stale_after_s);
  s_w_ *= f;
  s_z_ *= f;
  s_c_ *= f;
  s_zz_ *= f;
  base_us_ = now_us;
}

MeshFigures Registry::figures(std::int64_t now_us) {
  if (based_ && now_us - base_us_ > static_cast<std::int64_t>(4 * settings_.stale_after_s * 1e6)) rebase(now_us);
  MeshFigures f;
  if (contributors_ == 0 || !(s_w_ > 0)) return f;
  f.contributors = contributors_;
  f.z = s_z_ / s_w_;
  f.coherence = s_c_ / s_w_;
  // sum a_i |z_i - Z|^2 = sum a_i |z_i|^2 - |Z|^2 sum a_i
  const double spread = std::max(0.0, s_zz_ - std::norm(f.z) * s_w_);
  f.agreement = std::clamp(1.0 - 2.0 * std::sqrt(spread / s_w_), 0.0, 1.0);
  return f;
}

std::vector<NodePhase> Registry::sync_inputs(std::int64_t now_us) const {
  std::vector<NodePhase> out;
  for (const auto& [id, n] : nodes()) {
    if (!n.online || !n.phase_valid || n.quarantined || n.status == kairos_v1_NodeStatus_QUARANTINED) continue;
    auto cls = static_cast<std::size_t>(std::clamp<int>(n.device_class, 1, 6) - 1);
    double age_s = static_cast<double>(now_us - n.phase_us) / 1e6;
    out.push_back({n.z, n.c, sync_weight(settings_.class_weight[cls], age_s, settings_.stale_after_s)});
  }
  return out;
}

const NodeEntry* Registry::find(std::string_view id) const {
  auto it = index_.find(id);
  return it == index_.end() ? nullptr : table_[it->second].get();
}

NodeEntry* Registry::find(std::string_view id) {
  auto it = index_.find(id);
  return it == index_.end() ? nullptr : table_[it->second].get();
}

}  // namespace kairos::gw

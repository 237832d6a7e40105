#include "gateway/escalation/escalation.h"

#include <algorithm>
#include <cstdio>

#include "common/io/clock.h"
#include "common/io/log.h"

namespace kairos::gw {

kairos_v1_MeshMode mode_for(double active_rate) {
  if (active_rate >= 0.95) return kairos_v1_MeshMode_FULL;
  if (active_rate >= 0.80) return kairos_v1_MeshMode_DEGRADED_LIGHT;
  if (active_rate >= 0.60) return kairos_v1_MeshMode_DEGRADED_MODERATE;
  if (active_rate >= 0.30) return kairos_v1_MeshMode_DEGRADED_SEVERE;
  return kairos_v1_MeshMode_EMERGENCY;
}

// The suggested resolution strategy of a conflict type (docs/DESIGN.md 5.6).
std::string suggestion(const std::string& type) {
  if (type == "HASH_MISMATCH") return "node quarantined: check its key (kairosctl provision --new-key), then kairosctl heal";
  if (type == "DATA_CONTRADICTION") return "majority result kept: inspect the outvoted nodes, re-run with more redundancy";
  if (type == "TEMPORAL_PARADOX") return "data out of order dropped: check the node's clock and restarts";
  if (type == "CONTEXT_DIVERGENCE") return "push the majority config (schedule config_reload) or re-provision the node";
  if (type == "CAPABILITY_MISMATCH") return "fix the node's [jobs] allow-list or the capabilities it advertises";
  if (type == "BALL_LINEAGE_BROKEN") return "the database was changed behind the gateway: kairosctl ball verify, keep the file, ball hut";
  if (type == "DUPLICATE_IDENTITY")
    return "two devices use this node id and key: find the copy (a cloned card), give it its own id and key "
           "(kairosctl provision --node), then kairosctl heal";
  if (type == "RETIRED_KEY")
    return "not quarantined: a key rotated away is still in use; find who holds it, re-provision the node if it leaked";
  if (type == "BALL_REFUSAL") return "nothing was appended and the peer was told why: kairosctl ball show <session>";
  return "inspect the node";
}


BreakerSettings breaker_settings(const GatewayConfig& config) {
  return {static_cast<std::int64_t>(config.breaker_window_s * 1e6), config.cluster_failures, config.sector_failures,
          config.global_sectors, static_cast<std::int64_t>(config.breaker_open_s * 1e6),
          static_cast<std::int64_t>(config.breaker_healthy_s * 1e6)};
}

Escalation::Escalation(const GatewayConfig& config, Registry& registry, Outbox& outbox, Ports ports)
    : config_(config),
      registry_(registry),
      outbox_(outbox),
      ports_(std::move(ports)),
      breakers_(breaker_settings(config), config.sectors),
      hook_(config.alert_hook, static_cast<std::int64_t>(config.alert_hook_timeout_s * 1e6)) {
  breakers_.on_change([](const std::string& scope, const std::string& name, BreakerState before, BreakerState after) {
    log::warn("breakers", scope + " " + name + ": " + to_string(before) + " -> " + to_string(after));
  });
  outbox_.add(*this);
}

void Escalation::conflict(const std::string& type, int priority, const std::string& node, const std::string& detail,
                          std::int64_t now_us, bool throttle) {
  // One entry per node and type every 10 s: a flood of bad frames is counted
  // by the drop counters, not written row by row.
  auto& last = last_conflict_us_[type + "/" + node];
  if (throttle && last != 0 && now_us - last < 10'000'000) return;
  last = now_us;
  if (last_conflict_us_.size() > 100'000) last_conflict_us_.clear();
  conflicts_.push_back({type, priority, node, detail, wall_us(), suggestion(type), 0, "", ""});
  log::warn("conflict", type + " (priority " + std::to_string(priority) + ") " + node + ": " + log_safe(detail, 200));
  if (priority >= 3) alert(conflicts_.back());
}

Escalation::AlertScope Escalation::scope_of(const StoredConflict& c) const {
  const NodeEntry* n = registry_.find(c.node);
  AlertScope a;
  a.cluster = n ? n->cluster : "";
  const std::string* sector = breakers_.sector_of(a.cluster);
  a.sector = sector ? *sector : "";
  a.suggested = c.suggested.empty() ? suggestion(c.type) : c.suggested;
  return a;
}

Bytes Escalation::alert_frame(const StoredConflict& c) { return frame(c, scope_of(c)); }

Bytes Escalation::frame(const StoredConflict& c, const AlertScope& s) {
  ++alerts_;
  auto env = make_envelope("", 0, 0, 0);
  env->which_message = kairos_v1_Envelope_alert_tag;
  auto& a = env->message.alert;
  set_string(a.type, c.type);
  a.priority = static_cast<std::uint32_t>(c.priority);
  set_string(a.node, c.node);
  set_string(a.cluster, s.cluster);
  set_string(a.sector, s.sector);
  set_string(a.scope, c.priority >= 4 ? "operator" : "sector");
  set_string(a.detail, c.detail.substr(0, 256));
  set_string(a.suggested, s.suggested.substr(0, 160));
  return ports_.seal_alert(alert_topic(config_.mesh), *env);
}

void Escalation::alert(const StoredConflict& c) {
  const AlertScope s = scope_of(c);
  // Sent after the conflict is committed; QoS 1 through the link's backlog
  // while the broker is away.
  outbox_.publish(alert_topic(config_.mesh), frame(c, s));
  if (c.priority >= 4 && hook_.configured())
    hook_.run({{"KAIROS_ALERT_TYPE", c.type},
               {"KAIROS_ALERT_PRIORITY", std::to_string(c.priority)},
               {"KAIROS_ALERT_NODE", c.node},
               {"KAIROS_ALERT_CLUSTER", s.cluster},
               {"KAIROS_ALERT_SECTOR", s.sector},
               {"KAIROS_ALERT_DETAIL", c.detail},
               {"KAIROS_ALERT_SUGGESTED", s.suggested},
               {"KAIROS_MESH", config_.mesh}},
              mono_us());
}

void Escalation::quarantine(const std::string& id, const std::string& why) {
  NodeEntry* n = registry_.find(id);
  if (!n || n->quarantined) return;
  registry_.set_quarantined(*n, true, why);
  quarantine_.push_back({id, "quarantine", why, {}, wall_us()});
  log::warn("registry", id + " QUARANTINED (" + why + "); kairosctl heal " + id + " lifts it");
}

void Escalation::keep_data(const std::string& node, const std::string& reason, ByteView data) {
  quarantine_.push_back({node, "data", reason, Bytes(data.begin(), data.end()), wall_us()});
}

void Escalation::duplicate_identity(const std::string& id, std::uint64_t stale_session, std::int64_t now_us) {
  // A live frame of an older session while the current one is live: one
  // now and then is a Will or a frame in flight across a restart; three in a
  // minute mean two devices speak as one node.
  constexpr std::int64_t kWindowUs = 60'000'000;
  NodeEntry* n = registry_.find(id);
  if (!n || n->last_seen_us == 0 || now_us - n->last_seen_us > kWindowUs) return;  // the current session is not live
  auto& seen = n->stale_frames_us;
  std::erase_if(seen, [&](std::int64_t t) { return now_us - t > kWindowUs; });
  seen.push_back(now_us);
  if (seen.size() < 3 || (n->duplicate_alert_us != 0 && now_us - n->duplicate_alert_us < 10 * kWindowUs)) return;
  n->duplicate_alert_us = now_us;
  char detail[160];
  std::snprintf(detail, sizeof detail,
                "%zu frames of an older session (%016llx) within a minute while session %016llx is live: two devices "
                "with one identity",
                seen.size(), static_cast<unsigned long long>(stale_session), static_cast<unsigned long long>(n->session));
  conflict("DUPLICATE_IDENTITY", 3, id, detail, now_us, false);
}

void Escalation::check_contexts() {
  // CONTEXT_DIVERGENCE (docs/DESIGN.md 5.6): within a cluster of 3 or more online
  // nodes, a context hash that differs from a strict majority's. Only the
  // clusters where a node came, went or was born again since the last look.
  for (const auto& cluster : registry_.take_context_changes()) {
    std::map<Digest, std::vector<const NodeEntry*>> by_hash;
    for (const NodeEntry* n : registry_.members(cluster)) {
      if (!n->online || n->context_hash.size() != 32) continue;
      Digest h;
      std::copy_n(n->context_hash.begin(), h.size(), h.begin());
      by_hash[h].push_back(n);
    }
    std::size_t total = 0;
    const Digest* major = nullptr;
    std::size_t major_n = 0;
    for (const auto& [h, v] : by_hash) {
      total += v.size();
      if (v.size() > major_n) {
        major_n = v.size();
        major = &h;
      }
    }
    if (total < 3 || 2 * major_n <= total) continue;
    const std::size_t diverging = total - major_n;
    // Many differ (a quarter of the cluster, at least two): priority 3.
    const int priority = diverging >= 2 && 4 * diverging >= total ? 3 : 2;
    for (const auto& [h, v] : by_hash) {
      if (&h == major) continue;
      for (const NodeEntry* n : v) {
        auto& flagged = diverged_[n->id];
        if (flagged == h) continue;  // already logged for this config
        flagged = h;
        conflict("CONTEXT_DIVERGENCE", priority, n->id,
                 "context hash " + to_hex(ByteView(h.data(), 4)) + "... differs from cluster " + cluster + "'s " +
                     to_hex(ByteView(major->data(), 4)) + "... (" + std::to_string(major_n) + " of " +
                     std::to_string(total) + " nodes)",
                 wall_us());
      }
    }
    for (const NodeEntry* n : by_hash.at(*major)) diverged_.erase(n->id);
  }
}

std::string Escalation::mode_refusal(bool mesh_wide, std::size_t targets, bool confirm) const {
  char rate[64];
  std::snprintf(rate, sizeof rate, " (%.0f%% of nodes active)", active_rate_ * 100);
  switch (mode_) {
    case kairos_v1_MeshMode_EMERGENCY:
      if (!confirm)
        return std::string("the mesh is in EMERGENCY") + rate + ": automation is halted; add --confirm to act anyway";
      return "";
    case kairos_v1_MeshMode_DEGRADED_SEVERE:
      if (mesh_wide && !confirm)
        return std::string("the mesh is DEGRADED_SEVERE") + rate + ": a mesh-wide operation needs --confirm";
      [[fallthrough]];
    case kairos_v1_MeshMode_DEGRADED_MODERATE:
      if (targets > 1000)
        return std::string("the mesh is ") + kairos::to_string(mode_).data() + rate + ": no scatter beyond 1000 nodes (" +
               std::to_string(targets) + " targets); narrow the targets";
      return "";
    default:
      return "";
  }
}

void Escalation::healthy_only(std::vector<std::string>& ids) const {
  if (mode_ != kairos_v1_MeshMode_DEGRADED_MODERATE && mode_ != kairos_v1_MeshMode_DEGRADED_SEVERE) return;
  std::erase_if(ids, [&](const std::string& id) {
    const NodeEntry* n = registry_.find(id);
    return n && !breakers_.closed(n->cluster);
  });
}

void Escalation::confirmed_in_emergency() {
  if (mode_ == kairos_v1_MeshMode_EMERGENCY && !emergency_override_) {
    // The operator confirmed work in an EMERGENCY: jobs run again, on the operator's word, until the mode changes.
    emergency_override_ = true;
    log::warn("jobs", "EMERGENCY: job dispatch resumed by an operator's confirmed request");
  }
}

bool Escalation::judge(std::size_t online, std::size_t known, bool settled) {
  const double active = known ? static_cast<double>(online) / static_cast<double>(known) : 1.0;
  active_rate_ = active;
  // Until the registry has settled after a start (births re-read, first
  // heartbeats), nodes restored from the database look offline: no mode
  // is judged from that.
  const auto mode = settled ? mode_for(active) : mode_;
  if (mode == mode_) return false;
  log::info("mesh", "mode " + std::string(kairos::to_string(mode_)) + " -> " + std::string(kairos::to_string(mode)) + " (" +
                        std::to_string(online) + " of " + std::to_string(known) + " nodes active)");
  mode_ = mode;
  if (mode != kairos_v1_MeshMode_EMERGENCY) {
    emergency_override_ = false;
    return true;
  }
  // Automation halted, state written to disk, operators alerted.
  ports_.snapshot("emergency", "all", "");
  char detail[160];
  std::snprintf(detail, sizeof detail, "only %.0f%% of %zu nodes active: automation halted, snapshot written",
                active * 100, known);
  alert({"EMERGENCY", 4, "", detail, wall_us(),
         "restore nodes (kairosctl nodes --state offline); kairosctl freeze holds outputs safe meanwhile", 0, "", ""});
  return true;
}

void Escalation::write(Store& store) {
  for (const auto& q : quarantine_) store.append_quarantine(q.node, q.action, q.reason, q.data, q.at_wall_us);
  for (const auto& c : conflicts_) store.append_conflict(c);
}

void Escalation::written() {
  quarantine_.clear();
  conflicts_.clear();
}

Json snapshot_json(const Registry& registry, const kairos_v1_MeshState& ms, const SnapshotHead& head, std::int64_t now_us) {
  Json j;
  j.begin_object().key("kind").str(head.kind).key("scope").str(head.scope).key("gateway").str(head.gateway);
  j.key("operator").str(head.by);
  j.key("mesh").begin_object().key("z_re").num(ms.z.re).key("z_im").num(ms.z.im).key("coherence").num(ms.coherence);
  j.key("agreement").num(ms.agreement).key("unified").boolean(ms.unified).key("mode").str(kairos::to_string(ms.mode));
  j.key("online").integer(ms.nodes_online).key("known").integer(ms.nodes_known).end_object();
  j.key("nodes").begin_array();
  for (const auto& [id, n] : registry.nodes()) {
    j.begin_object().key("id").str(id).key("cluster").str(n.cluster).key("online").boolean(n.online);
    j.key("status").str(kairos::to_string(n.quarantined ? kairos_v1_NodeStatus_QUARANTINED : n.status));
    j.key("z_re").num(n.z.real()).key("z_im").num(n.z.imag()).key("c").num(n.c);
    j.key("impedance").integer(static_cast<unsigned long long>(n.impedance(now_us).score));
    j.key("reliability").num(n.reliability.value()).end_object();
  }
  j.end_array().end_object();
  return j;
}

}  // namespace kairos::gw

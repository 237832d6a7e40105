// The gateway takes in what nodes report (docs/DESIGN.md 4, 5.1, 5.6): every frame
// checked, counted when dropped, applied to the registry; conflicts and
// alerts raised from what it sees; quarantine.
#include "gateway/gateway.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "common/core/json.h"
#include "common/core/utf8.h"
#include "common/core/lists.h"

#include "common/io/clock.h"
#include "common/io/log.h"
#include "common/io/process.h"

namespace kairos::gw {

namespace {

constexpr std::int64_t kSessionSaveUs = 10'000'000;  // phase and heartbeat high waters saved this often

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

}  // namespace

void Gateway::drop(DropReason reason, const std::string& topic, const std::string& detail, std::int64_t now_us) {
  drops_.add(reason);
  wire_log_.write(log::Level::warn, "ingest",
                  "dropped frame on " + log_safe(topic) + ": " + std::string(to_string(reason)) + " (" +
                      log_safe(detail, 160) + ")",
                  now_us);
}

void Gateway::duplicate_identity(const std::string& id, std::uint64_t stale_session, std::int64_t now_us) {
  // A live frame of an older session while the current one is live: one
  // now and then is a Will or a frame in flight across a restart; three in a
  // minute mean two devices speak as one node (docs/DESIGN.md 5.6).
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

void Gateway::on_message(const Inbound& m, std::int64_t now_us) {
  auto t = parse_topic(m.topic);
  if (!t || t->mesh != config_.mesh) return drop(DropReason::bad_topic, m.topic, "not a topic of this mesh", now_us);
  if (t->kind == TopicKind::ctl_req) return on_ctl_request(m, now_us);
  if (t->kind == TopicKind::ball_head) return on_ball_head(m, now_us);
  // Our own broadcasts match the node filters (+/+/state): not for us.
  if (t->kind == TopicKind::gw_state || t->kind == TopicKind::gw_summary) return;
  if (t->cluster.empty() || t->kind == TopicKind::cmd) return drop(DropReason::bad_topic, m.topic, "not a node report", now_us);
  on_node_frame(*t, m, now_us);
}

void Gateway::on_node_frame(const Topic& t, const Inbound& m, std::int64_t now_us) {
  // Under the node's key, or one of a key rotation (gateway_rotation.cpp).
  auto opened = open_node_frame(t, m, now_us);
  if (!opened) return;  // dropped, counted and logged there
  const Envelope& env = *opened;
  if (t.name != env.sender)
    return drop(DropReason::sender_mismatch, m.topic, "sender '" + std::string(env.sender) + "'", now_us);
  if (!kind_matches(t.kind, env)) return drop(DropReason::kind_mismatch, m.topic, "message type", now_us);
  if (t.kind == TopicKind::birth && t.cluster != env.message.birth.cluster)
    return drop(DropReason::sender_mismatch, m.topic, "birth names cluster '" + std::string(env.message.birth.cluster) + "'", now_us);
  NodeEntry* known = registry_.find(t.name);
  if (t.kind != TopicKind::birth && known && known->cluster != t.cluster && known->session == env.session_id)
    return drop(DropReason::sender_mismatch, m.topic, "node is in cluster " + known->cluster, now_us);

  bool offline_state = t.kind == TopicKind::state && !env.message.state.online;
  auto verdict = offline_state ? guard_.check_will(env.sender, env.session_id, env.seq)
                               : guard_.check(env.sender, env.session_id, env.seq, t.kind == TopicKind::birth);
  if (verdict.drop) {
    // A retained birth or state of the current session re-read at start is
    // not a replay attack: it is the broker's copy of what was accepted.
    bool reread = m.retained && *verdict.drop == DropReason::replay &&
                  guard_.current_session(env.sender) == env.session_id;
    if (!reread && *verdict.drop == DropReason::replay && guard_.current_session(env.sender) == env.session_id &&
        env.seq + ReplayWindow::kWidth < guard_.high_water(env.sender)) {
      // Far below what the node has sent in this session: not a QoS 1
      // redelivery but a sequence regression (docs/DESIGN.md 5.6).
      conflict("TEMPORAL_PARADOX", 4, env.sender,
               "sequence regression on " + m.topic + ": seq " + std::to_string(env.seq) + " after " +
                   std::to_string(guard_.high_water(env.sender)),
               now_us);
      pending_quarantine_.push_back({env.sender, "data", "sequence regression", Bytes(m.payload.begin(), m.payload.end()),
                                     wall_us()});
    }
    if (*verdict.drop == DropReason::stale_session && !m.retained && !offline_state)
      duplicate_identity(env.sender, env.session_id, now_us);
    if (!reread) return drop(*verdict.drop, m.topic, "seq " + std::to_string(env.seq), now_us);
    // Already applied by this process: the copy says nothing new about liveness.
    if (known && known->heard) return;
  }
  // The session and its high water go to the database at the next flush
  // (each second) when the frame has effects; phase reports and heartbeats
  // advance it there every 10 s at most (docs/DESIGN.md 4: after a crash,
  // those of the last 10 s could be replayed once each; nothing else).
  if (verdict.new_session || (!m.retained && t.kind != TopicKind::phase && t.kind != TopicKind::hb) || !known) {
    dirty_sessions_.insert(env.sender);
    if (known) known->session_saved_us = now_us;
  } else if (!m.retained && now_us - known->session_saved_us >= kSessionSaveUs) {
    dirty_sessions_.insert(env.sender);
    known->session_saved_us = now_us;
  }
  ++accepted_;

  const std::string id = env.sender;
  switch (t.kind) {
    case TopicKind::birth: {
      const auto* before = registry_.find(id);
      bool was_online = before && before->online;
      auto& n = registry_.on_birth(id, t.cluster, env.session_id, env.message.birth, now_us,
                                   static_cast<std::int64_t>(config_.heartbeat_period_s * 1e6));
      n.heard = n.heard || !m.retained;
      n.session_saved_us = now_us;  // the birth's session is marked above
      char session[20];
      std::snprintf(session, sizeof session, "%016llx", static_cast<unsigned long long>(env.session_id));
      wire_log_.write(log::Level::info, "registry",
                      "birth " + id + " (cluster " + t.cluster + ", board " + log_safe(n.board) + ", session " + session +
                          (m.retained ? ", retained)" : ")") + (was_online ? "" : ": online"),
                      now_us);
      dirty_nodes_.insert(id);
      break;
    }
    case TopicKind::state: {
      auto* n = known;
      if (!n || n->session != env.session_id) break;
      if (!m.retained) n->heard = true;
      if (registry_.on_state(*n, env.message.state.online, now_us)) {
        wire_log_.write(log::Level::info, "registry", id + (env.message.state.online ? " online" : " OFFLINE (state/Will)"),
                        now_us);
        dirty_nodes_.insert(id);
      }
      break;
    }
    case TopicKind::hb: {
      if (!known) break;
      bool was_online = known->online;
      registry_.on_heartbeat(*known, env.message.heartbeat, now_us);
      known->heard = true;
      if (!was_online) {
        wire_log_.write(log::Level::info, "registry", id + " online (heartbeat)", now_us);
        dirty_nodes_.insert(id);
      }
      break;
    }
    case TopicKind::phase:
      if (!known) break;
      if (env.historical) ++known->historical_phases;  // late (store and forward): history, not its present phase
      else registry_.on_phase(*known, env.message.phase, now_us);
      break;
    case TopicKind::ack:
      on_ack(id, env.message.ack, wall_us() - (mono_us() - m.received_mono_us));
      break;
    case TopicKind::result:
      on_result(id, env, m);
      break;
    case TopicKind::event: {
      const auto& e = env.message.event;
      pending_events_.push_back({id, env.session_id, env.seq, static_cast<int>(e.kind), e.source, e.detail, env.sent_at_us,
                                 env.historical, wall_us()});
      if (auto* n = registry_.find(id)) ++n->events;
      if (e.kind == kairos_v1_EventKind_CAT1 || e.kind == kairos_v1_EventKind_CAT2)
        wire_log_.write(log::Level::info, "events",
                        id + ": " + (e.kind == kairos_v1_EventKind_CAT1 ? "CAT-1 " : "CAT-2 ") + log_safe(e.source) +
                            ": " + log_safe(e.detail, 160) + (env.historical ? " (late)" : ""),
                        now_us);
      break;
    }
    default:
      break;  // events, acks and results are handled by later subsystems
  }
}

void Gateway::on_result(const std::string& id, const Envelope& env, const Inbound& m) {
  const auto& r = env.message.result;
  const NodeEntry* n = registry_.find(id);
  const JobCopy* copy = jobs_.copy(r.job_id, id, r.attempt);
  if (n && copy && n->clock.count() > 0) {
    // An effect stamped before its cause: the result says it left the node
    // before the job reached it, beyond what the clock estimate allows.
    const double stamped_gw = static_cast<double>(env.sent_at_us) - n->clock.offset_us();
    const double slack_us = n->clock.rtt_us() / 2 + 4 * n->clock.jitter_us() + 5'000;
    if (stamped_gw < static_cast<double>(copy->sent_wall_us) - slack_us) {
      conflict("TEMPORAL_PARADOX", 4, id,
               "job " + std::to_string(r.job_id) + ": result stamped " +
                   std::to_string(static_cast<long long>((static_cast<double>(copy->sent_wall_us) - stamped_gw) / 1000)) +
                   " ms before the job was sent",
               wall_us());
      pending_quarantine_.push_back({id, "data", "job " + std::to_string(r.job_id) + ": result before its cause",
                                     Bytes(m.payload.begin(), m.payload.end()), wall_us()});
      return;  // not counted: the copy times out and goes elsewhere
    }
  }
  jobs_.on_result(id, r, mono_us(), wall_us());
}

void Gateway::check_contexts() {
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

void Gateway::conflict(const std::string& type, int priority, const std::string& node, const std::string& detail,
                       std::int64_t now_us, bool throttle) {
  // One entry per node and type every 10 s: a flood of bad frames is counted
  // by the drop counters, not written row by row.
  auto& last = last_conflict_us_[type + "/" + node];
  if (throttle && last != 0 && now_us - last < 10'000'000) return;
  last = now_us;
  if (last_conflict_us_.size() > 100'000) last_conflict_us_.clear();
  pending_conflicts_.push_back({type, priority, node, detail, wall_us(), suggestion(type), 0, "", ""});
  log::warn("conflict", type + " (priority " + std::to_string(priority) + ") " + node + ": " + log_safe(detail, 200));
  if (priority >= 3) alert(pending_conflicts_.back());
}

namespace {

}  // namespace

void Gateway::alert(const StoredConflict& c) {
  // Priority 3 alerts the sector, 4 the operator (and runs the hook).
  const NodeEntry* n = registry_.find(c.node);
  const std::string cluster = n ? n->cluster : "";
  const std::string* sector = breakers_.sector_of(cluster);
  const std::string scope = c.priority >= 4 ? "operator" : "sector";
  const std::string suggested = c.suggested.empty() ? suggestion(c.type) : c.suggested;
  ++alerts_;
  {
    auto env = make_envelope("", 0, 0, 0);
    env->which_message = kairos_v1_Envelope_alert_tag;
    auto& a = env->message.alert;
    set_string(a.type, c.type);
    a.priority = static_cast<std::uint32_t>(c.priority);
    set_string(a.node, c.node);
    set_string(a.cluster, cluster);
    set_string(a.sector, sector ? *sector : "");
    set_string(a.scope, scope);
    set_string(a.detail, c.detail.substr(0, 256));
    set_string(a.suggested, suggested.substr(0, 160));
    auto t = alert_topic(config_.mesh);
    // Sent after the conflict is committed (commit_durable); QoS 1 through
    // the link's backlog while the broker is away.
    pending_publish_.push_back({t, signer_.seal(t, *env, keys_.operator_key(), wall_us()), false});
  }
  if (c.priority >= 4 && hook_.configured())
    hook_.run({{"KAIROS_ALERT_TYPE", c.type},
               {"KAIROS_ALERT_PRIORITY", std::to_string(c.priority)},
               {"KAIROS_ALERT_NODE", c.node},
               {"KAIROS_ALERT_CLUSTER", cluster},
               {"KAIROS_ALERT_SECTOR", sector ? *sector : ""},
               {"KAIROS_ALERT_DETAIL", c.detail},
               {"KAIROS_ALERT_SUGGESTED", suggested},
               {"KAIROS_MESH", config_.mesh}},
              mono_us());
}

void Gateway::quarantine(const std::string& id, const std::string& why) {
  // docs/DESIGN.md 5.6: a CAT-1 breach quarantines the node: no commands, no work,
  // until an operator's heal.
  NodeEntry* n = registry_.find(id);
  if (!n || n->quarantined) return;
  registry_.set_quarantined(*n, true, why);
  pending_quarantine_.push_back({id, "quarantine", why, {}, wall_us()});
  log::warn("registry", id + " QUARANTINED (" + why + "); kairosctl heal " + id + " lifts it");
}

}  // namespace kairos::gw

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

}  // namespace

void Gateway::drop(DropReason reason, const std::string& topic, const std::string& detail, std::int64_t now_us) {
  drops_.add(reason);
  wire_log_.write(log::Level::warn, "ingest",
                  "dropped frame on " + log_safe(topic) + ": " + std::string(to_string(reason)) + " (" +
                      log_safe(detail, 160) + ")",
                  now_us);
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
      escalation_.conflict("TEMPORAL_PARADOX", 4, env.sender,
               "sequence regression on " + m.topic + ": seq " + std::to_string(env.seq) + " after " +
                   std::to_string(guard_.high_water(env.sender)),
               now_us);
      escalation_.keep_data(env.sender, "sequence regression", m.payload);
    }
    if (*verdict.drop == DropReason::stale_session && !m.retained && !offline_state)
      escalation_.duplicate_identity(env.sender, env.session_id, now_us);
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
  const JobCopy* copy = jobs_.book().copy(r.job_id, id, r.attempt);
  if (n && copy && n->clock.count() > 0) {
    // An effect stamped before its cause: the result says it left the node
    // before the job reached it, beyond what the clock estimate allows.
    const double stamped_gw = static_cast<double>(env.sent_at_us) - n->clock.offset_us();
    const double slack_us = n->clock.rtt_us() / 2 + 4 * n->clock.jitter_us() + 5'000;
    if (stamped_gw < static_cast<double>(copy->sent_wall_us) - slack_us) {
      escalation_.conflict("TEMPORAL_PARADOX", 4, id,
               "job " + std::to_string(r.job_id) + ": result stamped " +
                   std::to_string(static_cast<long long>((static_cast<double>(copy->sent_wall_us) - stamped_gw) / 1000)) +
                   " ms before the job was sent",
               wall_us());
      escalation_.keep_data(id, "job " + std::to_string(r.job_id) + ": result before its cause", m.payload);
      return;  // not counted: the copy times out and goes elsewhere
    }
  }
  jobs_.on_result(id, r);
}

void Gateway::on_ball_head(const Inbound& m, std::int64_t now_us) {
  auto opened = open(m.topic, m.payload, keys_.operator_key());
  if (!opened) return drop(*opened.drop, m.topic, opened.detail, now_us);
  if (!kind_matches(TopicKind::ball_head, *opened.env))
    return drop(DropReason::kind_mismatch, m.topic, "not a Ball head", now_us);
  plays_.on_head(opened.env->message.ball_head);
}

}  // namespace kairos::gw

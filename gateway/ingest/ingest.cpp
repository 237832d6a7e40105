#include "gateway/ingest/ingest.h"

#include <cstdio>

#include "common/core/utf8.h"
#include "common/io/clock.h"

namespace kairos::gw {

namespace {

constexpr std::int64_t kSessionSaveUs = 10'000'000;  // phase and heartbeat high waters saved this often

}  // namespace

Ingest::Ingest(const GatewayConfig& config, KeyBook& keys, Registry& registry, Escalation& escalation, Outbox& outbox,
               Ports ports)
    : config_(config), keys_(keys), registry_(registry), escalation_(escalation), outbox_(outbox),
      ports_(std::move(ports)) {
  wall_minus_mono_us_ = wall_us() - mono_us();
  // Session ids are ordered (docs/DESIGN.md 4); random ones of an older version
  // (above 2^56) say nothing about order and are not restored.
  for (const auto& s : outbox_.store().load_sessions())
    if (s.session < (std::uint64_t{1} << 56)) guard_.restore(s.sender, s.session, s.high_water);
}

void Ingest::drop(DropReason reason, const std::string& topic, const std::string& detail, std::int64_t now_us) {
  drops_.add(reason);
  wire_log_.write(log::Level::warn, "ingest",
                  "dropped frame on " + log_safe(topic) + ": " + std::string(to_string(reason)) + " (" +
                      log_safe(detail, 160) + ")",
                  now_us);
}

void Ingest::link_dropped(std::uint64_t total, std::int64_t now_us) {
  if (total <= queue_drops_seen_) return;
  drops_.by_reason[static_cast<std::size_t>(DropReason::queue_full)] += total - queue_drops_seen_;
  wire_log_.write(log::Level::warn, "ingest",
                  std::to_string(total - queue_drops_seen_) + " messages dropped unread: queue_full (the loop fell behind)",
                  now_us);
  queue_drops_seen_ = total;
}

void Ingest::node_frame(const Topic& t, const Inbound& m, std::int64_t now_us) {
  // An empty live message on a retained topic is the broker telling of a
  // retained frame cleared (kairosctl forget clears a node's): not a frame.
  if (m.payload.empty() && !m.retained && (t.kind == TopicKind::birth || t.kind == TopicKind::state)) return;
  auto found = slots_.find(t.name);
  Slot fresh;
  Slot* slot = found != slots_.end() ? &found->second : &fresh;
  // Under the node's key, or one of a key rotation.
  auto opened = open(t, m, slot->keys, now_us);
  if (!opened) return;  // dropped, counted and logged there
  if (slot == &fresh) slot = &slots_.emplace(t.name, fresh).first->second;
  const Envelope& env = *opened;
  if (t.name != env.sender)
    return drop(DropReason::sender_mismatch, m.topic, "sender '" + std::string(env.sender) + "'", now_us);
  if (!kind_matches(t.kind, env)) return drop(DropReason::kind_mismatch, m.topic, "message type", now_us);
  if (t.kind == TopicKind::birth && t.cluster != env.message.birth.cluster)
    return drop(DropReason::sender_mismatch, m.topic, "birth names cluster '" + std::string(env.message.birth.cluster) + "'", now_us);
  if (!slot->node) slot->node = registry_.find(t.name);
  NodeEntry* known = slot->node;
  if (t.kind != TopicKind::birth && known && known->cluster != t.cluster && known->session == env.session_id)
    return drop(DropReason::sender_mismatch, m.topic, "node is in cluster " + known->cluster, now_us);
  if (!in_order(t, m, env, *slot, now_us)) return;
  ++accepted_;
  apply(t, m, env, known, now_us);
  if (!slot->node && t.kind == TopicKind::birth) slot->node = registry_.find(t.name);
}

EnvelopePtr Ingest::open(const Topic& t, const Inbound& m, NodeKeys*& keys, std::int64_t now_us) {
  auto o = keys_.open(t.name, keys, t.kind, m.topic, m.payload, now_us);
  if (!o.known) {
    drop(DropReason::unknown_sender, m.topic, "no key for " + t.name, now_us);
    return nullptr;
  }
  if (o.frame) {
    if (o.promoted) {
      log::info("keys", t.name + ": key generation " + std::to_string(o.generation) +
                            " confirmed (its first frame, seq " + std::to_string(o.frame.env->seq) + " on " +
                            log_safe(m.topic) + "); generation " + std::to_string(o.generation - 1) +
                            " is refused for the node's later frames");
      ports_.rotated(t.name);
    }
    return std::move(o.frame.env);
  }
  if (o.retired_refused) {
    // Refused, but no breach: whoever kept the retired key (a copy, a node
    // restored from an old backup) could otherwise quarantine the node with
    // it. The operator hears of it: that key should exist nowhere any more.
    if (!m.retained) escalation_.conflict("RETIRED_KEY", 4, t.name, "frame on " + m.topic + " " + o.frame.detail, now_us);
    drop(DropReason::bad_mac, m.topic, o.frame.detail, now_us);
    return nullptr;
  }
  if (*o.frame.drop == DropReason::bad_mac) {
    // A frame on a known node's topic that fails that node's MAC: a forged or
    // altered frame, or a node whose key no longer matches (docs/DESIGN.md 5.6).
    escalation_.conflict("HASH_MISMATCH", 4, t.name, "frame on " + m.topic + " failed its MAC", now_us);
    escalation_.quarantine(t.name, "HASH_MISMATCH: a frame on its topic failed its MAC");
  }
  drop(*o.frame.drop, m.topic, o.frame.detail, now_us);
  return nullptr;
}

bool Ingest::in_order(const Topic& t, const Inbound& m, const Envelope& env, Slot& slot, std::int64_t now_us) {
  NodeEntry* known = slot.node;
  bool offline_state = t.kind == TopicKind::state && !env.message.state.online;
  auto verdict = offline_state
                     ? guard_.check_will(env.sender, env.session_id, env.seq)
                     : guard_.check(env.sender, slot.session, env.session_id, env.seq, t.kind == TopicKind::birth);
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
    if (!reread) {
      drop(*verdict.drop, m.topic, "seq " + std::to_string(env.seq), now_us);
      return false;
    }
    // Already applied by this process: the copy says nothing new about liveness.
    if (known && known->heard) return false;
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
  return true;
}

void Ingest::apply(const Topic& t, const Inbound& m, const Envelope& env, NodeEntry* known, std::int64_t now_us) {
  const std::string& id = t.name;  // the sender, checked
  switch (t.kind) {
    case TopicKind::birth: {
      const auto* before = registry_.find(id);
      bool was_online = before && before->online;
      auto& n = registry_.on_birth(id, t.cluster, env.session_id, env.message.birth, now_us,
                                   static_cast<std::int64_t>(config_.heartbeat_period_s * 1e6));
      n.heard = n.heard || !m.retained;
      n.session_saved_us = now_us;  // the birth's session is marked in in_order
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
      one_way(*known, env, m);
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
      if (env.historical) {
        ++known->historical_phases;  // late (store and forward): history, not its present phase
      } else {
        one_way(*known, env, m);
        registry_.on_phase(*known, env.message.phase, now_us);
      }
      break;
    case TopicKind::ack:
      ports_.ack(id, env.message.ack, wall_us() - (mono_us() - m.received_mono_us));
      break;
    case TopicKind::result:
      ports_.result(id, env, m.payload);
      break;
    case TopicKind::event: {
      const auto& e = env.message.event;
      pending_events_.push_back({id, env.session_id, env.seq, static_cast<int>(e.kind), e.source, e.detail, env.sent_at_us,
                                 env.historical, wall_us()});
      if (known) ++known->events;
      if (e.kind == kairos_v1_EventKind_CAT1 || e.kind == kairos_v1_EventKind_CAT2)
        wire_log_.write(log::Level::info, "events",
                        id + ": " + (e.kind == kairos_v1_EventKind_CAT1 ? "CAT-1 " : "CAT-2 ") + log_safe(e.source) +
                            ": " + log_safe(e.detail, 160) + (env.historical ? " (late)" : ""),
                        now_us);
      break;
    }
    default:
      break;
  }
  if (ports_.applied && (t.kind == TopicKind::state || t.kind == TopicKind::hb || t.kind == TopicKind::phase ||
                         t.kind == TopicKind::birth)) {
    // A birth made or refreshed the entry: found again (known may be null before it).
    NodeEntry* n = t.kind == TopicKind::birth ? registry_.find(id) : known;
    if (n) ports_.applied(*n, t.kind, env);
  }
}

void Ingest::forget(const std::string& id) {
  slots_.erase(id);
  dirty_nodes_.erase(id);
}

void Ingest::one_way(NodeEntry& n, const Envelope& env, const Inbound& m) {
  if (m.retained || env.sent_at_us <= 0) return;
  const std::int64_t received = m.received_mono_us + wall_minus_mono_us_;
  n.floors.outbound(received, static_cast<double>(received - env.sent_at_us));
  if (n.clock.count() == 0) return;
  const double sent_gateway_us = static_cast<double>(env.sent_at_us) - n.offset_at_us(received);
  n.one_way.add(static_cast<double>(received) - sent_gateway_us);
}

bool Ingest::flush() {
  wall_minus_mono_us_ = wall_us() - mono_us();
  if (dirty_sessions_.empty() && dirty_nodes_.empty() && pending_events_.empty()) return false;
  if (outbox_.paused(mono_us())) return false;
  const std::int64_t now_wall = wall_us();
  bool ok = outbox_.transaction([&](Store& store) {
    for (const auto& id : dirty_nodes_) {
      const NodeEntry* n = registry_.find(id);
      if (!n) continue;
      StoredNode s;
      s.id = n->id;
      s.cluster = n->cluster;
      s.board = n->board;
      s.device_class = n->device_class;
      s.firmware = n->firmware;
      s.context_hash = n->context_hash;
      s.capabilities = n->capabilities;
      s.session = n->session;
      s.online = n->online;
      s.last_seen_wall_us = now_wall;
      store.upsert_node(s);
    }
    for (const auto& e : pending_events_) store.append_event(e);
    for (const auto& sender : dirty_sessions_)
      if (auto s = guard_.current_session(sender)) store.save_session({sender, *s, guard_.high_water(sender)}, now_wall);
  }, mono_us());
  if (!ok) return false;
  dirty_nodes_.clear();
  dirty_sessions_.clear();
  pending_events_.clear();
  return true;
}

}  // namespace kairos::gw

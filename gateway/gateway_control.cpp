// The control RPC (docs/DESIGN.md 5.8, docs/PROTOCOL.md): operator requests checked,
// remembered and answered; status, nodes, heal, schedule.
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

ReplyTo reply_to(const Inbound& m) { return {m.response_topic, m.correlation, operator_of(m.topic)}; }

const char* restrictions_of(kairos_v1_MeshMode m) {
  switch (m) {
    case kairos_v1_MeshMode_DEGRADED_MODERATE:
      return "no scatter beyond 1000 nodes; only healthy sectors are targeted";
    case kairos_v1_MeshMode_DEGRADED_SEVERE:
      return "mesh-wide operations need --confirm; no scatter beyond 1000 nodes; healthy sectors only";
    case kairos_v1_MeshMode_EMERGENCY:
      return "automation halted (jobs wait); every operation but freeze needs --confirm";
    default:
      return "";
  }
}

constexpr std::uint32_t kMaxPage = 40;

}  // namespace

void Gateway::heal(const Inbound& m, std::uint64_t request_id, const kairos_v1_HealRequest& req) {
  auto resp = new_response(request_id);
  NodeEntry* n = registry_.find(req.node);
  if (!n) {
    set_string(resp->error, "no node '" + std::string(req.node) + "' (kairosctl nodes lists them)");
    return answer(m, *resp);
  }
  resp->ok = true;
  resp->which_reply = kairos_v1_ControlResponse_heal_tag;
  auto& h = resp->reply.heal;
  set_string(h.node, n->id);
  h.was_quarantined = n->quarantined;
  set_string(h.reason, n->quarantine_reason.substr(0, 128));
  const std::string by = operator_of(m.topic);
  commit_durable();
  store_.begin();
  if (n->quarantined) store_.append_quarantine(n->id, "heal", "operator heal", {}, wall_us(), by);
  int closed = store_.resolve_node(n->id, {"HASH_MISMATCH", "TEMPORAL_PARADOX"}, "healed by the operator", wall_us(), by);
  store_.commit();
  if (closed) log::info("conflict", std::to_string(closed) + " resolution tasks of " + n->id + " closed by heal");
  registry_.set_quarantined(*n, false, "");
  h.sent = send_command(*n, 30'000, [](kairos_v1_Command& cmd) {
    cmd.which_action = kairos_v1_Command_heal_tag;
    cmd.action.heal = true;
  }) != 0;
  log::info("registry", n->id + " healed by operator " + by + (h.was_quarantined ? ": quarantine lifted" : ""));
  answer(m, *resp);
}

void Gateway::on_ctl_request(const Inbound& m, std::int64_t now_us) {
  // The key comes from the topic: an operator's own, or the shared one (docs/PROTOCOL.md, Operators).
  const Key* key = request_key(*parse_topic(m.topic), m, now_us);
  if (!key) return;
  auto opened = open(m.topic, m.payload, *key);
  if (!opened) return drop(*opened.drop, m.topic, opened.detail, now_us);
  const Envelope& env = *opened.env;
  if (!kind_matches(TopicKind::ctl_req, env)) return drop(DropReason::kind_mismatch, m.topic, "not a request", now_us);
  double age_s = std::abs(static_cast<double>(wall_us() - env.sent_at_us)) / 1e6;
  if (age_s > config_.ctl_max_age_s)
    return drop(DropReason::replay, m.topic, "request stamped " + std::to_string(static_cast<long>(age_s)) + " s away", now_us);
  if (m.response_topic != ctl_resp_topic(config_.mesh, env.sender))
    return drop(DropReason::sender_mismatch, m.topic, "response topic '" + m.response_topic + "'", now_us);
  const std::string asker = operator_of(m.topic);
  if (operators_.revoked(asker)) return refuse_revoked(m, env, asker, now_us);
  if (!operators_.bind_client(env.sender, asker))
    return drop(DropReason::sender_mismatch, m.topic,
                "client " + std::string(env.sender) + " speaks for another operator", now_us);
  // Every accepted request is remembered on disk for as long as its age
  // lets it pass: a replay is refused after a restart and whatever the
  // number of clients (docs/DESIGN.md 5.8).
  // A request that cannot be recorded is refused, unless it only reads.
  const auto& verb = env.message.ctl_request;
  const bool reads_only = verb.which_verb == kairos_v1_ControlRequest_status_tag ||
                          verb.which_verb == kairos_v1_ControlRequest_nodes_tag ||
                          verb.which_verb == kairos_v1_ControlRequest_breakers_tag ||
                          verb.which_verb == kairos_v1_ControlRequest_jobs_tag ||
                          (verb.which_verb == kairos_v1_ControlRequest_conflicts_tag);
  bool remembered = false, replayed = false;
  if (!outbox_.paused(mono_us()))
    remembered = outbox_.transaction([&](Store& store) {
      replayed = !store.remember_request(env.sender, env.session_id, env.seq, env.sent_at_us);
      if (!replayed) record_request(asker, env.message.ctl_request);
    }, mono_us());
  if (replayed)
    return drop(DropReason::replay, m.topic, "request seq " + std::to_string(env.seq) + " already answered", now_us);
  if (!remembered && !reads_only) {
    auto resp = new_response(verb.request_id);
    resp->ok = false;
    set_string(resp->error, "refused: the gateway cannot write its database (" + outbox_.error() +
                                "): it takes nothing that must be recorded until it can; see kairosctl status");
    return answer(m.response_topic, m.correlation, *resp);
  }
  ++accepted_;

  // The mesh as it is now, not as of the last sync: a node back a moment
  // ago counts toward the mode a verb is judged by.
  sync(now_us);
  // What the answer may report (a job done, a conflict) is on disk first.
  commit_durable();
  const auto& req = env.message.ctl_request;
  auto resp = new_response(req.request_id);
  resp->ok = true;
  switch (req.which_verb) {
    case kairos_v1_ControlRequest_status_tag:
      resp->which_reply = kairos_v1_ControlResponse_status_tag;
      fill_status(resp->reply.status, now_us);
      resp->reply.status.conflicts_last_hour = store_.conflicts_since(wall_us() - 3'600'000'000LL);
      break;
    case kairos_v1_ControlRequest_nodes_tag:
      resp->which_reply = kairos_v1_ControlResponse_nodes_tag;
      fill_nodes(req.verb.nodes, resp->reply.nodes, now_us);
      break;
    case kairos_v1_ControlRequest_schedule_tag:
      return schedules_.schedule(reply_to(m), req.request_id, req.verb.schedule);  // answered when it ends
    case kairos_v1_ControlRequest_heal_tag:
      return heal(m, req.request_id, req.verb.heal);
    case kairos_v1_ControlRequest_rotate_key_tag:
      return rotate_key(m, req.request_id, req.verb.rotate_key);  // answered when confirmed or abandoned
    case kairos_v1_ControlRequest_delegate_tag:
      return jobs_.delegate(reply_to(m), req.request_id, req.verb.delegate);
    case kairos_v1_ControlRequest_jobs_tag:
      return jobs_.jobs(reply_to(m), req.request_id, req.verb.jobs);
    case kairos_v1_ControlRequest_breakers_tag:
      return breakers_verb(m, req.request_id);
    case kairos_v1_ControlRequest_broadcast_tag: {
      const auto& b = req.verb.broadcast;
      kairos_v1_Command action = kairos_v1_Command_init_zero;
      action.which_action = kairos_v1_Command_notice_tag;
      set_string(action.action.notice, b.text);
      return schedules_.command(reply_to(m), req.request_id, Schedules::Verb::broadcast, b.targets, action, b.ack,
                                b.window_ms, b.confirm);
    }
    case kairos_v1_ControlRequest_freeze_tag: {
      const auto& f = req.verb.freeze;
      kairos_v1_Command action = kairos_v1_Command_init_zero;
      action.which_action = f.thaw ? kairos_v1_Command_thaw_tag : kairos_v1_Command_freeze_tag;
      if (f.thaw) action.action.thaw = true;
      else action.action.freeze = true;
      return schedules_.command(reply_to(m), req.request_id, f.thaw ? Schedules::Verb::thaw : Schedules::Verb::freeze,
                                f.scope, action, true, f.window_ms, f.confirm);
    }
    case kairos_v1_ControlRequest_ask_tag:
      return jobs_.ask(reply_to(m), req.request_id, req.verb.ask);
    case kairos_v1_ControlRequest_ball_tag:
      return plays_.verb(reply_to(m), req.request_id, req.verb.ball);
    case kairos_v1_ControlRequest_operators_tag:
      return operators_verb(m, req.request_id, req.verb.operators);
    case kairos_v1_ControlRequest_conflicts_tag: {
      resp->which_reply = kairos_v1_ControlResponse_conflicts_tag;
      auto& list = resp->reply.conflicts;
      std::uint32_t limit = req.verb.conflicts.limit ? std::min(req.verb.conflicts.limit, 20u) : 20u;
      list.total = store_.conflict_count();
      list.open_tasks = store_.open_task_count();
      auto rows = req.verb.conflicts.queue ? store_.open_tasks(limit) : store_.conflicts(limit);
      for (const auto& c : rows) fill_conflict(c, list.entries[list.entries_count++]);
      break;
    }
    case kairos_v1_ControlRequest_resolve_tag: {
      const auto& q = req.verb.resolve;
      std::string note = q.note[0] ? std::string("operator: ") + q.note : "operator";
      store_.begin();
      bool done = store_.resolve_task(q.task, note, wall_us(), asker);
      store_.commit();
      if (!done) {
        resp->ok = false;
        set_string(resp->error, "no open resolution task " + std::to_string(q.task) +
                                    " (kairosctl conflicts --queue lists them)");
        break;
      }
      log::info("conflict", "task " + std::to_string(q.task) + " resolved by operator " + asker);
      resp->which_reply = kairos_v1_ControlResponse_conflicts_tag;
      resp->reply.conflicts.total = store_.conflict_count();
      resp->reply.conflicts.open_tasks = store_.open_task_count();
      break;
    }
    default:
      resp->ok = false;
      set_string(resp->error, "unknown verb: this gateway does not support it (upgrade the gateway)");
  }
  answer(m, *resp);
}

void Gateway::fill_conflict(const StoredConflict& c, kairos_v1_ConflictEntry& e) const {
  set_string(e.type, c.type);
  e.priority = static_cast<std::uint32_t>(c.priority);
  set_string(e.node, c.node);
  set_string(e.detail, c.detail.substr(0, 256));
  e.at_us = c.at_wall_us;
  set_string(e.suggested, c.suggested.substr(0, 160));
  e.task = c.task;
  set_string(e.task_state, c.task_state);
  set_string(e.resolution, c.resolution.substr(0, 128));
  set_string(e.resolved_by, c.resolved_by);
}

void Gateway::answer(const std::string& response_topic, const Bytes& correlation, kairos_v1_ControlResponse& resp) {
  auto env = make_envelope("", 0, 0, 0);
  env->which_message = kairos_v1_Envelope_ctl_response_tag;
  env->message.ctl_response = resp;
  PublishProps props;
  props.correlation = correlation;
  // Signed with the key the request was checked with (docs/PROTOCOL.md, Operators).
  const Key& key = operators_.response_key(response_topic, mono_us());
  link_->publish(response_topic, signer_.seal(response_topic, *env, key, wall_us()), 1, false, props);
}

void Gateway::fill_status(kairos_v1_StatusReply& r, std::int64_t now_us) const {
  set_string(r.gateway, config_.id);
  set_string(r.storage_error, outbox_.error());
  set_string(r.mesh, config_.mesh);
  r.nodes_known = static_cast<std::uint32_t>(registry_.nodes().size());
  r.nodes_online = static_cast<std::uint32_t>(registry_.online_count());
  r.clusters = static_cast<std::uint32_t>(registry_.cluster_count());
  r.has_mesh_state = true;
  fill_mesh_state(r.mesh_state);
  for (int i = 0; i < static_cast<int>(DropReason::count_) && r.drops_count < 16; ++i) {
    auto reason = static_cast<DropReason>(i);
    if (!drops_[reason]) continue;
    auto& d = r.drops[r.drops_count++];
    set_string(d.reason, to_string(reason));
    d.count = drops_[reason];
  }
  r.frames_accepted = accepted_;
  r.uptime_ms = static_cast<std::uint64_t>((now_us - start_us_) / 1000);
  // The status box (docs/DESIGN.md 5.8).
  r.sectors_total = static_cast<std::uint32_t>(config_.sectors.size());
  for (const auto& [sector, members] : config_.sectors)
    r.sectors_healthy += std::all_of(members.begin(), members.end(), [&](const std::string& c) { return escalation_.breakers().closed(c); });
  double sum = 0;
  std::size_t counted = 0;
  for (const auto& [id, n] : registry_.nodes())
    if (n.online && n.clock.count() > 0) {
      sum += n.impedance(now_us).score;
      ++counted;
    }
  r.mean_impedance = counted ? static_cast<float>(sum / static_cast<double>(counted)) : 0.0f;
  set_string(r.last_cascade, schedules_.last_cascade());
  r.active_rate = static_cast<float>(escalation_.active_rate());
  for (const auto& v : escalation_.breakers().view(now_us)) r.breakers_open += v.state != BreakerState::closed;
  r.jobs_running = jobs_.book().counts().running;
  r.jobs_queued = jobs_.book().counts().queued;
  r.alerts = escalation_.alerts();
  set_string(r.restrictions, restrictions_of(escalation_.mode()));
}

void Gateway::fill_nodes(const kairos_v1_NodesRequest& q, kairos_v1_NodeList& r, std::int64_t now_us) const {
  // A page costs its own nodes, not the ones before it: from the node
  // after q.after (a cursor), and the total from counts kept up to date.
  std::uint32_t limit = q.limit ? std::min(q.limit, kMaxPage) : kMaxPage;
  const std::string state = q.state;
  auto matches = [&](const NodeEntry& n) {
    if (q.cluster[0] && n.cluster != q.cluster) return false;
    if (state == "online" && !n.online) return false;
    if (state == "offline" && n.online) return false;
    return true;
  };
  const auto& all = registry_.nodes();
  std::uint32_t total = 0;
  if (q.id[0]) {
    const NodeEntry* one = registry_.find(q.id);
    total = one && matches(*one) ? 1 : 0;
  } else if (q.cluster[0]) {
    for (const NodeEntry* n : registry_.members(q.cluster)) total += matches(*n);
  } else {
    total = static_cast<std::uint32_t>(state == "online"    ? registry_.online_count()
                                       : state == "offline" ? all.size() - registry_.online_count()
                                                            : all.size());
  }
  r.total = total;
  r.offset = q.after[0] ? 0 : q.offset;
  std::uint32_t skip = r.offset;
  auto it = q.id[0] ? all.find(q.id) : q.after[0] ? all.upper_bound(q.after) : all.begin();
  for (; it != all.end() && r.nodes_count < limit; ++it) {
    const NodeEntry& n = it->second;
    if (q.id[0] && n.id != q.id) break;
    if (!matches(n)) continue;
    if (skip > 0) {
      --skip;
      continue;
    }
    auto& o = r.nodes[r.nodes_count++];
    set_string(o.id, n.id);
    set_string(o.cluster, n.cluster);
    set_string(o.board, n.board);
    o.device_class = n.device_class;
    o.status = !n.online ? kairos_v1_NodeStatus_OFFLINE : n.quarantined ? kairos_v1_NodeStatus_QUARANTINED : n.status;
    o.online = n.online;
    o.has_z = true;
    o.z.re = static_cast<float>(n.z.real());
    o.z.im = static_cast<float>(n.z.imag());
    o.c = static_cast<float>(n.c);
    o.phase_valid = n.phase_valid;
    o.last_seen_ms = n.last_seen_us ? static_cast<std::uint32_t>(std::min<std::int64_t>((now_us - n.last_seen_us) / 1000, UINT32_MAX)) : UINT32_MAX;
    set_string(o.firmware_version, n.firmware);
    o.context_hash.size = static_cast<pb_size_t>(std::min<std::size_t>(n.context_hash.size(), 32));
    std::copy_n(n.context_hash.begin(), o.context_hash.size, o.context_hash.bytes);
    o.session_id = n.session;
    o.historical_phases = n.historical_phases;
    o.events = n.events;
    auto imp = n.impedance(now_us);
    o.clock_samples = static_cast<std::uint32_t>(n.clock.count());
    o.offset_ms = static_cast<float>(n.clock.offset_us() / 1000.0);
    o.rtt_ms = static_cast<float>(n.clock.rtt_us() / 1000.0);
    o.jitter_ms = static_cast<float>(n.clock.jitter_us() / 1000.0);
    o.processing_ms = static_cast<float>(imp.processing_est_ms);
    o.impedance = static_cast<std::uint32_t>(imp.score);
    o.drift = static_cast<float>(imp.drift);
    o.reliability = static_cast<float>(n.reliability.value());
    o.confidence = static_cast<float>(imp.confidence);
    o.degraded = imp.degraded;
    o.unstable = imp.unstable;
    o.queue_depth = n.queue_depth;
    o.calibration_ms = static_cast<float>(imp.calibration_ms);
    o.lead_ms = static_cast<std::uint32_t>(std::lround(imp.lead_ms));
    o.clock_shifts = n.clock.shifts();
  }
}

void Gateway::breakers_verb(const Inbound& m, std::uint64_t request_id) {
  auto resp = new_response(request_id);
  resp->ok = true;
  resp->which_reply = kairos_v1_ControlResponse_breakers_tag;
  auto& l = resp->reply.breakers;
  const std::int64_t now = mono_us();
  const std::int64_t wall = wall_us();
  auto views = escalation_.breakers().view(now);
  l.total = static_cast<std::uint32_t>(views.size());
  for (const auto& v : views) {
    if (v.state != BreakerState::closed) ++l.open;
    if (l.breakers_count >= 40) continue;
    auto& b = l.breakers[l.breakers_count++];
    set_string(b.scope, v.scope);
    set_string(b.name, v.name);
    set_string(b.state, to_string(v.state));
    b.failures = static_cast<std::uint32_t>(v.failures);
    b.wait_s = static_cast<std::uint32_t>(v.wait_us / 1'000'000);
    b.probe_at_us = v.state == BreakerState::open && v.probe_at_us ? wall + (v.probe_at_us - now) : 0;
    b.opened = static_cast<std::uint32_t>(v.opened);
  }
  answer(m, *resp);
}

}  // namespace kairos::gw

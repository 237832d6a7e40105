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
  if (!storage_paused(mono_us())) {
    try {
      store_.begin();
      replayed = !store_.remember_request(env.sender, env.session_id, env.seq, env.sent_at_us);
      if (!replayed) record_request(asker, env.message.ctl_request);
      store_.commit();
      remembered = true;
      if (!storage_error_.empty()) storage_recovered();
    } catch (const std::exception& e) {
      store_.rollback();
      storage_failed(e.what());
    }
  }
  if (replayed)
    return drop(DropReason::replay, m.topic, "request seq " + std::to_string(env.seq) + " already answered", now_us);
  if (!remembered && !reads_only) {
    auto resp = new_response(verb.request_id);
    resp->ok = false;
    set_string(resp->error, "refused: the gateway cannot write its database (" + storage_error_ +
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
      return start_schedule(m, req.request_id, req.verb.schedule);  // answered when it ends
    case kairos_v1_ControlRequest_heal_tag:
      return heal(m, req.request_id, req.verb.heal);
    case kairos_v1_ControlRequest_rotate_key_tag:
      return rotate_key(m, req.request_id, req.verb.rotate_key);  // answered when confirmed or abandoned
    case kairos_v1_ControlRequest_delegate_tag:
      return delegate(m, req.request_id, req.verb.delegate);
    case kairos_v1_ControlRequest_jobs_tag:
      return jobs_verb(m, req.request_id, req.verb.jobs);
    case kairos_v1_ControlRequest_breakers_tag:
      return breakers_verb(m, req.request_id);
    case kairos_v1_ControlRequest_broadcast_tag: {
      const auto& b = req.verb.broadcast;
      kairos_v1_Command action = kairos_v1_Command_init_zero;
      action.which_action = kairos_v1_Command_notice_tag;
      set_string(action.action.notice, b.text);
      return command_verb(m, req.request_id, Verb::broadcast, b.targets, action, b.ack, b.window_ms, b.confirm);
    }
    case kairos_v1_ControlRequest_freeze_tag: {
      const auto& f = req.verb.freeze;
      kairos_v1_Command action = kairos_v1_Command_init_zero;
      action.which_action = f.thaw ? kairos_v1_Command_thaw_tag : kairos_v1_Command_freeze_tag;
      if (f.thaw) action.action.thaw = true;
      else action.action.freeze = true;
      return command_verb(m, req.request_id, f.thaw ? Verb::thaw : Verb::freeze, f.scope, action, true, f.window_ms,
                          f.confirm);
    }
    case kairos_v1_ControlRequest_ask_tag:
      return ask(m, req.request_id, req.verb.ask);
    case kairos_v1_ControlRequest_ball_tag:
      return ball_verb(m, req.request_id, req.verb.ball);
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
  set_string(r.storage_error, storage_error_);
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
    r.sectors_healthy += std::all_of(members.begin(), members.end(), [&](const std::string& c) { return breakers_.closed(c); });
  double sum = 0;
  std::size_t counted = 0;
  for (const auto& [id, n] : registry_.nodes())
    if (n.online && n.clock.count() > 0) {
      sum += n.impedance(now_us).score;
      ++counted;
    }
  r.mean_impedance = counted ? static_cast<float>(sum / static_cast<double>(counted)) : 0.0f;
  set_string(r.last_cascade, last_cascade_);
  r.active_rate = static_cast<float>(active_rate_);
  for (const auto& v : breakers_.view(now_us)) r.breakers_open += v.state != BreakerState::closed;
  r.jobs_running = jobs_.counts().running;
  r.jobs_queued = jobs_.counts().queued;
  r.alerts = alerts_;
  set_string(r.restrictions, restrictions_of(mode_));
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

std::optional<TargetView> Gateway::target_view(const std::string& id) const {
  const NodeEntry* n = registry_.find(id);
  if (!n) return std::nullopt;
  TargetView v;
  v.cluster = n->cluster;
  v.device_class = n->device_class;
  v.online = n->online;
  v.quarantined = n->quarantined || n->status == kairos_v1_NodeStatus_QUARANTINED;
  v.breaker_open = !breakers_.closed(n->cluster);
  v.synced = n->clock.count() > 0;
  v.lead_us = n->impedance(mono_us()).lead_ms * 1000.0;
  v.offset_us = n->clock.offset_us();
  return v;
}

std::vector<std::string> Gateway::select_targets(const std::string& selector, std::string& error) const {
  std::vector<std::string> ids;
  auto match = [&](auto pred) {
    for (const auto& [id, n] : registry_.nodes())
      if (n.online && pred(n)) ids.push_back(id);
  };
  if (selector == "all") {
    match([](const NodeEntry&) { return true; });
  } else if (selector.rfind("cluster:", 0) == 0) {
    auto c = selector.substr(8);
    match([&](const NodeEntry& n) { return n.cluster == c; });
  } else if (selector.rfind("class:", 0) == 0) {
    auto c = selector.substr(6);
    match([&](const NodeEntry& n) { return class_letter(n.device_class) == c; });
  } else {
    // Named nodes: included even when offline or unknown (they are skipped, and say why).
    for (auto& id : split_list(selector)) {
      if (!valid_name(id)) {
        error = "'" + id + "' is not a node id";
        return {};
      }
      ids.push_back(std::move(id));
    }
  }
  if (ids.empty() && error.empty()) error = "no online node matches '" + selector + "'";
  return ids;
}

void Gateway::start_schedule(const Inbound& m, std::uint64_t request_id, const kairos_v1_ScheduleRequest& req) {
  auto refuse = [&](const std::string& why) {
    auto resp = new_response(request_id);
    set_string(resp->error, why);
    answer(m, *resp);
  };
  const std::int64_t now = wall_us();
  const auto& cmd = req.command;
  if (!req.has_command || cmd.which_action == 0) return refuse("schedule: no command");
  if (cmd.which_action == kairos_v1_Command_ping_tag) return refuse("schedule: ping is the gateway's own (clock sync)");
  if (cmd.which_action == kairos_v1_Command_rekey_tag) return refuse("schedule: rekey is sent by kairosctl rotate-key");
  auto strategy = parse_strategy(req.strategy);
  if (!strategy) return refuse(std::string("schedule: unknown strategy '") + req.strategy + "' (parallel, wave, priority_first, naive)");
  ScheduleSpec spec;
  spec.strategy = *strategy;
  spec.at_us = req.at_us ? req.at_us : now + static_cast<std::int64_t>(req.in_ms) * 1000;
  if (spec.strategy != Strategy::naive && spec.at_us <= now)
    return refuse("schedule: T is " + std::to_string((now - spec.at_us) / 1000) + " ms in the past");
  if (spec.at_us - now > 3'600'000'000LL) return refuse("schedule: T is more than an hour ahead");
  if (req.window_ms > 600'000) return refuse("schedule: window_ms above 600000");
  if (req.window_ms) spec.window_us = static_cast<std::int64_t>(req.window_ms) * 1000;
  if (req.late_tolerance_ms) spec.late_tolerance_ms = req.late_tolerance_ms;
  if (req.hit_ms) spec.hit_us = static_cast<std::int64_t>(req.hit_ms) * 1000;
  for (float q : {req.ready_quorum, req.conflict_max, req.transit_wait})
    if (!(q >= 0 && q <= 1)) return refuse("schedule: quorum thresholds lie in 0..1");
  if (req.ready_quorum > 0) spec.quorum.ready = req.ready_quorum;
  if (req.conflict_max > 0) spec.quorum.conflict = req.conflict_max;
  if (req.transit_wait > 0) spec.quorum.transit = req.transit_wait;
  if (req.max_extensions) spec.max_extensions = static_cast<int>(std::min(req.max_extensions, 10u));
  std::string error;
  auto targets = select_targets(req.targets, error);
  if (!error.empty()) return refuse("schedule: " + error);
  if (auto why = mode_refusal(std::string(req.targets) == "all", targets.size(), req.confirm); !why.empty())
    return refuse("schedule: " + why);
  healthy_only(targets);
  if (targets.empty()) return refuse("schedule: every target is behind an open breaker (kairosctl breakers)");

  // Ids are handed out in order: the next one is this schedule's.
  PendingSchedule p;
  p.response_topic = m.response_topic;
  p.correlation = m.correlation;
  p.request_id = request_id;
  p.command = cmd;
  p.command.late_tolerance_ms = spec.late_tolerance_ms;
  auto id = scheduler_.next_id();
  schedules_[id] = std::move(p);
  scheduler_.start(spec, targets, now);
  scheduler_.service(wall_us());  // what is due at once leaves now
}

void Gateway::calibrate(const std::string& id, const TargetResult& t, double late_us) {
  NodeEntry* n = registry_.find(id);
  if (!n) return;
  // docs/DESIGN.md 5.4: each execution error feeds back into the node's impedance. A
  // late execution or a refused late arrival lengthens its lead by what was
  // missing; executions on time let the learned part decay slowly.
  double late_ms = late_us > 0 ? late_us / 1000.0 + 2.0 : t.error_us > 1000 ? t.error_us / 1000.0 + 1.0 : 0;
  if (late_ms > 0) {
    n->feedback_ms = std::min(1000.0, n->feedback_ms + late_ms);
    n->reliability.add(false);
  } else {
    n->feedback_ms *= 0.9;
    n->reliability.add(true);
  }
}

void Gateway::schedule_finished(const ScheduleResult& r) {
  auto it = schedules_.find(r.id);
  if (it == schedules_.end()) return;
  if (it->second.verb != Verb::schedule) {
    const PendingSchedule p = std::move(it->second);
    schedules_.erase(it);
    return command_finished(p, r);
  }
  auto resp = new_response(it->second.request_id);
  resp->ok = true;
  resp->which_reply = kairos_v1_ControlResponse_schedule_tag;
  auto& o = resp->reply.schedule;
  o.schedule_id = r.id;
  set_string(o.strategy, to_string(r.spec.strategy));
  o.at_us = r.waves.empty() ? r.spec.at_us : r.waves[0].at_us;
  set_string(o.verdict, to_string(r.verdict));
  o.targets = static_cast<std::uint32_t>(r.targets.size());
  o.sent = static_cast<std::uint32_t>(r.sent);
  o.skipped = static_cast<std::uint32_t>(r.skipped);
  o.ready = static_cast<std::uint32_t>(r.ready);
  o.conflicts = static_cast<std::uint32_t>(r.conflicts);
  o.stragglers = static_cast<std::uint32_t>(r.stragglers);
  o.not_sent = static_cast<std::uint32_t>(r.not_sent);
  o.hits = static_cast<std::uint32_t>(r.hits);
  o.hit_rate = static_cast<float>(r.hit_rate());
  o.spread_p50_ms = static_cast<float>(r.p50_ms);
  o.spread_p95_ms = static_cast<float>(r.p95_ms);
  o.spread_max_ms = static_cast<float>(r.max_ms);
  o.error_mean_ms = static_cast<float>(r.mean_error_ms);
  o.hit_ms = static_cast<std::uint32_t>(r.spec.hit_us / 1000);
  o.window_ms = static_cast<std::uint32_t>(r.spec.window_us / 1000);
  o.acks_in_ms = r.last_ack_us ? static_cast<std::uint32_t>((r.last_ack_us - r.started_us) / 1000) : 0;
  for (const auto& w : r.waves) {
    if (o.waves_count >= 16) break;
    auto& ow = o.waves[o.waves_count++];
    set_string(ow.name, w.name);
    set_string(ow.verdict, to_string(w.verdict));
    ow.threshold = static_cast<float>(w.threshold);
    ow.at_us = w.at_us;
    ow.targets = static_cast<std::uint32_t>(w.members.size());
    for (auto i : w.members) ow.ready += r.targets[i].state == TargetState::ready;
    ow.extensions = static_cast<std::uint32_t>(w.extensions);
  }
  // The targets that did not hit, worst first: skips and conflicts, then
  // stragglers, then executions outside +-hit by their error.
  std::vector<const TargetResult*> misses;
  for (const auto& t : r.targets)
    if (t.state != TargetState::ready || std::abs(t.error_us) > static_cast<double>(r.spec.hit_us)) misses.push_back(&t);
  auto rank = [](const TargetResult* t) { return t->state == TargetState::ready ? 1 : 0; };
  std::stable_sort(misses.begin(), misses.end(), [&](const TargetResult* a, const TargetResult* b) {
    if (rank(a) != rank(b)) return rank(a) < rank(b);
    return std::abs(a->error_us) > std::abs(b->error_us);
  });
  o.outcomes_total = static_cast<std::uint32_t>(misses.size());
  for (const auto* t : misses) {
    if (o.outcomes_count >= 24) break;
    auto& x = o.outcomes[o.outcomes_count++];
    set_string(x.node, t->id);
    set_string(x.outcome, t->state == TargetState::ready ? "MISS" : to_string(t->state));
    x.would_need_ms = static_cast<float>(t->would_need_ms);
    x.available_ms = static_cast<float>(t->available_ms);
    x.error_ms = static_cast<float>(t->error_us / 1000.0);
    set_string(x.detail, t->detail.substr(0, 96));
  }
  char line[256];
  std::snprintf(line, sizeof line,
                "schedule %llu (%s): %s, %u of %u within +-%u ms, spread p50 %.2f p95 %.2f max %.2f ms, %u skipped, "
                "%u conflicts, %u stragglers",
                static_cast<unsigned long long>(r.id), to_string(r.spec.strategy), to_string(r.verdict), o.hits,
                o.targets, o.hit_ms, r.p50_ms, r.p95_ms, r.max_ms, o.skipped, o.conflicts, o.stragglers);
  log::info("schedule", line);
  last_cascade_ = std::string(line).substr(0, 128);
  const PendingSchedule p = std::move(it->second);
  schedules_.erase(it);
  answer(p.response_topic, p.correlation, *resp);
}

}  // namespace kairos::gw

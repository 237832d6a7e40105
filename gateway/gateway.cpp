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

constexpr const char* kVersion = "0.1.0";
constexpr std::uint64_t kWillSeqGap = 1ULL << 40;

kairos_v1_MeshMode mode_for(double active_rate) {
  if (active_rate >= 0.95) return kairos_v1_MeshMode_FULL;
  if (active_rate >= 0.80) return kairos_v1_MeshMode_DEGRADED_LIGHT;
  if (active_rate >= 0.60) return kairos_v1_MeshMode_DEGRADED_MODERATE;
  if (active_rate >= 0.30) return kairos_v1_MeshMode_DEGRADED_SEVERE;
  return kairos_v1_MeshMode_EMERGENCY;
}

}  // namespace

std::unique_ptr<kairos_v1_ControlResponse> new_response(std::uint64_t request_id) {
  auto resp = std::make_unique<kairos_v1_ControlResponse>();
  *resp = kairos_v1_ControlResponse_init_zero;
  resp->request_id = request_id;
  return resp;
}

Gateway::Gateway(GatewayConfig config)
    : config_(std::move(config)),
      keys_(config_.keys_dir),
      keybook_(keys_, config_.rotated_keys_dir),
      store_(config_.database),
      jobs_({[this](const JobSpec& spec, bool any) { return job_candidates(spec, any); },
             [this](const std::string& node, const Job& job, std::uint32_t attempt) { return send_job(node, job, attempt); },
             [this](const Job& job, const JobEvent& e) {
               dirty_jobs_.insert(job.id);
               pending_job_events_.emplace_back(e, wall_us());
             },
             [this](const std::string& node, bool good, const std::string& why) { job_outcome(node, good, why); },
             [this](const Job& job, const std::vector<std::string>& dissent, const std::string& detail) {
               // docs/DESIGN.md 5.6: priority 3 when it touches more than 100 nodes.
               int priority = dissent.size() > 100 ? 3 : 2;
               for (const auto& n : dissent) {
                 conflict("DATA_CONTRADICTION", priority, n,
                          "job " + std::to_string(job.id) + " (" + job.spec.handler + "): " + detail, wall_us());
                 for (const auto& c : job.copies)
                   if (c.node == n && c.answered)
                     pending_quarantine_.push_back({n, "data", "job " + std::to_string(job.id) + ": outvoted result",
                                                    c.output, wall_us()});
               }
             },
             [this](const std::string& node, const Job& job, const std::string& detail) {
               conflict("CAPABILITY_MISMATCH", 1, node,
                        "advertised job:" + job.spec.handler + " but refused job " + std::to_string(job.id) + ": " + detail,
                        wall_us());
             },
             [this](const Job& job) { job_finished(job); }},
            JobLimits{static_cast<std::int64_t>(config_.job_backoff_s * 1e6),
                      static_cast<std::int64_t>(config_.job_backoff_max_s * 1e6),
                      static_cast<std::int64_t>(config_.job_grace_s * 1e6), config_.job_per_node}),
      breakers_(BreakerSettings{static_cast<std::int64_t>(config_.breaker_window_s * 1e6), config_.cluster_failures,
                                config_.sector_failures, config_.global_sectors,
                                static_cast<std::int64_t>(config_.breaker_open_s * 1e6),
                                static_cast<std::int64_t>(config_.breaker_healthy_s * 1e6)},
                config_.sectors),
      hook_(config_.alert_hook, static_cast<std::int64_t>(config_.alert_hook_timeout_s * 1e6)),
      scheduler_({[this](const std::string& id) { return target_view(id); },
                  [this](const std::string& id, std::int64_t execute_at_us, std::uint32_t ttl_ms, std::uint64_t sched) {
                    const NodeEntry* n = registry_.find(id);
                    auto it = schedules_.find(sched);
                    if (!n || it == schedules_.end()) return std::uint64_t{0};
                    const auto& tmpl = it->second.command;
                    const std::int64_t t0 = mono_us();
                    struct Cost {  // measures the send, however it returns
                      Scheduler& s;
                      std::int64_t t0;
                      ~Cost() { s.note_send_cost(static_cast<double>(mono_us() - t0)); }
                    } cost{scheduler_, t0};
                    return send_command(*n, ttl_ms, [&](kairos_v1_Command& cmd) {
                      cmd.which_action = tmpl.which_action;
                      cmd.action = tmpl.action;
                      cmd.mandatory = tmpl.mandatory;
                      cmd.execute_at_us = execute_at_us;
                      cmd.late_tolerance_ms = tmpl.late_tolerance_ms;
                    });
                  },
                  [this](const std::string& id, const TargetResult& t, double late_us) { calibrate(id, t, late_us); },
                  [this](const ScheduleResult& r) { schedule_finished(r); }}),
      session_(store_.next_gateway_session(static_cast<std::uint64_t>(wall_us()))),
      signer_(config_.id, session_),
      unified_(config_.unified_enter, config_.unified_leave) {
  keys_.load_shared();
  scheduler_.set_min_send_spacing(1e6 / config_.send_rate);
  // Session ids are ordered (docs/DESIGN.md 4); random ones of an older version
  // (above 2^56) say nothing about order and are not restored.
  for (const auto& s : store_.load_sessions())
    if (s.session < (std::uint64_t{1} << 56)) guard_.restore(s.sender, s.session, s.high_water);
  for (const auto& sn : store_.load_nodes()) {
    NodeEntry n;
    n.id = sn.id;
    n.cluster = sn.cluster;
    n.board = sn.board;
    n.firmware = sn.firmware;
    n.capabilities = sn.capabilities;
    n.device_class = static_cast<kairos_v1_DeviceClass>(sn.device_class);
    n.context_hash = sn.context_hash;
    n.session = sn.session;
    n.online = false;  // unclear until the node is heard again
    n.hb_period_us = static_cast<std::int64_t>(config_.heartbeat_period_s * 1e6);
    registry_.restore(std::move(n));
  }
  for (const auto& [id, reason] : store_.quarantined())
    if (auto* n = registry_.find(id)) registry_.set_quarantined(*n, true, reason);
  log::info("gateway", "restored " + std::to_string(registry_.nodes().size()) + " nodes from " + config_.database);
  // Jobs that had not finished resume; none is lost, none completes twice.
  next_job_id_ = store_.max_job_id() + 1;
  std::size_t resumed = 0;
  for (auto& job : store_.load_jobs(true)) {
    jobs_.restore(std::move(job), mono_us());
    ++resumed;
  }
  if (resumed) log::info("jobs", "resuming " + std::to_string(resumed) + " unfinished jobs");
  load_plays();
  operators_.restore(store_.load_operators());
  if (!operators_.revoked(std::string(kSharedOperator)) && operators_.names().size() > 1)
    log::warn("operators", "requests on _ctl/req signed with the shared operator.key are taken as operator 'operator'; "
                           "once every console has a named key: kairosctl operators revoke operator --confirm");
  commit_durable();
  breakers_.on_change([](const std::string& scope, const std::string& name, BreakerState before, BreakerState after) {
    log::warn("breakers", scope + " " + name + ": " + to_string(before) + " -> " + to_string(after));
  });

  link_ = std::make_unique<MqttLink>(mqtt_options(config_.broker, config_.mesh + "-gw-" + config_.id));
  arm_will();
  for (auto kind : {TopicKind::birth, TopicKind::state, TopicKind::hb, TopicKind::phase, TopicKind::event,
                    TopicKind::ack, TopicKind::result})
    link_->add_subscription(node_filter(config_.mesh, kind), kind == TopicKind::phase || kind == TopicKind::hb ? 0 : 1);
  link_->add_subscription(ball_head_topic(config_.mesh, "+"), 1);  // every play's head
  link_->add_subscription(ctl_req_topic(config_.mesh, "+"), 1);  // named operators' requests
  link_->add_subscription(ctl_req_topic(config_.mesh), 1);
}

Bytes Gateway::gateway_state_frame(bool online, std::uint64_t seq) {
  auto env = make_envelope(config_.id, session_, seq, wall_us());
  env->which_message = kairos_v1_Envelope_gateway_state_tag;
  env->message.gateway_state.online = online;
  env->message.gateway_state.session_id = session_;
  set_string(env->message.gateway_state.version, kVersion);
  return seal(gw_topic(config_.mesh, config_.id, TopicKind::gw_state), *env, keys_.broadcast());
}

void Gateway::arm_will() {
  // Sealed now, published by the broker later: its seq sits above the live counter.
  will_seq_ = signer_.next_seq() + kWillSeqGap;
  link_->set_will({gw_topic(config_.mesh, config_.id, TopicKind::gw_state), gateway_state_frame(false, will_seq_), 1,
                   true});
}

void Gateway::on_connected() {
  log::info("gateway", "connected to " + config_.broker.uri);
  connected_at_us_ = mono_us();
  registry_.grace(connected_at_us_);
  if (settled_at_us_ == 0)
    settled_at_us_ = connected_at_us_ + static_cast<std::int64_t>(config_.heartbeat_period_s * 1e6) + 500'000;
  auto t = gw_topic(config_.mesh, config_.id, TopicKind::gw_state);
  link_->publish(t, gateway_state_frame(true, signer_.take_seq()), 1, true);
  publish_mesh_state();
  for (auto& [name, p] : plays_) p.head_seen = false;  // the retained heads come again, and are checked
  link_->drain_backlog();
}

void Gateway::flush() {
  if (dirty_sessions_.empty() && dirty_nodes_.empty() && pending_events_.empty() && pending_conflicts_.empty()) return;
  if (storage_paused(mono_us())) return;
  const std::int64_t now_wall = wall_us();
  try {
  store_.begin();
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
    store_.upsert_node(s);
  }
  for (const auto& e : pending_events_) store_.append_event(e);
  for (const auto& sender : dirty_sessions_)
    if (auto s = guard_.current_session(sender)) store_.save_session({sender, *s, guard_.high_water(sender)}, now_wall);
  store_.commit();
  } catch (const std::exception& e) {
    store_.rollback();
    return storage_failed(e.what());
  }
  if (!storage_error_.empty()) storage_recovered();
  dirty_nodes_.clear();
  dirty_sessions_.clear();
  pending_events_.clear();
  jobs_.trim(config_.jobs_in_memory);
  // Copies whose command was never answered (the node went away).
  const std::int64_t now = mono_us();
  std::erase_if(job_commands_, [&](const auto& kv) { return now - kv.second.sent_us > 600'000'000; });
}

void Gateway::storage_failed(const std::string& why) {
  storage_retry_us_ = mono_us() + 5'000'000;
  if (!storage_error_.empty()) return;
  storage_error_ = why.substr(0, 160);
  log::error("gateway", "cannot write " + config_.database + ": " + why +
                            ": nothing that must be recorded is accepted until it can (free space, check the file "
                            "system and permissions); trying again every 5 s");
  // An alert of its own, not through the conflict log it cannot write.
  ++alerts_;
  auto env = make_envelope("", 0, 0, 0);
  env->which_message = kairos_v1_Envelope_alert_tag;
  auto& a = env->message.alert;
  set_string(a.type, "STORAGE");
  a.priority = 4;
  set_string(a.scope, "operator");
  set_string(a.detail, "cannot write " + config_.database + ": " + why);
  set_string(a.suggested, "free space or fix the database's file system; the gateway refuses new work meanwhile");
  auto t = alert_topic(config_.mesh);
  if (link_) link_->publish(t, signer_.seal(t, *env, keys_.operator_key(), wall_us()), 1, false);
}

void Gateway::storage_recovered() {
  log::info("gateway", config_.database + " is writable again (was: " + storage_error_ + ")");
  storage_error_.clear();
}

void Gateway::commit_durable() {
  if (!dirty_jobs_.empty() || !pending_job_events_.empty() || !pending_quarantine_.empty() ||
      !pending_conflicts_.empty() || !pending_ball_plays_.empty() || !pending_ball_entries_.empty()) {
    // What waits for durability (answers, alerts) waits while nothing can be written.
    if (storage_paused(mono_us())) return;
    try {
    store_.begin();
    for (const auto& [session, ball_id] : pending_ball_plays_) store_.append_ball_play(session, ball_id, wall_us());
    for (const auto& [ball_id, e] : pending_ball_entries_) store_.append_ball_entry(ball_id, e);
    for (auto id : dirty_jobs_)
      if (const Job* j = jobs_.find(id)) store_.save_job(*j);
    for (const auto& [e, at] : pending_job_events_) store_.append_job_event(e, at);
    for (const auto& q : pending_quarantine_) store_.append_quarantine(q.node, q.action, q.reason, q.data, q.at_wall_us);
    for (const auto& c : pending_conflicts_) store_.append_conflict(c);
    store_.commit();
    } catch (const std::exception& e) {
      store_.rollback();
      return storage_failed(e.what());
    }
    if (!storage_error_.empty()) storage_recovered();
    dirty_jobs_.clear();
    pending_job_events_.clear();
    pending_quarantine_.clear();
    pending_conflicts_.clear();
    pending_ball_plays_.clear();
    pending_ball_entries_.clear();
  }
  for (auto& r : deferred_) answer(r.topic, r.correlation, *r.resp);
  deferred_.clear();
  if (!link_) return;  // still starting: published once the link exists
  for (auto& o : pending_publish_) link_->publish(o.topic, o.frame, 1, o.retained);
  pending_publish_.clear();
  if (!ball_dispatch_.empty()) send_ball_jobs();
}

void Gateway::defer(const std::string& topic, const Bytes& correlation,
                    std::unique_ptr<kairos_v1_ControlResponse> resp) {
  deferred_.push_back({topic, correlation, std::move(resp)});
}

std::uint64_t Gateway::send_command(const NodeEntry& n, std::uint32_t ttl_ms,
                                    const std::function<void(kairos_v1_Command&)>& fill) {
  const Key* key = keybook_.signing_key(n.id, mono_us());
  if (!key) return 0;
  auto env = make_envelope("", 0, 0, 0);
  env->which_message = kairos_v1_Envelope_command_tag;
  auto& cmd = env->message.command;
  cmd.command_id = random_u64();
  cmd.ttl_ms = ttl_ms;
  cmd.to_session = n.session;
  if (n.clock.count() > 0)  // the node's clock, as far as the gateway knows it
    cmd.expires_at_us = wall_us() + static_cast<std::int64_t>(n.clock.offset_us()) + std::int64_t{ttl_ms} * 1000;
  fill(cmd);
  auto t = node_topic(config_.mesh, n.cluster, n.id, TopicKind::cmd);
  PublishProps props;
  props.expiry_s = (ttl_ms + 999) / 1000;  // MQTT message expiry = the command's TTL
  link_->publish(t, signer_.seal(t, *env, *key, wall_us()), 1, false, props);
  return cmd.command_id;
}

void Gateway::send_rebirth(const NodeEntry& n) {
  send_command(n, 30'000, [](kairos_v1_Command& cmd) {
    cmd.which_action = kairos_v1_Command_rebirth_tag;
    cmd.action.rebirth = true;
  });
}

void Gateway::send_ping(NodeEntry& n, std::int64_t now_us) {
  std::int64_t t1 = 0;
  auto id = send_command(n, static_cast<std::uint32_t>(config_.ping_timeout_s * 1000), [&](kairos_v1_Command& cmd) {
    cmd.which_action = kairos_v1_Command_ping_tag;
    cmd.expires_at_us = 0;  // a ping measures the clock: one stepped since must still get through
    t1 = wall_us();
    cmd.action.ping.t1_us = t1;
  });
  if (id) pings_[id] = {n.id, t1, now_us};
}

void Gateway::on_ack(const std::string& id, const kairos_v1_Ack& ack, std::int64_t t4) {
  if (rotation_ack(id, ack)) return;
  if (auto jc = job_commands_.find(ack.command_id); jc != job_commands_.end()) {
    if (jc->second.node == id) {
      if (ack.state < 0) jobs_.on_refused(id, jc->second.job, jc->second.attempt, ack.detail, mono_us(), wall_us());
      job_commands_.erase(jc);
    }
    return;
  }
  auto it = pings_.find(ack.command_id);
  if (it == pings_.end() || it->second.node != id) {
    scheduler_.on_ack(id, ack.command_id, ack.state, ack.received_at_us, ack.executed_at_us, ack.detail, t4);
    return;
  }
  auto* n = registry_.find(id);
  if (n && ack.state == 1 && ack.received_at_us != 0) {
    n->clock.add({it->second.t1_wall_us, ack.received_at_us, ack.executed_at_us, t4});
    n->reliability.add(true);
    auto imp = n->impedance(mono_us());
    n->baseline_score = n->baseline_score <= 0 ? imp.score : n->baseline_score + 0.05 * (imp.score - n->baseline_score);
  } else if (n) {
    n->reliability.add(false);
  }
  pings_.erase(it);
}

void Gateway::pings(std::int64_t now_us) {
  // Missed acks count against reliability.
  const auto timeout_us = static_cast<std::int64_t>(config_.ping_timeout_s * 1e6);
  for (auto it = pings_.begin(); it != pings_.end();) {
    if (now_us - it->second.sent_mono_us < timeout_us) {
      ++it;
      continue;
    }
    if (auto* n = registry_.find(it->second.node)) n->reliability.add(false);
    it = pings_.erase(it);
  }
  if (!link_->connected()) return;
  // Only the nodes whose ping is due, and within the budget: a ping that
  // would wait in a queue measures the queue.
  while (pings_.size() < config_.max_pings_in_flight) {
    NodeEntry* n = registry_.ping_due(now_us);
    if (!n) break;
    send_ping(*n, now_us);
    // Faster while the filter is young (as after a latency level shift) or
    // the node is unstable (docs/DESIGN.md 5.1).
    bool fast = n->clock.count() < 8 || n->impedance(now_us).unstable;
    registry_.ping_at(*n, now_us + static_cast<std::int64_t>((fast ? config_.fast_ping_period_s : config_.ping_period_s) * 1e6));
  }
}

void Gateway::sync(std::int64_t now_us) {
  // While the gateway itself is cut off, silence proves nothing about nodes.
  auto expired = link_->connected() ? registry_.expire(now_us) : std::vector<std::string>{};
  for (const auto& id : expired) {
    log::info("registry", id + " OFFLINE (" + std::to_string(config_.missed_heartbeats) + " heartbeats missed)");
    dirty_nodes_.insert(id);
  }
  figures_ = registry_.figures(now_us);
  bool changed = unified_.update(figures_.contributors ? figures_.coherence : 0.0);
  std::size_t known = registry_.nodes().size();
  double active = known ? static_cast<double>(registry_.online_count()) / static_cast<double>(known) : 1.0;
  auto mode = mode_for(active);
  // Until the registry has settled after a start (births re-read, first
  // heartbeats), nodes restored from the database look offline: no mode
  // is judged from that.
  if (!settled(now_us)) mode = mode_;
  if (mode != mode_) {
    log::info("mesh", "mode " + std::string(to_string(mode_)) + " -> " + std::string(to_string(mode)) + " (" +
                          std::to_string(registry_.online_count()) + " of " + std::to_string(known) + " nodes active)");
    changed = true;
    auto before = mode_;
    mode_ = mode;
    on_mode_change(before, mode, active);
  }
  active_rate_ = active;
  if (changed) log::info("mesh", std::string("unified: ") + (unified_.on() ? "yes" : "no"));
  if (changed || now_us >= next_mesh_publish_us_) {
    publish_mesh_state();
    next_mesh_publish_us_ = now_us + static_cast<std::int64_t>(config_.mesh_publish_s * 1e6);
  }
}

void Gateway::publish_mesh_state() {
  if (!link_->connected()) return;
  auto env = make_envelope("", 0, 0, 0);
  env->which_message = kairos_v1_Envelope_mesh_state_tag;
  fill_mesh_state(env->message.mesh_state);
  auto t = mesh_state_topic(config_.mesh);
  link_->publish(t, signer_.seal(t, *env, keys_.broadcast(), wall_us()), 0, true);
}

void Gateway::fill_mesh_state(kairos_v1_MeshState& s) const {
  s.has_z = true;
  s.z.re = static_cast<float>(figures_.z.real());
  s.z.im = static_cast<float>(figures_.z.imag());
  s.coherence = static_cast<float>(figures_.coherence);
  s.agreement = static_cast<float>(figures_.agreement);
  s.unified = unified_.on();
  s.mode = mode_;
  s.nodes_online = static_cast<std::uint32_t>(registry_.online_count());
  s.nodes_in_sync = static_cast<std::uint32_t>(figures_.contributors);
  s.nodes_known = static_cast<std::uint32_t>(registry_.nodes().size());
}

void Gateway::periodic(std::int64_t now_us) {
  if (now_us >= next_sync_us_) {
    sync(now_us);
    next_sync_us_ = now_us + static_cast<std::int64_t>(config_.sync_period_s * 1e6);
  }
  pings(now_us);
  rotations_service(now_us);
  hook_.service(now_us);
  if (now_us >= next_context_check_us_) {
    check_contexts();
    next_context_check_us_ = now_us + 2'000'000;
  }
  if (now_us >= next_flush_us_) {
    flush();
    next_flush_us_ = now_us + 1'000'000;
  }
  if (now_us >= next_forget_us_) {
    store_.forget_requests(wall_us() - 2 * static_cast<std::int64_t>(config_.ctl_max_age_s * 1e6));
    next_forget_us_ = now_us + 60'000'000;
  }
  if (!rebirth_round_done_ && link_->connected() &&
      now_us - connected_at_us_ >= static_cast<std::int64_t>(config_.rebirth_after_s * 1e6)) {
    // Nodes known from the database or a retained birth but not heard live
    // since this start: ask them to announce themselves again.
    rebirth_round_done_ = true;
    for (const auto& [id, n] : registry_.nodes())
      if (!n.heard) send_rebirth(n);
  }
}

int Gateway::run() {
  start_us_ = mono_us();
  next_sync_us_ = start_us_;
  next_mesh_publish_us_ = start_us_;
  next_flush_us_ = start_us_ + 1'000'000;
  try {
    loop();
  } catch (const std::exception& e) {
    // An exit it sees coming: the gateway says it is offline before it goes.
    log::error("gateway", std::string("stopping on an error: ") + e.what());
    link_->close(gw_topic(config_.mesh, config_.id, TopicKind::gw_state), gateway_state_frame(false, will_seq_), 2000);
    return 1;
  }
  log::info("gateway", "stopping");
  try {
    commit_durable();
    flush();
  } catch (const std::exception& e) {
    log::error("gateway", std::string("stopping: ") + e.what());
  }
  link_->close(gw_topic(config_.mesh, config_.id, TopicKind::gw_state), gateway_state_frame(false, will_seq_), 2000);
  return storage_error_.empty() ? 0 : 1;
}

void Gateway::service(std::int64_t now) {
  periodic(now);
  scheduler_.service(wall_us());
  breakers_.service(now);
  service_jobs();
  ball_service(now);
  commit_durable();
}

void Gateway::loop() {
  while (!stop_requested()) {
    std::int64_t now = mono_us();
    link_->service(now);
    service(now);
    std::int64_t deadline = std::min({next_sync_us_, next_flush_us_, now + 100'000,
                                      std::max(jobs_.next_deadline_us(), settled_at_us_)});
    // The scheduler's next send bucket or gather end, on the wall clock.
    if (std::int64_t due = scheduler_.next_deadline_us(); due != INT64_MAX)
      deadline = std::min(deadline, mono_us() + std::max<std::int64_t>(0, due - wall_us()));
    auto events = link_->wait(deadline);
    if (const auto lost = link_->counters().inbound_dropped; lost > queue_drops_seen_) {
      drops_.by_reason[static_cast<std::size_t>(DropReason::queue_full)] += lost - queue_drops_seen_;
      wire_log_.write(log::Level::warn, "ingest",
                      std::to_string(lost - queue_drops_seen_) + " messages dropped unread: queue_full (the loop fell behind)",
                      mono_us());
      queue_drops_seen_ = lost;
    }
    // Operators' requests go first: behind a backlog of reports, a status
    // would otherwise wait for all of it (docs/DESIGN.md 5.8).
    std::stable_partition(events.begin(), events.end(), [&](const LinkEvent& ev) {
      return ev.type == LinkEvent::Type::message && ev.msg.topic.starts_with(ctl_topic_);
    });
    for (auto& ev : events) {
      switch (ev.type) {
        case LinkEvent::Type::connected: on_connected(); break;
        case LinkEvent::Type::lost:
        case LinkEvent::Type::connect_failed:
          arm_will();
          wire_log_.write(log::Level::warn, "gateway",
                          "broker: " + describe(ev, origin_of(config_.broker, config_.path)) + "; retrying", mono_us());
          break;
        case LinkEvent::Type::message: on_message(ev.msg, ev.msg.received_mono_us); break;
      }
    }
    commit_durable();
  }
}

}  // namespace kairos::gw

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
constexpr std::uint32_t kMaxPage = 40;


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
    if (auto* n = registry_.find(id)) {
      n->quarantined = true;
      n->quarantine_reason = reason;
    }
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
  const NodeEntry* known = registry_.find(t.name);
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
  if (verdict.new_session || !m.retained) dirty_sessions_.insert(env.sender);
  ++accepted_;

  const std::string id = env.sender;
  switch (t.kind) {
    case TopicKind::birth: {
      const auto* before = registry_.find(id);
      bool was_online = before && before->online;
      auto& n = registry_.on_birth(id, t.cluster, env.session_id, env.message.birth, now_us,
                                   static_cast<std::int64_t>(config_.heartbeat_period_s * 1e6));
      n.heard = n.heard || !m.retained;
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
      auto* n = registry_.find(id);
      if (!n || n->session != env.session_id) break;
      if (!m.retained) n->heard = true;
      if (registry_.on_state(id, env.message.state.online, now_us)) {
        wire_log_.write(log::Level::info, "registry", id + (env.message.state.online ? " online" : " OFFLINE (state/Will)"),
                        now_us);
        dirty_nodes_.insert(id);
      }
      break;
    }
    case TopicKind::hb: {
      auto* n = registry_.find(id);
      bool was_online = n && n->online;
      if (registry_.on_heartbeat(id, env.message.heartbeat, now_us)) {
        registry_.find(id)->heard = true;
        if (!was_online) {
          wire_log_.write(log::Level::info, "registry", id + " online (heartbeat)", now_us);
          dirty_nodes_.insert(id);
        }
      }
      break;
    }
    case TopicKind::phase:
      if (env.historical) {
        // Late (store and forward): history, not the node's present phase.
        if (auto* n = registry_.find(id)) ++n->historical_phases;
      } else {
        registry_.on_phase(id, env.message.phase, now_us);
      }
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
  // nodes, a context hash that differs from a strict majority's.
  std::map<std::string, std::map<Digest, std::vector<const NodeEntry*>>> groups;
  for (const auto& [id, n] : registry_.nodes()) {
    if (!n.online || n.context_hash.size() != 32) continue;
    Digest h;
    std::copy_n(n.context_hash.begin(), h.size(), h.begin());
    groups[n.cluster][h].push_back(&n);
  }
  for (const auto& [cluster, by_hash] : groups) {
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
  n->quarantined = true;
  n->quarantine_reason = why;
  pending_quarantine_.push_back({id, "quarantine", why, {}, wall_us()});
  log::warn("registry", id + " QUARANTINED (" + why + "); kairosctl heal " + id + " lifts it");
}

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
  n->quarantined = false;
  n->quarantine_reason.clear();
  h.sent = send_command(*n, 30'000, [](kairos_v1_Command& cmd) {
    cmd.which_action = kairos_v1_Command_heal_tag;
    cmd.action.heal = true;
  }) != 0;
  log::info("registry", n->id + " healed by operator " + by + (h.was_quarantined ? ": quarantine lifted" : ""));
  answer(m, *resp);
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
  // A scan of the registry only when a ping is due, or every 100 ms for
  // nodes that came online since (with thousands of nodes, not every turn).
  if (now_us < next_ping_due_us_ && now_us < next_ping_scan_us_) return;
  next_ping_scan_us_ = now_us + 100'000;
  next_ping_due_us_ = INT64_MAX;
  for (auto& [id, n] : registry_.nodes_mut()) {
    if (!n.online || n.quarantined || n.status == kairos_v1_NodeStatus_QUARANTINED) continue;
    if (now_us >= n.next_ping_us && pings_.size() < config_.max_pings_in_flight) {
      // Within the budget: a ping that would wait in a queue measures the queue.
      send_ping(n, now_us);
      // Faster while the filter is young (as after a latency level shift) or
      // the node is unstable (docs/DESIGN.md 5.1).
      bool fast = n.clock.count() < 8 || n.impedance(now_us).unstable;
      n.next_ping_us = now_us + static_cast<std::int64_t>((fast ? config_.fast_ping_period_s : config_.ping_period_s) * 1e6);
    }
    next_ping_due_us_ = std::min(next_ping_due_us_, n.next_ping_us);
  }
}

void Gateway::sync(std::int64_t now_us) {
  // While the gateway itself is cut off, silence proves nothing about nodes.
  auto expired = link_->connected() ? registry_.expire(now_us, config_.missed_heartbeats) : std::vector<std::string>{};
  for (const auto& id : expired) {
    log::info("registry", id + " OFFLINE (" + std::to_string(config_.missed_heartbeats) + " heartbeats missed)");
    dirty_nodes_.insert(id);
  }
  auto inputs = registry_.sync_inputs(now_us, config_.stale_after_s, config_.class_weight);
  figures_ = mesh_figures(inputs);
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
  std::set<std::string> clusters;
  for (const auto& [id, n] : registry_.nodes()) clusters.insert(n.cluster);
  r.clusters = static_cast<std::uint32_t>(clusters.size());
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
  std::uint32_t limit = q.limit ? std::min(q.limit, kMaxPage) : kMaxPage;
  std::string state = q.state;
  std::uint32_t index = 0;
  r.offset = q.offset;
  for (const auto& [id, n] : registry_.nodes()) {
    if (q.cluster[0] && n.cluster != q.cluster) continue;
    if (state == "online" && !n.online) continue;
    if (state == "offline" && n.online) continue;
    if (index++ < q.offset || r.nodes_count >= limit) continue;
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
  r.total = index;
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

void Gateway::loop() {
  while (!stop_requested()) {
    std::int64_t now = mono_us();
    link_->service(now);
    periodic(now);
    scheduler_.service(wall_us());
    breakers_.service(now);
    service_jobs();
    ball_service(now);
    commit_durable();
    std::int64_t deadline = std::min({next_sync_us_, next_flush_us_, now + 100'000,
                                      std::max(jobs_.next_deadline_us(), settled_at_us_)});
    // The scheduler's next send bucket or gather end, on the wall clock.
    if (std::int64_t due = scheduler_.next_deadline_us(); due != INT64_MAX)
      deadline = std::min(deadline, mono_us() + std::max<std::int64_t>(0, due - wall_us()));
    for (auto& ev : link_->wait(deadline)) {
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

namespace kairos::gw {

namespace {

bool has_capability(const std::string& list, const std::string& cap) {
  std::size_t start = 0;
  while (start <= list.size()) {
    auto end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    if (list.compare(start, end - start, cap) == 0) return true;
    start = end + 1;
  }
  return false;
}

}  // namespace

std::vector<JobCandidate> Gateway::job_candidates(const JobSpec& spec, bool any) const {
  std::vector<JobCandidate> out;
  const std::int64_t now = mono_us();
  const std::string handler = "job:" + spec.handler;
  for (const auto& [id, n] : registry_.nodes()) {
    if (!n.online || n.quarantined || n.status == kairos_v1_NodeStatus_QUARANTINED) continue;
    // A frozen node is capable but takes no work until thawed: the job waits for it.
    if (!any && n.status == kairos_v1_NodeStatus_FROZEN) continue;
    if (!has_capability(n.capabilities, handler)) continue;
    if (!std::all_of(spec.needs.begin(), spec.needs.end(), [&](const std::string& c) { return has_capability(n.capabilities, c); }))
      continue;
    if (spec.to.rfind("class:", 0) == 0) {
      if (class_letter(n.device_class) != spec.to.substr(6)) continue;
    } else if (spec.to.rfind("cluster:", 0) == 0) {
      if (n.cluster != spec.to.substr(8)) continue;
    } else if (spec.to.rfind("node:", 0) == 0) {
      if (id != spec.to.substr(5)) continue;
    } else if (!spec.to.empty() && !has_capability(n.capabilities, spec.to)) {
      continue;
    }
    if (!any && !breakers_.would_admit(n.cluster, now)) continue;
    out.push_back({id, static_cast<double>(n.impedance(now).score), n.reliability.value()});
  }
  return out;
}

bool Gateway::send_job(const std::string& node, const Job& job, std::uint32_t attempt) {
  const NodeEntry* n = registry_.find(node);
  if (!n || !link_->connected() || !breakers_.admit(n->cluster, mono_us())) return false;
  auto id = send_command(*n, job.spec.timeout_ms + 30'000, [&](kairos_v1_Command& cmd) {
    cmd.which_action = kairos_v1_Command_job_tag;
    auto& j = cmd.action.job;
    j.job_id = job.id;
    j.attempt = attempt;
    set_string(j.handler, job.spec.handler);
    j.payload.size = static_cast<pb_size_t>(std::min<std::size_t>(job.spec.payload.size(), sizeof j.payload.bytes));
    std::copy_n(job.spec.payload.begin(), j.payload.size, j.payload.bytes);
    j.timeout_ms = job.spec.timeout_ms;
  });
  if (!id) return false;
  job_commands_[id] = {job.id, attempt, node, mono_us()};
  return true;
}

void Gateway::job_outcome(const std::string& node, bool good, const std::string& why) {
  NodeEntry* n = registry_.find(node);
  if (!n) return;
  // Reputation (docs/DESIGN.md 5.5): the node's reliability follows its job outcomes.
  n->reliability.add(good);
  if (good)
    breakers_.success(n->cluster, mono_us());
  else
    breakers_.failure(n->cluster, mono_us());
  (void)why;
}

void Gateway::fill_job(const Job& job, kairos_v1_JobInfo& o, bool with_output) const {
  o = kairos_v1_JobInfo_init_zero;
  o.job_id = job.id;
  set_string(o.handler, job.spec.handler);
  set_string(o.state, to_string(job.state));
  set_string(o.error, job.error.substr(0, 256));
  if (with_output) {
    o.output.size = static_cast<pb_size_t>(std::min<std::size_t>(job.output.size(), sizeof o.output.bytes));
    std::copy_n(job.output.begin(), o.output.size, o.output.bytes);
  }
  o.redundancy = static_cast<std::uint32_t>(job.spec.redundancy);
  o.attempts = job.next_attempt - 1;
  o.retries = static_cast<std::uint32_t>(job.retries_used);
  for (const auto& w : job.winners)
    if (o.winners_count < 8) set_string(o.winners[o.winners_count++], w);
  for (const auto& d : job.dissent)
    if (o.dissent_count < 8) set_string(o.dissent[o.dissent_count++], d);
  o.created_us = job.created_wall_us;
  o.finished_us = job.finished_wall_us;
  o.exit_code = job.exit_code;
  o.status = job.status;
  set_string(o.asked_by, job.spec.asked_by);
}

void Gateway::confirmed_in_emergency() {
  if (mode_ == kairos_v1_MeshMode_EMERGENCY && !emergency_override_) {
    // The operator confirmed work in an EMERGENCY: jobs run again, on the operator's word, until the mode changes.
    emergency_override_ = true;
    log::warn("jobs", "EMERGENCY: job dispatch resumed by an operator's confirmed request");
  }
}

void Gateway::delegate(const Inbound& m, std::uint64_t request_id, const kairos_v1_DelegateRequest& req) {
  auto resp = new_response(request_id);
  auto refuse = [&](const std::string& why) {
    set_string(resp->error, "delegate: " + why);
    answer(m, *resp);
  };
  if (!valid_name(req.handler)) return refuse("'" + std::string(req.handler) + "' is not a handler name");
  if (req.timeout_ms > 3'600'000) return refuse("timeout_ms above 3600000");
  if (req.redundancy > 8) return refuse("redundancy above 8");
  if (req.retries > 100) return refuse("retries above 100");
  std::string to = req.to;
  if (!valid_job_target(to))
    return refuse("--to '" + to + "': a class (class:A..F), a cluster (cluster:<name>), a node (node:<id>) or a capability");
  if (auto why = mode_refusal(false, 1, req.confirm); !why.empty()) return refuse(why);
  confirmed_in_emergency();
  JobSpec spec;
  spec.handler = req.handler;
  for (pb_size_t i = 0; i < req.needs_count; ++i) spec.needs.emplace_back(req.needs[i]);
  spec.to = to;
  spec.payload.assign(req.payload.bytes, req.payload.bytes + req.payload.size);
  spec.timeout_ms = req.timeout_ms ? req.timeout_ms : config_.job_timeout_ms;
  spec.redundancy = req.redundancy ? static_cast<int>(req.redundancy) : 1;
  spec.retries = req.has_retries ? static_cast<int>(req.retries) : config_.job_retries;
  spec.asked_by = operator_of(m.topic);
  const Job& job = jobs_.submit(next_job_id_++, std::move(spec), mono_us(), wall_us());
  // Dispatch at once: no_capable_node is known now (once the registry has settled after a start).
  service_jobs();
  const Job* now = jobs_.find(job.id);
  if (req.wait && now && !now->final()) {
    job_waiters_.insert({now->id, {m.response_topic, m.correlation, request_id}});
    commit_durable();
    return;
  }
  // Accepted: the answer leaves only once the job is in the database.
  resp->ok = true;
  resp->which_reply = kairos_v1_ControlResponse_job_tag;
  if (now) fill_job(*now, resp->reply.job, true);
  defer(m.response_topic, m.correlation, std::move(resp));
  commit_durable();
}

void Gateway::service_jobs() {
  // After a start the registry fills from retained births and the first
  // heartbeats: until then "no capable node" would be a guess.
  if (!settled(mono_us()) || !link_->connected()) return;
  if (mode_ == kairos_v1_MeshMode_EMERGENCY && !emergency_override_) return;  // automation halted
  jobs_.service(mono_us(), wall_us());
}

void Gateway::job_finished(const Job& job) {
  log::info("jobs", "job " + std::to_string(job.id) + " (" + job.spec.handler + ") " + to_string(job.state) +
                        (job.error.empty() ? "" : ": " + job.error) + " after " + std::to_string(job.next_attempt - 1) +
                        " copies");
  if (auto b = ball_jobs_.find(job.id); b != ball_jobs_.end()) {
    const BallJob bj = b->second;
    ball_jobs_.erase(b);
    ball_answer(bj, job);
  }
  if (auto ask = ask_waiters_.find(job.id); ask != ask_waiters_.end()) {
    auto resp = new_response(ask->second.request_id);
    resp->ok = true;
    resp->which_reply = kairos_v1_ControlResponse_ask_tag;
    auto& a = resp->reply.ask;
    std::map<std::string, std::vector<std::string>> groups;  // answer bytes -> nodes
    for (const auto& c : job.copies) {
      ++a.asked;
      if (c.answered) {
        ++a.answered;
        groups[std::string(c.output.begin(), c.output.end())].push_back(c.node);
      } else if (a.silent_count < 16) {
        set_string(a.silent[a.silent_count++], c.node);
      }
    }
    std::vector<std::pair<std::string, std::vector<std::string>>> sorted(groups.begin(), groups.end());
    std::stable_sort(sorted.begin(), sorted.end(), [](const auto& x, const auto& y) { return x.second.size() > y.second.size(); });
    for (const auto& [value, nodes] : sorted) {
      if (a.groups_count >= 16) break;
      auto& g = a.groups[a.groups_count++];
      g.value.size = static_cast<pb_size_t>(std::min<std::size_t>(value.size(), sizeof g.value.bytes));
      std::copy_n(value.begin(), g.value.size, g.value.bytes);
      g.count = static_cast<std::uint32_t>(nodes.size());
      for (const auto& n : nodes)
        if (g.nodes_count < 8) set_string(g.nodes[g.nodes_count++], n);
    }
    if (job.error == "no_capable_node") {
      resp->ok = false;
      set_string(resp->error, "ask: no online node offers job:" + job.spec.handler);
    }
    defer(ask->second.topic, ask->second.correlation, std::move(resp));
    ask_waiters_.erase(ask);
  }
  auto [lo, hi] = job_waiters_.equal_range(job.id);
  for (auto it = lo; it != hi; ++it) {
    auto resp = new_response(it->second.request_id);
    resp->ok = true;
    resp->which_reply = kairos_v1_ControlResponse_job_tag;
    fill_job(job, resp->reply.job, true);
    defer(it->second.topic, it->second.correlation, std::move(resp));
  }
  job_waiters_.erase(lo, hi);
}

void Gateway::jobs_verb(const Inbound& m, std::uint64_t request_id, const kairos_v1_JobsRequest& req) {
  auto resp = new_response(request_id);
  resp->ok = true;
  resp->which_reply = kairos_v1_ControlResponse_jobs_tag;
  auto& l = resp->reply.jobs;
  const auto& c = jobs_.counts();
  l.queued = c.queued;
  l.running = c.running;
  l.done = c.done;
  l.failed = c.failed;
  l.retries = c.retries;
  l.contradictions = c.contradictions;
  if (req.job_id) {
    const Job* j = jobs_.find(req.job_id);
    std::optional<Job> stored;
    if (!j && (stored = store_.load_job(req.job_id))) j = &*stored;
    if (!j) {
      resp->ok = false;
      set_string(resp->error, "no job " + std::to_string(req.job_id) + " (kairosctl jobs lists the newest)");
      return answer(m, *resp);
    }
    l.has_job = true;
    fill_job(*j, l.job, true);
    return answer(m, *resp);
  }
  std::uint32_t limit = req.limit ? std::min(req.limit, 20u) : 20u;
  const auto& all = jobs_.jobs();
  for (auto it = all.rbegin(); it != all.rend() && l.recent_count < limit; ++it) {
    const Job& j = it->second;
    auto& o = l.recent[l.recent_count++];
    o.job_id = j.id;
    set_string(o.handler, j.spec.handler);
    set_string(o.state, to_string(j.state));
    set_string(o.error, j.error.substr(0, 64));
    o.attempts = j.next_attempt - 1;
    o.retries = static_cast<std::uint32_t>(j.retries_used);
    set_string(o.asked_by, j.spec.asked_by);
  }
  answer(m, *resp);
}

void Gateway::breakers_verb(const Inbound& m, std::uint64_t request_id) {
  auto resp = new_response(request_id);
  resp->ok = true;
  resp->which_reply = kairos_v1_ControlResponse_breakers_tag;
  auto& l = resp->reply.breakers;
  const std::int64_t now = mono_us();
  const std::int64_t wall = wall_us();
  auto views = breakers_.view(now);
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

namespace kairos::gw {

std::string Gateway::mode_refusal(bool mesh_wide, std::size_t targets, bool confirm) const {
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
        return std::string("the mesh is ") + to_string(mode_).data() + rate + ": no scatter beyond 1000 nodes (" +
               std::to_string(targets) + " targets); narrow the targets";
      return "";
    default:
      return "";
  }
}

void Gateway::healthy_only(std::vector<std::string>& ids) const {
  if (mode_ != kairos_v1_MeshMode_DEGRADED_MODERATE && mode_ != kairos_v1_MeshMode_DEGRADED_SEVERE) return;
  std::erase_if(ids, [&](const std::string& id) {
    const NodeEntry* n = registry_.find(id);
    return n && !breakers_.closed(n->cluster);
  });
}

std::uint64_t Gateway::write_snapshot(const std::string& kind, const std::string& scope, const std::string& by) {
  Json j;
  kairos_v1_MeshState ms = kairos_v1_MeshState_init_zero;
  fill_mesh_state(ms);
  j.begin_object().key("kind").str(kind).key("scope").str(scope).key("gateway").str(config_.id).key("operator").str(by);
  j.key("mesh").begin_object().key("z_re").num(ms.z.re).key("z_im").num(ms.z.im).key("coherence").num(ms.coherence);
  j.key("agreement").num(ms.agreement).key("unified").boolean(ms.unified).key("mode").str(to_string(mode_));
  j.key("online").integer(ms.nodes_online).key("known").integer(ms.nodes_known).end_object();
  j.key("nodes").begin_array();
  const std::int64_t now = mono_us();
  for (const auto& [id, n] : registry_.nodes()) {
    j.begin_object().key("id").str(id).key("cluster").str(n.cluster).key("online").boolean(n.online);
    j.key("status").str(to_string(n.quarantined ? kairos_v1_NodeStatus_QUARANTINED : n.status));
    j.key("z_re").num(n.z.real()).key("z_im").num(n.z.imag()).key("c").num(n.c);
    j.key("impedance").integer(static_cast<unsigned long long>(n.impedance(now).score));
    j.key("reliability").num(n.reliability.value()).end_object();
  }
  j.end_array().end_object();
  // Written before anything acts on it.
  store_.begin();
  auto id = store_.append_snapshot(kind, scope, j.text(), wall_us(), by);
  store_.commit();
  log::info("mesh", "snapshot " + std::to_string(id) + " (" + kind + ") written: " +
                        std::to_string(registry_.nodes().size()) + " nodes");
  return id;
}

void Gateway::on_mode_change(kairos_v1_MeshMode before, kairos_v1_MeshMode after, double active) {
  (void)before;
  if (after != kairos_v1_MeshMode_EMERGENCY) {
    emergency_override_ = false;
    return;
  }
  // docs/DESIGN.md 5.6: automation halted, state written to disk, operators alerted.
  write_snapshot("emergency", "all");
  char detail[160];
  std::snprintf(detail, sizeof detail, "only %.0f%% of %zu nodes active: automation halted, snapshot written",
                active * 100, registry_.nodes().size());
  alert({"EMERGENCY", 4, "", detail, wall_us(),
         "restore nodes (kairosctl nodes --state offline); kairosctl freeze holds outputs safe meanwhile", 0, "", ""});
}

void Gateway::command_verb(const Inbound& m, std::uint64_t request_id, Verb verb, const std::string& selector,
                           const kairos_v1_Command& action, bool gather, std::uint32_t window_ms, bool confirm) {
  const char* name = verb == Verb::broadcast ? "broadcast" : verb == Verb::freeze ? "freeze" : "thaw";
  auto refuse = [&](const std::string& why) {
    auto resp = new_response(request_id);
    set_string(resp->error, std::string(name) + ": " + why);
    answer(m, *resp);
  };
  const std::string sel = selector.empty() ? "all" : selector;
  std::string error;
  auto targets = select_targets(sel, error);
  if (!error.empty()) return refuse(error);
  // Freezing is the brake: always allowed. The rest follows the mode.
  if (verb != Verb::freeze) {
    if (auto why = mode_refusal(sel == "all", targets.size(), confirm); !why.empty()) return refuse(why);
    healthy_only(targets);
    if (targets.empty()) return refuse("every target is behind an open breaker (kairosctl breakers)");
  }
  if (window_ms > 600'000) return refuse("window_ms above 600000");
  std::uint64_t snapshot = verb == Verb::freeze ? write_snapshot("freeze", sel, operator_of(m.topic)) : 0;
  if (!gather) {
    // Fire and forget: one command per online target, answered at once.
    auto resp = new_response(request_id);
    resp->ok = true;
    resp->which_reply = kairos_v1_ControlResponse_command_tag;
    auto& c = resp->reply.command;
    set_string(c.verb, name);
    c.targets = static_cast<std::uint32_t>(targets.size());
    for (const auto& id : targets) {
      const NodeEntry* n = registry_.find(id);
      if (!n || !n->online || n->quarantined) continue;
      c.sent += send_command(*n, 30'000, [&](kairos_v1_Command& cmd) {
        cmd.which_action = action.which_action;
        cmd.action = action.action;
      }) != 0;
    }
    c.snapshot_id = snapshot;
    return answer(m, *resp);
  }
  ScheduleSpec spec;
  spec.strategy = Strategy::naive;
  spec.at_us = wall_us();
  spec.window_us = static_cast<std::int64_t>(window_ms ? window_ms : 2000) * 1000;
  // The operator's own commands (a freeze above all) pass the breakers, which stop automated traffic.
  spec.respect_breakers = false;
  PendingSchedule p;
  p.response_topic = m.response_topic;
  p.correlation = m.correlation;
  p.request_id = request_id;
  p.command = action;
  p.verb = verb;
  p.snapshot_id = snapshot;
  auto id = scheduler_.next_id();
  schedules_[id] = std::move(p);
  scheduler_.start(spec, targets, wall_us());
  scheduler_.service(wall_us());
}

void Gateway::command_finished(const PendingSchedule& p, const ScheduleResult& r) {
  auto resp = new_response(p.request_id);
  resp->ok = true;
  resp->which_reply = kairos_v1_ControlResponse_command_tag;
  auto& c = resp->reply.command;
  set_string(c.verb, p.verb == Verb::broadcast ? "broadcast" : p.verb == Verb::freeze ? "freeze" : "thaw");
  c.gathered = true;
  c.targets = static_cast<std::uint32_t>(r.targets.size());
  c.sent = static_cast<std::uint32_t>(r.sent);
  c.ready = static_cast<std::uint32_t>(r.ready);
  c.conflicts = static_cast<std::uint32_t>(r.conflicts);
  c.silent = static_cast<std::uint32_t>(r.stragglers);
  c.snapshot_id = p.snapshot_id;
  for (const auto& t : r.targets)
    if (t.state != TargetState::ready && c.not_ready_count < 16) set_string(c.not_ready[c.not_ready_count++], t.id);
  log::info("console", std::string(c.verb) + ": " + std::to_string(c.ready) + " of " + std::to_string(c.targets) +
                           " nodes acknowledged READY");
  answer(p.response_topic, p.correlation, *resp);
}

void Gateway::ask(const Inbound& m, std::uint64_t request_id, const kairos_v1_AskRequest& req) {
  auto refuse = [&](const std::string& why) {
    auto resp = new_response(request_id);
    set_string(resp->error, "ask: " + why);
    answer(m, *resp);
  };
  std::string handler = req.handler[0] ? req.handler : "read";
  if (!valid_name(handler)) return refuse("'" + handler + "' is not a handler name");
  if (req.sample > 1000) return refuse("--sample above 1000");
  if (req.timeout_ms > 600'000) return refuse("timeout above 600000 ms");
  std::string to = req.to;
  if (!valid_job_target(to))
    return refuse("--to '" + to + "': a class (class:A..F), a cluster (cluster:<name>), a node (node:<id>) or a capability");
  if (auto why = mode_refusal(false, req.sample, req.confirm); !why.empty()) return refuse(why);
  if (req.confirm) confirmed_in_emergency();
  JobSpec spec;
  spec.handler = handler;
  spec.to = to;
  spec.payload.assign(req.question, req.question + std::strlen(req.question));
  spec.timeout_ms = req.timeout_ms ? req.timeout_ms : 5000;
  spec.redundancy = req.sample ? static_cast<int>(req.sample) : 5;
  spec.retries = 0;
  spec.poll = true;
  spec.asked_by = operator_of(m.topic);
  const Job& job = jobs_.submit(next_job_id_++, std::move(spec), mono_us(), wall_us());
  ask_waiters_[job.id] = {m.response_topic, m.correlation, request_id};
  service_jobs();
  commit_durable();
}

}  // namespace kairos::gw

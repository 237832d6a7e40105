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
#include "gateway/web/snapshot.h"

namespace kairos::gw {

namespace {

constexpr const char* kVersion = "0.1.0";
constexpr std::uint64_t kWillSeqGap = 1ULL << 40;

}  // namespace

Gateway::Gateway(GatewayConfig config)
    : config_(std::move(config)),
      keys_(config_.keys_dir),
      keybook_(keys_, config_.rotated_keys_dir),
      store_(config_.database),
      session_(store_.next_gateway_session(static_cast<std::uint64_t>(wall_us()))),
      signer_(config_.id, session_),
      unified_(config_.unified_enter, config_.unified_leave) {
  keys_.load_shared();
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
  for (const auto& [id, reason] : store_.quarantined()) registry_.restore_quarantine(id, reason);
  for (const auto& cluster : store_.breaker_holds()) escalation_.breakers().hold(cluster, true);
  log::info("gateway", "restored " + std::to_string(registry_.nodes().size()) + " nodes from " + config_.database);
  jobs_.restore();
  plays_.restore();
  control_.restore();
  verbs();
  commit_durable();

  auto options = mqtt_options(config_.broker, config_.mesh + "-gw-" + config_.id);
  options.on_event = waker_.signal();
  link_ = std::make_unique<MqttLink>(options);
  options.client_id += "-ctl";
  options.will.reset();
  ctl_link_ = std::make_unique<MqttLink>(options);
  // A root hears no nodes (its sectors' summaries come on link_).
  if (config_.role != GatewayConfig::Role::root && config_.ingest_client == "lean" &&
      MqttReader::usable(config_.broker.uri)) {
    options.client_id = config_.mesh + "-gw-" + config_.id + "-in";
    reader_ = std::make_unique<MqttReader>(options);
  }
  arm_will();
  if (config_.role == GatewayConfig::Role::root) {
    // No nodes of its own: its sectors' summaries and answers (docs/DESIGN.md 5.9).
    sectors_.emplace(config_, breaker_settings(config_),
                     SectorBook::Ports{[this](DropReason reason, const std::string& topic, const std::string& detail,
                                              std::int64_t now_us) { ingest_.drop(reason, topic, detail, now_us); },
                                       [](const std::string& sector, bool stale) {
                                         if (stale) log::warn("sectors", sector + " is stale: no summary for " +
                                                                             "its last periods; its breaker opens");
                                         else log::info("sectors", sector + " is live again");
                                       }});
    fanout_.emplace(config_, *sectors_,
                    Fanout::Ports{[this](const std::string& topic, Envelope& env, const Key& key) {
                                    link_->publish(topic, signer_.seal(topic, env, key, wall_us()), 1, false);
                                  },
                                  [this](DropReason reason, const std::string& topic, const std::string& detail,
                                         std::int64_t now_us) { ingest_.drop(reason, topic, detail, now_us); }});
    root_desk_.emplace(config_, *sectors_, *fanout_, answer_);
    catchup_.emplace(outbox_, *sectors_, *fanout_);
    root_rows(control_, *root_desk_, *catchup_, *sectors_);
    for (auto kind : {TopicKind::sector_summary, TopicKind::sector_resp})
      link_->add_subscription(sector_topic(config_.mesh, "+", kind), 1);
    link_->add_subscription(sector_topic(config_.mesh, "+", TopicKind::cluster_summary, "+"), 1);
  } else {
    // The ingest connection takes everything at QoS 0: its session ends with
    // the connection (Clean Start), so QoS 1 would keep nothing more for it,
    // and would cost the broker a PUBACK and its bookkeeping per frame.
    for (auto kind : {TopicKind::birth, TopicKind::state, TopicKind::hb, TopicKind::phase, TopicKind::event,
                      TopicKind::ack, TopicKind::result})
      if (const int qos = kind == TopicKind::phase || kind == TopicKind::hb ? 0 : 1; reader_)
        reader_->add_subscription(node_filter(config_.mesh, kind), 0);
      else
        link_->add_subscription(node_filter(config_.mesh, kind), qos);
  }
  if (config_.role == GatewayConfig::Role::sector) {
    reporter_.emplace(config_, registry_settings_, registry_, escalation_.breakers(),
                      SectorReporter::Ports{[this](const std::string& topic, Envelope& env) {
                                              link_->publish(topic, signer_.seal(topic, env, *control_.sector_key(),
                                                                                 wall_us()), 1, true);
                                            },
                                            [this] { return sector_facts(); }});
    ctl_link_->add_subscription(sector_topic(config_.mesh, config_.sector, TopicKind::sector_req), 1);  // its root's
  }
  link_->add_subscription(ball_head_topic(config_.mesh, "+"), 1);  // every play's head
  ctl_link_->add_subscription(ctl_req_topic(config_.mesh, "+"), 1);  // named operators' requests
  ctl_link_->add_subscription(ctl_req_topic(config_.mesh), 1);
  log::info("gateway", std::string("role ") + to_string(config_.role) +
                           (config_.role == GatewayConfig::Role::sector ? " of sector " + config_.sector
                            : config_.role == GatewayConfig::Role::root
                                ? " over " + std::to_string(config_.root_sectors.size()) + " sectors"
                                : std::string()));
  outbox_.set_publish([this](const std::string& t, const Bytes& frame, bool retained) { link_->publish(t, frame, 1, retained); });
  conflicts_at_start_ = store_.conflict_count();
  serve_http();
  bridges_ = std::make_unique<Bridges>(config_, registry_, store_,
                                       Bridges::Ports{send_, [this] { return settled(mono_us()); }, waker_.signal()});
  if (!bridges_->any()) bridges_.reset();
}

Gateway::~Gateway() {
  // Before the HTTP servers stop (they wait for their handlers): handlers
  // waiting for the loop, or for an action's answer, return now.
  loop_calls_.close();
  if (web_) web_->stop();
}

void Gateway::serve_http() {
  std::vector<HttpSite> sites;
  if (!config_.metrics_listen.empty()) {
    metrics_.emplace();
    sites.push_back({"metrics.listen", config_.metrics_listen, "/metrics",
                     {{"/metrics", metrics_route(metrics_page_, loop_calls_, [this] { return metrics_text(); })}}, {}, {}});
  }
  if (!config_.web.listen.empty()) {
    web_.emplace(Web::Settings{config_.web.listen, config_.web.static_dir, config_.web.max_clients, config_.web.hosts},
                 loop_calls_,
                 Web::Ports{[this](const std::string& name, std::string& why) {
                              return control_.operator_key(name, mono_us(), why);
                            },
                            [this](const std::string& name, const kairos_v1_ControlRequest& req, const ReplyTo& to) {
                              control_.local(name, req, to, mono_us());
                            },
                            [this] { return web_snapshot_text(); }, [this] { return registry_.nodes().size(); }});
    sites.push_back(web_->site());
  }
  http_ = serve(sites);
  if (web_) web_->attach(http_.at(config_.web.listen).get());
}

std::string Gateway::web_snapshot_text() {
  const std::int64_t now = mono_us();
  return web_snapshot({config_.mesh, config_.id, registry_, figures_, unified_.on(), escalation_.mode(),
                       escalation_.breakers().view(now), store_.conflicts(20), last_compensated_, last_naive_,
                       plays_.views(), web_->history(), true, now, wall_us()});
}

void Gateway::forgetting(const NodeEntry& n) {
  ingest_.forget(n.id);
  if (bridges_) bridges_->forgotten(n.id);
  for (auto kind : {TopicKind::birth, TopicKind::state})
    link_->publish(node_topic(config_.mesh, n.cluster, n.id, kind), {}, 1, true);
}

KpiFigures Gateway::kpi_figures() {
  std::uint64_t recoveries = registry_.recoveries();
  std::int64_t down_us = registry_.recovery_total_us();
  if (sectors_) {
    recoveries += sectors_->recoveries();
    down_us += sectors_->recovery_total_us();
  }
  kpi_.recoveries(recoveries, down_us);
  const std::uint64_t logged = store_.conflict_count();
  kpi_.conflicts(logged - std::min(conflicts_at_start_, logged));
  return kpi_.figures();
}

std::string Gateway::metrics_text() {
  const std::int64_t now = mono_us();
  kairos_v1_MeshState mesh = kairos_v1_MeshState_init_zero;
  fill_mesh_state(mesh);
  const KpiFigures kpi = kpi_figures();
  return metrics_->render({{config_, registry_, escalation_, ingest_, outbox_, jobs_.book(), schedules_.last_cascade(),
                            start_us_},
                           mesh, store_, plays_.size(), kpi},
                          now);
}

Bytes Gateway::gateway_state_frame(bool online, std::uint64_t seq) {
  auto env = make_envelope("", 0, 0, 0);
  env->which_message = kairos_v1_Envelope_gateway_state_tag;
  env->message.gateway_state.online = online;
  env->message.gateway_state.session_id = session_;
  set_string(env->message.gateway_state.version, kVersion);
  return signer_.seal_reserved(gw_topic(config_.mesh, config_.id, TopicKind::gw_state), *env, keys_.broadcast(), seq,
                               wall_us());
}

void Gateway::arm_will() {
  // Sealed now, published by the broker later: its seq sits above the live counter.
  will_seq_ = signer_.next_seq() + kWillSeqGap;
  link_->set_will({gw_topic(config_.mesh, config_.id, TopicKind::gw_state), gateway_state_frame(false, will_seq_), 1,
                   true});
}

void Gateway::on_connected() {
  // Said once both connections are up: requests are taken from then on.
  if (ctl_link_->connected()) log::info("gateway", "connected to " + config_.broker.uri);
  connected_at_us_ = mono_us();
  registry_.grace(connected_at_us_);
  if (settled_at_us_ == 0)
    settled_at_us_ = connected_at_us_ + static_cast<std::int64_t>(config_.heartbeat_period_s * 1e6) + 500'000;
  auto t = gw_topic(config_.mesh, config_.id, TopicKind::gw_state);
  link_->publish(t, gateway_state_frame(true, signer_.take_seq()), 1, true);
  publish_mesh_state();
  if (reporter_) reporter_->soon();  // the root hears of the sector at once
  plays_.on_connected(connected_at_us_);
  link_->drain_backlog();
}

void Gateway::flush() {
  if (ingest_.flush()) jobs_.tidy();
}

void Gateway::storage_failed(const std::string& why) {
  log::error("gateway", "cannot write " + config_.database + ": " + why +
                            ": nothing that must be recorded is accepted until it can (free space, check the file "
                            "system and permissions); trying again every 5 s");
  // An alert of its own, at once, not through the conflict log it cannot write.
  auto frame = escalation_.alert_frame({"STORAGE", 4, "", "cannot write " + config_.database + ": " + why, wall_us(),
                                        "free space or fix the database's file system; the gateway refuses new work "
                                        "meanwhile",
                                        0, "", ""});
  if (link_) link_->publish(alert_topic(config_.mesh), frame, 1, false);
}

void Gateway::commit_durable() { outbox_.commit(mono_us()); }

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

std::uint64_t Gateway::send_ping(const NodeEntry& n, std::int64_t& t1) {
  return send_command(n, static_cast<std::uint32_t>(config_.ping_timeout_s * 1000), [&](kairos_v1_Command& cmd) {
    cmd.which_action = kairos_v1_Command_ping_tag;
    cmd.expires_at_us = 0;  // a ping measures the clock: one stepped since must still get through
    t1 = wall_us();
    cmd.action.ping.t1_us = t1;
  });
}

void Gateway::on_message(const Inbound& m, std::int64_t now_us) {
  auto t = parse_topic(m.topic);
  if (!t || t->mesh != config_.mesh)
    return ingest_.drop(DropReason::bad_topic, m.topic, "not a topic of this mesh", now_us);
  if (t->kind == TopicKind::ctl_req || t->kind == TopicKind::sector_req) return control_.request(*t, m, now_us);
  if (t->kind == TopicKind::sector_summary || t->kind == TopicKind::cluster_summary) {
    if (sectors_) return sectors_->on_message(*t, m, now_us);
    return ingest_.drop(DropReason::bad_topic, m.topic, "a sector's summary, and this gateway is no root", now_us);
  }
  if (t->kind == TopicKind::sector_resp) {
    if (fanout_) return fanout_->on_message(*t, m, now_us);
    return ingest_.drop(DropReason::bad_topic, m.topic, "no request of this gateway is waiting for it", now_us);
  }
  if (t->kind == TopicKind::ball_head) return on_ball_head(m, now_us);
  // Our own broadcasts match the node filters (+/+/state): not for us.
  if (t->kind == TopicKind::gw_state) return;
  if (t->cluster.empty() || t->kind == TopicKind::cmd)
    return ingest_.drop(DropReason::bad_topic, m.topic, "not a node report", now_us);
  ingest_.node_frame(*t, m, now_us);
}

void Gateway::on_ball_head(const Inbound& m, std::int64_t now_us) {
  auto opened = open(m.topic, m.payload, keys_.operator_key());
  if (!opened) return ingest_.drop(*opened.drop, m.topic, opened.detail, now_us);
  if (!kind_matches(TopicKind::ball_head, *opened.env))
    return ingest_.drop(DropReason::kind_mismatch, m.topic, "not a Ball head", now_us);
  plays_.on_head(opened.env->message.ball_head);
}

void Gateway::answer(const ReplyTo& to, kairos_v1_ControlResponse& resp) {
  if (web_ && to.topic.rfind(Web::kReplyPrefix, 0) == 0) return web_->answered(to, resp);
  auto env = make_envelope("", 0, 0, 0);
  env->which_message = kairos_v1_Envelope_ctl_response_tag;
  env->message.ctl_response = resp;
  PublishProps props;
  props.correlation = to.correlation;
  const Key& key = control_.response_key(to.topic, mono_us());
  ctl_link_->publish(to.topic, signer_.seal(to.topic, *env, key, wall_us()), 1, false, props);
}

void Gateway::on_ack(const std::string& id, const kairos_v1_Ack& ack, std::int64_t t4) {
  if (rotations_.on_ack(id, ack)) return;
  if (jobs_.on_ack(id, ack)) return;
  if (clock_sync_.on_ack(id, ack, t4, mono_us())) return;
  schedules_.on_ack(id, ack, t4);
}

void Gateway::sync(std::int64_t now_us) {
  // While the gateway itself is cut off, silence proves nothing about nodes.
  auto expired = hears_nodes() ? registry_.expire(now_us) : std::vector<std::string>{};
  for (const auto& id : expired) {
    log::info("registry", id + " OFFLINE (" + std::to_string(config_.missed_heartbeats) + " heartbeats missed)");
    ingest_.node_changed(id);
    if (bridges_) bridges_->offline(id);
  }
  std::size_t online = registry_.online_count(), known = registry_.nodes().size();
  if (sectors_) {
    // A root: the global figures from its live sectors' sums, the mode from their counts.
    sectors_->service(now_us);
    figures_ = sectors_->figures();
    const auto totals = sectors_->totals();
    online = totals.online;
    known = totals.known;
  } else {
    figures_ = registry_.figures(now_us);
  }
  kpi_.sample(now_us, known, online);
  if (web_) web_->sample(wall_us(), figures_.contributors ? figures_.coherence : 0.0, figures_.agreement);
  bool changed = unified_.update(figures_.contributors ? figures_.coherence : 0.0);
  changed = escalation_.judge(online, known, settled(now_us)) || changed;
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
  s.mode = escalation_.mode();
  s.nodes_online = static_cast<std::uint32_t>(registry_.online_count());
  s.nodes_in_sync = static_cast<std::uint32_t>(figures_.contributors);
  s.nodes_known = static_cast<std::uint32_t>(registry_.nodes().size());
  if (sectors_) {
    const auto t = sectors_->totals();
    s.nodes_online = t.online;
    s.nodes_known = t.known;
  }
}

SectorFacts Gateway::sector_facts() {
  SectorFacts f;
  f.mode = escalation_.mode();
  const auto open = store_.open_tasks_by_priority();
  std::copy(open.begin(), open.end(), f.conflicts_open);
  f.jobs_queued = jobs_.book().counts().queued;
  f.jobs_running = jobs_.book().counts().running;
  f.last_cascade = schedules_.last_cascade();
  f.uptime_ms = static_cast<std::uint64_t>((mono_us() - start_us_) / 1000);
  f.conflict_high = store_.conflict_high(3);
  f.job_finished_us = jobs_.newest_finished_us();
  return f;
}

// Written before anything acts on it (an EMERGENCY, a freeze).
std::uint64_t Gateway::write_snapshot(const std::string& kind, const std::string& scope, const std::string& by) {
  kairos_v1_MeshState ms = kairos_v1_MeshState_init_zero;
  fill_mesh_state(ms);
  Json j = snapshot_json(registry_, ms, {kind, scope, config_.id, by}, mono_us());
  // Written before anything acts on it; a freeze (the brake) and an
  // EMERGENCY go ahead without it when the database cannot be written.
  std::uint64_t id = 0;
  if (!outbox_.transaction([&](Store& s) { id = s.append_snapshot(kind, scope, j.text(), wall_us(), by); }, mono_us())) {
    log::error("mesh", "snapshot (" + kind + ") not written: " + outbox_.error());
    return 0;
  }
  log::info("mesh", "snapshot " + std::to_string(id) + " (" + kind + ") written: " +
                        std::to_string(registry_.nodes().size()) + " nodes");
  return id;
}

void Gateway::periodic(std::int64_t now_us) {
  if (now_us >= next_sync_us_) {
    sync(now_us);
    next_sync_us_ = now_us + static_cast<std::int64_t>(config_.sync_period_s * 1e6);
  }
  clock_sync_.service(now_us, hears_nodes(), ingest_.accepted());
  if (reporter_) reporter_->service(now_us, link_->connected());
  if (fanout_) fanout_->service(now_us);
  if (catchup_) catchup_->service(now_us);
  rotations_.service(now_us);
  escalation_.hook().service(now_us);
  if (now_us >= next_context_check_us_) {
    escalation_.check_contexts();
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
  if (!rebirth_round_done_ && hears_nodes() &&
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
    if (bridges_) bridges_->close();
    link_->close(gw_topic(config_.mesh, config_.id, TopicKind::gw_state), gateway_state_frame(false, will_seq_), 2000);
    return 1;
  }
  log::info("gateway", "stopping");
  if (bridges_) bridges_->close();
  try {
    commit_durable();
    flush();
  } catch (const std::exception& e) {
    log::error("gateway", std::string("stopping: ") + e.what());
  }
  link_->close(gw_topic(config_.mesh, config_.id, TopicKind::gw_state), gateway_state_frame(false, will_seq_), 2000);
  return outbox_.error().empty() ? 0 : 1;
}

void Gateway::service(std::int64_t now) {
  loop_calls_.run();
  periodic(now);
  schedules_.service(wall_us());
  escalation_.breakers().service(now);
  jobs_.service();
  plays_.service(now);
  if (web_) web_->service(now);
  if (bridges_) {
    kairos_v1_MeshState mesh = kairos_v1_MeshState_init_zero;
    fill_mesh_state(mesh);
    bridges_->service(now, mesh);
  }
  commit_durable();
}

void Gateway::loop() {
  // Between this many reports the loop looks for requests again.
  constexpr std::size_t kRequestsEvery = 1024;
  while (!stop_requested()) {
    std::int64_t now = mono_us();
    link_->service(now);
    // The control connection opens once the reports' connection has: a
    // broker that refuses the gateway (TLS, password) is tried, and told of,
    // by one connection, not two at once.
    if (ctl_opened_ || link_->connected()) {
      ctl_opened_ = true;
      ctl_link_->service(now);
      if (reader_) reader_->start();
    }
    service(now);
    std::int64_t deadline = std::min({next_sync_us_, next_flush_us_, now + 100'000,
                                      std::max(jobs_.next_deadline_us(), settled_at_us_)});
    // The scheduler's next send bucket or gather end, on the wall clock.
    if (std::int64_t due = schedules_.next_deadline_us(); due != INT64_MAX)
      deadline = std::min(deadline, mono_us() + std::max<std::int64_t>(0, due - wall_us()));
    waker_.wait_until(deadline);
    waker_.take();
    // Operators' requests go first, and again between chunks of reports:
    // behind a backlog of reports, a status would otherwise wait for all of it.
    auto requests = [this] {
      for (const auto& ev : ctl_link_->wait(0)) on_ctl_event(ev);
    };
    requests();
    auto events = link_->wait(0);
    for (std::size_t i = 0; i < events.size(); ++i) {
      if (i > 0 && i % kRequestsEvery == 0) requests();
      on_link_event(events[i]);
    }
    if (reader_) {
      auto frames = reader_->wait(0);
      for (std::size_t i = 0; i < frames.size(); ++i) {
        if (i > 0 && i % kRequestsEvery == 0) requests();
        on_reader_event(frames[i]);
      }
    }
    ingest_.link_dropped(link_->counters().inbound_dropped + (reader_ ? reader_->counters().inbound_dropped : 0),
                         mono_us());
    commit_durable();
  }
}

void Gateway::on_link_event(const LinkEvent& ev) {
  switch (ev.type) {
    case LinkEvent::Type::connected:
      // Said online (the nodes then send what they held) only once the
      // nodes' frames can be heard: with the ingest connection subscribed too.
      if (!reader_ || reader_up_) on_connected();
      break;
    case LinkEvent::Type::lost:
    case LinkEvent::Type::connect_failed:
      arm_will();
      ingest_.wire_log().write(log::Level::warn, "gateway",
                               "broker: " + describe(ev, origin_of(config_.broker, config_.path)) + "; retrying",
                               mono_us());
      break;
    case LinkEvent::Type::message: on_message(ev.msg, ev.msg.received_mono_us); break;
  }
}

void Gateway::on_reader_event(const LinkEvent& ev) {
  switch (ev.type) {
    case LinkEvent::Type::connected:
      // Nodes went unheard while it was down: their silence proves nothing.
      registry_.grace(mono_us());
      reader_up_ = true;
      if (link_->connected()) on_connected();
      if (reader_->counters().reconnects > 0) log::info("gateway", "ingest connection to " + config_.broker.uri + " up again");
      break;
    case LinkEvent::Type::lost:
    case LinkEvent::Type::connect_failed:
      reader_up_ = false;
      ingest_.wire_log().write(log::Level::warn, "gateway",
                               "broker (ingest connection): " + describe(ev, origin_of(config_.broker, config_.path)) +
                                   "; retrying",
                               mono_us());
      break;
    case LinkEvent::Type::message: on_message(ev.msg, ev.msg.received_mono_us); break;
  }
}

void Gateway::on_ctl_event(const LinkEvent& ev) {
  switch (ev.type) {
    case LinkEvent::Type::connected:
      if (link_->connected()) log::info("gateway", "connected to " + config_.broker.uri);
      ctl_link_->drain_backlog();
      break;
    case LinkEvent::Type::lost:
    case LinkEvent::Type::connect_failed:
      // While the reports' connection is down too, its own line says why.
      if (link_->connected())
        ingest_.wire_log().write(log::Level::warn, "gateway",
                                 "broker (control connection): " +
                                     describe(ev, origin_of(config_.broker, config_.path)) + "; retrying",
                                 mono_us());
      break;
    case LinkEvent::Type::message:  // subscribed to requests only; on_message routes by topic
      on_message(ev.msg, ev.msg.received_mono_us);
      break;
  }
}

}  // namespace kairos::gw

#pragma once
#include <memory>
#include <optional>
#include <functional>
#include <string>

#include "common/core/ball.h"
#include "common/core/frame.h"
#include "common/core/meshsync.h"
#include "common/io/mqtt.h"
#include "common/io/mqtt_reader.h"
#include "gateway/ball/plays.h"
#include "gateway/integrations/bridges.h"
#include "gateway/escalation/escalation.h"
#include "gateway/gateway_config.h"
#include "gateway/hierarchy/catchup.h"
#include "gateway/hierarchy/fanout.h"
#include "gateway/hierarchy/root_desk.h"
#include "gateway/hierarchy/sectors.h"
#include "gateway/hierarchy/summary.h"
#include "gateway/http/loop_calls.h"
#include "gateway/http/server.h"
#include "gateway/ingest/ingest.h"
#include "gateway/jobs/desk.h"
#include "gateway/link/keyring.h"
#include "gateway/metrics/kpi.h"
#include "gateway/metrics/metrics.h"
#include "gateway/rpc/control.h"
#include "gateway/rpc/root_verbs.h"
#include "gateway/rpc/rotations.h"
#include "gateway/rpc/verbs.h"
#include "gateway/registry/clock_sync.h"
#include "gateway/registry/registry.h"
#include "gateway/link/rotation.h"
#include "gateway/schedule/schedules.h"
#include "gateway/web/web.h"
#include "gateway/store/outbox.h"

namespace kairos::gw {

// The kairos-gateway daemon (docs/DESIGN.md 4, 5): the wiring of its modules
// (ingest, registry and clock sync, escalation, schedules, jobs, the Ball,
// the control RPC) over one link and one store, and the loop that runs them.
class Gateway {
 public:
  explicit Gateway(GatewayConfig config);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;
  // Runs until SIGTERM / SIGINT; returns the exit status.
  int run();
  // One received message through the ingest path, as the loop takes it
  // (bench/bench_ingest feeds it without a broker).
  void ingest(const Inbound& m) { on_message(m, m.received_mono_us); }
  // One turn of the loop's own work (timers, jobs, durable writes), without waiting.
  void service(std::int64_t now_us);
  std::uint64_t accepted() const { return ingest_.accepted(); }
  std::uint64_t dropped() const { return ingest_.drops().total(); }
  // The port the metrics are served on; 0 when [metrics] is off.
  int metrics_port() const { return http_port(config_.metrics_listen); }
  // The port the live page is served on; 0 when [web] is off.
  int web_port() const { return http_port(config_.web.listen); }
  // Every bridge that is on ([homeassistant], [sparkplug]) is connected to the broker.
  bool bridges_connected() const { return bridges_ && bridges_->connected(); }
  // Messages the bridges have published.
  std::uint64_t bridge_messages() const { return bridges_ ? bridges_->published() : 0; }

 private:
  // The control RPC's verb table: one row per verb, to the module that answers it.
  void verbs();
  void arm_will();
  void on_connected();
  void on_message(const Inbound& m, std::int64_t now_us);
  // The broker's signed head of a Ball play: checked by the plays.
  void on_ball_head(const Inbound& m, std::int64_t now_us);
  // t4: the ack's arrival on the gateway's wall clock (us).
  void on_ack(const std::string& id, const kairos_v1_Ack& ack, std::int64_t t4);
  void periodic(std::int64_t now_us);
  void sync(std::int64_t now_us);
  void publish_mesh_state();
  // The hierarchy's roles (docs/DESIGN.md 5.9): what a sector tells its root; the root's status.
  SectorFacts sector_facts();
  void fill_mesh_state(kairos_v1_MeshState& s) const;
  // The KPIs (docs/METRICS.md) now.
  KpiFigures kpi_figures();
  // The Prometheus page, rendered on the loop.
  std::string metrics_text();
  // The live page's snapshot (docs/WEB.md), rendered on the loop.
  std::string web_snapshot_text();
  // The HTTP servers of [metrics] and [web] (one when their addresses are equal).
  void serve_http();
  int http_port(const std::string& listen) const {
    auto it = http_.find(listen);
    return it == http_.end() ? 0 : it->second->port();
  }
  void loop();  // until a stop signal
  void on_link_event(const LinkEvent& ev);
  void on_reader_event(const LinkEvent& ev);
  // The control connection: requests in, answers out.
  void on_ctl_event(const LinkEvent& ev);
  // The database could not be written (docs/DESIGN.md 5.7): said loudly once
  // (log, alert); the outbox refuses what must be recorded and tries again every 5 s.
  void storage_failed(const std::string& why);
  // Registry and replay state go to SQLite in one transaction a second.
  void flush();
  // Writes what must be durable before anyone hears of it (jobs and their
  // events, conflicts, quarantine, Ball entries) in one transaction, then
  // sends the replies that waited for it.
  void commit_durable();
  // Signs a command for node n with its key and sends it; 0 when there is no key.
  std::uint64_t send_command(const NodeEntry& n, std::uint32_t ttl_ms, const std::function<void(kairos_v1_Command&)>& fill);
  void send_rebirth(const NodeEntry& n);
  std::uint64_t send_ping(const NodeEntry& n, std::int64_t& t1);
  // Signed with the key the request was checked with (docs/PROTOCOL.md, Operators).
  void answer(const ReplyTo& to, kairos_v1_ControlResponse& resp);
  // by: the operator who asked (freeze), "" for the gateway's own (EMERGENCY).
  std::uint64_t write_snapshot(const std::string& kind, const std::string& scope, const std::string& by = "");
  Bytes gateway_state_frame(bool online, std::uint64_t seq);
  Bytes seal_operator(const std::string& topic, Envelope& env) {
    return signer_.seal(topic, env, keys_.operator_key(), wall_us());
  }

  const GatewayConfig config_;
  KeyRing keys_;
  KeyBook keybook_;  // node keys as they rotate, over keys_
  Store store_;
  Outbox outbox_{store_, config_.database, [this](const std::string& why) { storage_failed(why); }};
  // The ports the modules share: signing and sending a command, answering a request.
  const SendCommand send_ = [this](const NodeEntry& n, std::uint32_t ttl_ms,
                                   const std::function<void(kairos_v1_Command&)>& fill) {
    return send_command(n, ttl_ms, fill);
  };
  const Answer answer_ = [this](const ReplyTo& to, kairos_v1_ControlResponse& resp) { answer(to, resp); };
  Registry registry_{RegistrySettings{config_.missed_heartbeats, config_.stale_after_s, config_.class_weight}};
  Escalation escalation_{config_, registry_, outbox_,
                         {[this](const std::string& topic, Envelope& env) { return seal_operator(topic, env); },
                          [this](const std::string& kind, const std::string& scope, const std::string& by) {
                            return write_snapshot(kind, scope, by);
                          }}};
  Ingest ingest_{config_, keybook_, registry_, escalation_, outbox_,
                 {[this](const std::string& id, const kairos_v1_Ack& ack, std::int64_t t4) { on_ack(id, ack, t4); },
                  [this](const std::string& id, const Envelope& env, ByteView frame) { jobs_.on_result(id, env, frame); },
                  [this](const std::string& id) { rotations_.confirmed(id); },
                  [this](NodeEntry& n, TopicKind kind, const Envelope& env) {
                    if (bridges_) bridges_->applied(n, kind, env);
                  }}};
  Control control_{config_, keys_.operator_key(), outbox_, ingest_, escalation_,
                   {answer_, [this](std::int64_t now_us) {
                      // The mesh as it is now, not as of the last sync: a node back a
                      // moment ago counts toward the mode a verb is judged by; and what
                      // the answer may report (a job done, a conflict) is on disk first.
                      sync(now_us);
                      commit_durable();
                    }}};
  Rotations rotations_{keybook_, registry_, {send_, answer_}};
  // The seven KPIs (docs/METRICS.md), fed as operations end.
  KpiBook kpi_;
  JobDesk jobs_{config_, registry_, escalation_, outbox_,
                {send_, answer_, [this] { return ready(); }, [this](const Job& job) {
                   kpi_.operation(job.state == JobState::done);
                   plays_.job_finished(job);
                 }}};
  Plays plays_{config_, registry_, escalation_, outbox_, jobs_,
               {[this](const std::string& t, Envelope& env) { return seal_operator(t, env); }, answer_,
                [this] { return ready(); }}};
  // Monotonic: from then on the registry has settled after the start (births
  // re-read, first heartbeats): jobs are dispatched and the mode judged.
  // Set at the first connect.
  std::int64_t settled_at_us_ = 0;
  bool settled(std::int64_t now_us) const { return settled_at_us_ != 0 && now_us >= settled_at_us_; }
  // Connected, and the registry settled since the start: jobs and the Ball may ask nodes.
  bool ready() const { return settled(mono_us()) && hears_nodes(); }
  // Both the connection that publishes and the one node frames arrive on are up.
  bool hears_nodes() const { return link_ && link_->connected() && (!reader_ || reader_up_); }
  ClockSync clock_sync_{registry_,
                       {static_cast<std::int64_t>(config_.ping_period_s * 1e6),
                        static_cast<std::int64_t>(config_.fast_ping_period_s * 1e6),
                        static_cast<std::int64_t>(config_.ping_timeout_s * 1e6), config_.max_pings_in_flight,
                        config_.ping_share, config_.min_ping_rate},
                       [this](const NodeEntry& n, std::int64_t& t1) { return send_ping(n, t1); }};
  Schedules schedules_{config_, registry_, escalation_,
                      {send_, answer_,
                       [this](const std::string& kind, const std::string& scope, const std::string& by) {
                         return write_snapshot(kind, scope, by);
                       },
                       [this](Schedules::Verb verb, const ScheduleResult& r) {
                         kpi_.ended(verb == Schedules::Verb::schedule, r);
                         if (verb == Schedules::Verb::schedule)
                           (r.spec.strategy == Strategy::naive ? last_naive_ : last_compensated_) = r;
                       }}};
  // The last schedules, compensated and naive, as the live page shows them.
  std::optional<ScheduleResult> last_compensated_, last_naive_;
  const std::uint64_t session_;
  Signer signer_;
  LinkWaker waker_;  // both links' Paho threads wake the loop
  std::unique_ptr<MqttLink> link_;      // node reports in, commands and the mesh state out
  // Operators' requests and their answers on a connection of their own: they
  // do not queue behind the stream of reports (docs/DESIGN.md 5.8).
  std::unique_ptr<MqttLink> ctl_link_;
  // Node frames on a connection of their own, read by Kairos's subscriber
  // (docs/DESIGN.md 4, "The ingest connection"); null: they come on link_.
  std::unique_ptr<MqttReader> reader_;
  bool reader_up_ = false;  // as of its last event taken by the loop (after the registry's grace)
  bool ctl_opened_ = false;  // the reports' connection has been up: the control connection is opened too
  std::uint64_t will_seq_ = 0;

  // A sector gateway's summaries to its root; a root's view of its sectors.
  std::optional<SectorReporter> reporter_;
  std::optional<SectorBook> sectors_;
  std::optional<Fanout> fanout_;      // a root's requests to its sectors
  std::optional<RootDesk> root_desk_; // a root's mesh-wide verbs over them
  std::optional<CatchUp> catchup_;    // what a root has caught of their conflicts and jobs

  // [metrics] (docs/METRICS.md): the HTTP server's threads ask the loop for the page.
  LoopCalls loop_calls_{waker_.signal()};
  std::optional<Metrics> metrics_;
  PageCache metrics_page_{1'000'000};  // a page at most 1 s old is served again
  // [web] (docs/WEB.md): the live page; its requests go through control_.
  std::optional<Web> web_;
  std::map<std::string, std::unique_ptr<HttpServer>> http_;  // by address; after web_: stopped before it
  // [homeassistant], [sparkplug]: each on a connection of its own; null when all are off.
  std::unique_ptr<Bridges> bridges_;
  // kairosctl forget: what the modules keep of a node goes, and its retained birth and state.
  void forgetting(const NodeEntry& n);
  std::uint64_t conflicts_at_start_ = 0;
  const RegistrySettings registry_settings_{config_.missed_heartbeats, config_.stale_after_s, config_.class_weight};

  Hysteresis unified_;
  MeshFigures figures_;
  std::int64_t start_us_ = 0;
  std::int64_t connected_at_us_ = 0;
  bool rebirth_round_done_ = false;
  std::int64_t next_sync_us_ = 0;
  std::int64_t next_mesh_publish_us_ = 0;
  std::int64_t next_flush_us_ = 0;
  std::int64_t next_context_check_us_ = 0;
  std::int64_t next_forget_us_ = 0;  // accepted control requests older than their window are forgotten
};

}  // namespace kairos::gw

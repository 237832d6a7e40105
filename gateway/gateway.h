#pragma once
#include <memory>
#include <functional>
#include <map>
#include <set>
#include <string>

#include "common/core/ball.h"
#include "common/core/frame.h"
#include "common/core/meshsync.h"
#include "common/core/ratelimit.h"
#include "common/core/replay.h"
#include "common/io/mqtt.h"
#include "gateway/ball/plays.h"
#include "gateway/escalation/escalation.h"
#include "gateway/gateway_config.h"
#include "gateway/jobs/desk.h"
#include "gateway/link/keyring.h"
#include "gateway/rpc/operator_store.h"
#include "gateway/rpc/operators.h"
#include "gateway/registry/clock_sync.h"
#include "gateway/registry/registry.h"
#include "gateway/link/rotation.h"
#include "gateway/schedule/schedules.h"
#include "gateway/store/outbox.h"

namespace kairos::gw {

// The kairos-gateway daemon: verifies every frame, keeps the registry,
// computes the mesh state and answers the control RPC (SPEC 4, 5.1, 5.3).
class Gateway {
 public:
  explicit Gateway(GatewayConfig config);
  // Runs until SIGTERM / SIGINT; returns the exit status.
  int run();
  // One received message through the ingest path, as the loop takes it
  // (bench/bench_ingest feeds it without a broker).
  void ingest(const Inbound& m) { on_message(m, m.received_mono_us); }
  // One turn of the loop's own work (timers, jobs, durable writes), without waiting.
  void service(std::int64_t now_us);
  std::uint64_t accepted() const { return accepted_; }
  std::uint64_t dropped() const { return drops_.total(); }

 private:
  void arm_will();
  void on_connected();
  void on_message(const Inbound& m, std::int64_t now_us);
  void on_node_frame(const Topic& t, const Inbound& m, std::int64_t now_us);
  void on_ctl_request(const Inbound& m, std::int64_t now_us);
  // Named operators (docs/PROTOCOL.md, Operators; gateway_operators.cpp):
  // the key a request on t is checked with, or nullptr (dropped).
  const Key* request_key(const Topic& t, const Inbound& m, std::int64_t now_us);
  // A request of a revoked operator: dropped, and answered with why (rate limited).
  void refuse_revoked(const Inbound& m, const Envelope& env, const std::string& name, std::int64_t now_us);
  // Counts an accepted request and keeps the audit line of one that changes something.
  void record_request(const std::string& name, const kairos_v1_ControlRequest& req);
  void operators_verb(const Inbound& m, std::uint64_t request_id, const kairos_v1_OperatorsRequest& req);
  void drop(DropReason reason, const std::string& topic, const std::string& detail, std::int64_t now_us);
  void periodic(std::int64_t now_us);
  void sync(std::int64_t now_us);
  void publish_mesh_state();
  void heal(const Inbound& m, std::uint64_t request_id, const kairos_v1_HealRequest& req);
  // Key rotation (docs/PROTOCOL.md, Key rotation; gateway_rotation.cpp).
  void rotate_key(const Inbound& m, std::uint64_t request_id, const kairos_v1_RotateKeyRequest& req);
  // A node's frame opened under whichever of its keys signed it; null when
  // it was dropped (counted and logged, a bad MAC handled as a breach).
  EnvelopePtr open_node_frame(const Topic& t, const Inbound& m, std::int64_t now_us);
  // The ack of a rekey command (a refusal ends its rotation): true when it was one.
  bool rotation_ack(const std::string& id, const kairos_v1_Ack& ack);
  // Answers the rotate-key waiting for node id, if any.
  void rotation_done(const std::string& id, bool rotated, const std::string& detail);
  void rotations_service(std::int64_t now_us);  // rotations not confirmed in time are abandoned
  void loop();  // until a stop signal
  // The database could not be written (docs/DESIGN.md 5.7): said loudly once
  // (log, alert); the outbox refuses what must be recorded and tries again every 5 s.
  void storage_failed(const std::string& why);
  // Registry and replay state go to SQLite in one transaction a second.
  void flush();
  // Signs a command for node n with its key and sends it; 0 when there is no key.
  std::uint64_t send_command(const NodeEntry& n, std::uint32_t ttl_ms, const std::function<void(kairos_v1_Command&)>& fill);
  void send_rebirth(const NodeEntry& n);
  // t4: the ack's arrival on the gateway's wall clock (us).
  void on_ack(const std::string& id, const kairos_v1_Ack& ack, std::int64_t t4);
  void fill_conflict(const StoredConflict& c, kairos_v1_ConflictEntry& e) const;

  // The broker's signed head of a Ball play: checked by the plays.
  void on_ball_head(const Inbound& m, std::int64_t now_us);
  void on_result(const std::string& id, const Envelope& env, const Inbound& m);
  std::int64_t next_context_check_us_ = 0;
  void breakers_verb(const Inbound& m, std::uint64_t request_id);
  // Writes what must be durable before anyone hears of it (jobs and their
  // events, conflicts, quarantine, Ball entries) in one transaction, then
  // sends the replies that waited for it.
  void commit_durable();
  void answer(const std::string& response_topic, const Bytes& correlation, kairos_v1_ControlResponse& resp);
  void answer(const Inbound& m, kairos_v1_ControlResponse& resp) { answer(m.response_topic, m.correlation, resp); }
  void fill_mesh_state(kairos_v1_MeshState& s) const;
  void fill_status(kairos_v1_StatusReply& r, std::int64_t now_us) const;
  void fill_nodes(const kairos_v1_NodesRequest& q, kairos_v1_NodeList& r, std::int64_t now_us) const;
  Bytes gateway_state_frame(bool online, std::uint64_t seq);

  const GatewayConfig config_;
  KeyRing keys_;
  KeyBook keybook_;  // node keys as they rotate, over keys_
  struct Rotation {
    std::string response_topic;
    Bytes correlation;
    std::uint64_t request_id = 0;
    std::uint64_t command_id = 0;  // of the rekey command
    std::uint32_t generation = 0;  // the new key's
    bool resent = false;
    std::int64_t sent_us = 0;      // monotonic
    std::int64_t deadline_us = 0;  // monotonic: abandoned then
  };
  std::map<std::string, Rotation> rotations_;  // node -> the rotate-key waiting for its confirmation
  Store store_;
  Outbox outbox_{store_, config_.database, [this](const std::string& why) { storage_failed(why); }};
  // The ports the modules share: signing and sending a command, answering a request.
  const std::function<std::uint64_t(const NodeEntry&, std::uint32_t, const std::function<void(kairos_v1_Command&)>&)>
      send_ = [this](const NodeEntry& n, std::uint32_t ttl_ms, const std::function<void(kairos_v1_Command&)>& fill) {
        return send_command(n, ttl_ms, fill);
      };
  const Answer answer_ = [this](const ReplyTo& to, kairos_v1_ControlResponse& resp) {
    answer(to.topic, to.correlation, resp);
  };
  OperatorBook operators_{config_.keys_dir, keys_.operator_key()};
  RateLimiter revoked_answers_{1.0, 5.0};  // errors sent back to revoked operators
  Registry registry_{RegistrySettings{config_.missed_heartbeats, config_.stale_after_s, config_.class_weight}};
  Escalation escalation_;
  SessionGuard guard_;      // node frames
  std::set<std::string> dirty_sessions_;
  std::set<std::string> dirty_nodes_;
  std::vector<StoredEvent> pending_events_;  // committed with the next flush
  JobDesk jobs_{config_, registry_, escalation_, outbox_,
                {send_,
                 answer_,
                 [this] { return ready(); },
                 [this](const Job& job) { plays_.job_finished(job); }}};
  Plays plays_{config_, registry_, escalation_, outbox_, jobs_,
               {[this](const std::string& t, Envelope& env) { return signer_.seal(t, env, keys_.operator_key(), wall_us()); },
                answer_,
                [this] { return ready(); }}};
  // Monotonic: from then on the registry has settled after the start (births
  // re-read, first heartbeats): jobs are dispatched and the mode judged.
  // Set at the first connect.
  std::int64_t settled_at_us_ = 0;
  bool settled(std::int64_t now_us) const { return settled_at_us_ != 0 && now_us >= settled_at_us_; }
  // Connected, and the registry settled since the start: jobs and the Ball may ask nodes.
  bool ready() const { return settled(mono_us()) && link_ && link_->connected(); }
  ClockSync clock_sync_{registry_,
                       {static_cast<std::int64_t>(config_.ping_period_s * 1e6),
                        static_cast<std::int64_t>(config_.fast_ping_period_s * 1e6),
                        static_cast<std::int64_t>(config_.ping_timeout_s * 1e6), config_.max_pings_in_flight,
                        config_.ping_share, config_.min_ping_rate},
                       [this](const NodeEntry& n, std::int64_t& t1) { return send_ping(n, t1); }};
  std::uint64_t send_ping(const NodeEntry& n, std::int64_t& t1);
  // by: the operator who asked (freeze), "" for the gateway's own (EMERGENCY).
  std::uint64_t write_snapshot(const std::string& kind, const std::string& scope, const std::string& by = "");
  Schedules schedules_{config_, registry_, escalation_,
                      {send_,
                       answer_,
                       [this](const std::string& kind, const std::string& scope, const std::string& by) {
                         return write_snapshot(kind, scope, by);
                       }}};
  const std::uint64_t session_;
  Signer signer_;
  std::unique_ptr<MqttLink> link_;
  DropCounters drops_;
  log::Gate wire_log_{5.0, 20.0};  // every line a frame causes (docs/DESIGN.md 4)
  std::uint64_t accepted_ = 0;
  std::uint64_t queue_drops_seen_ = 0;  // of the link's inbound queue, counted as queue_full
  const std::string ctl_topic_ = ctl_req_topic(config_.mesh);  // requests: taken first (loop)
  std::uint64_t will_seq_ = 0;

  Hysteresis unified_;
  MeshFigures figures_;
  std::int64_t start_us_ = 0;
  std::int64_t connected_at_us_ = 0;
  bool rebirth_round_done_ = false;
  std::int64_t next_sync_us_ = 0;
  std::int64_t next_mesh_publish_us_ = 0;
  std::int64_t next_flush_us_ = 0;
  std::int64_t next_forget_us_ = 0;  // accepted control requests older than their window are forgotten
};

}  // namespace kairos::gw

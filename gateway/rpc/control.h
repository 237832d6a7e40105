#pragma once
// The control RPC (docs/DESIGN.md 5.8, docs/PROTOCOL.md): a request is
// checked (the key of the operator its topic names, its age, its response
// topic, revocation, the client bound to one operator), remembered on disk
// so that a replay is refused after a restart, counted in the operator's
// record and audit log, then handed to its verb in a table the gateway
// fills (one row per verb: its handler, and whether it only reads).
// The operators verb is this module's own. A sector gateway also takes its
// root's requests (docs/DESIGN.md 5.9): on _sector/<sector>/req, signed with
// the sector's key, answered on _sector/<sector>/resp, audited as "root".
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "common/core/ratelimit.h"
#include "common/io/mqtt.h"
#include "gateway/escalation/escalation.h"
#include "gateway/gateway_config.h"
#include "gateway/ingest/ingest.h"
#include "gateway/link/reply.h"
#include "gateway/rpc/operators.h"
#include "gateway/store/outbox.h"

namespace kairos::gw {

class Control {
 public:
  // A request that passed every check, for its verb.
  struct Request {
    ReplyTo to;
    const kairos_v1_ControlRequest& req;
    std::int64_t now_us;  // monotonic: when the loop took it
  };
  // Answers (now, or when what it started ends).
  using Handler = std::function<void(const Request& r)>;
  struct Ports {
    Answer answer;
    // Before a verb runs: the mesh as it is now, and on disk what an answer may report.
    std::function<void(std::int64_t now_us)> prepare;
  };
  // shared: the gateway's operator.key (the operator named "operator").
  Control(const GatewayConfig& config, const Key& shared, Outbox& outbox, Ingest& ingest, Escalation& escalation,
          Ports ports);
  // The operators' records from the database.
  void restore();

  // A verb's row: reads_only verbs are still answered while the database cannot be written.
  void on(pb_size_t verb, Handler handler, bool reads_only = false);
  // A verb answered at once: fill sets the reply. reads (a reply tag): a read,
  // answered ok with that reply unless fill says otherwise; 0: fill says all.
  using Fill = std::function<void(const Request& r, kairos_v1_ControlResponse& resp)>;
  void at_once(pb_size_t verb, pb_size_t reads, Fill fill);
  // A message on a _ctl/req topic, or a sector gateway's _sector/<sector>/req.
  void request(const Inbound& m, std::int64_t now_us);
  void request(const Topic& t, const Inbound& m, std::int64_t now_us);
  // An operator's request authenticated elsewhere (the live page's signed
  // session, docs/WEB.md): refused when the operator is revoked, otherwise
  // audited and handed to its verb as one from MQTT is.
  void local(const std::string& name, const kairos_v1_ControlRequest& req, const ReplyTo& to, std::int64_t now_us);
  // The key an operator signs in with elsewhere (the live page), or nullptr and why:
  // unknown, revoked, or the shared "operator" once named operators exist.
  const Key* operator_key(const std::string& name, std::int64_t now_us, std::string& why);

  // The key an answer on response_topic is signed with.
  const Key& response_key(const std::string& response_topic, std::int64_t now_us) {
    if (sector_key_ && response_topic == root_resp_topic_) return *sector_key_;
    return operators_.response_key(response_topic, now_us);
  }
  // A sector gateway: the sector's key (its summaries are signed with it too); otherwise null.
  const Key* sector_key() const { return sector_key_ ? &*sector_key_ : nullptr; }
  // Who a sector gateway's root requests are audited as.
  static constexpr std::string_view kRoot = "root";

 private:
  // The key a request on m.topic is checked with, or nullptr (dropped).
  const Key* request_key(const Topic& t, const Inbound& m, std::int64_t now_us);
  // Remembers the request (remember false: a replay, dropped), audits it and runs its verb.
  void run(const std::string& asker, const kairos_v1_ControlRequest& req, const ReplyTo& to, bool from_root,
           std::int64_t now_us, const std::function<bool(Store&)>& remember);
  // A request of a revoked operator: dropped, and answered with why (rate limited).
  void refuse_revoked(const Inbound& m, const Envelope& env, const std::string& name, std::int64_t now_us);
  // Counts an accepted request (an operator's) and keeps the audit line of one that changes something (in the transaction).
  void record(Store& store, const std::string& name, const kairos_v1_ControlRequest& req, bool from_root);
  void operators_verb(const Request& r);

  struct Row {
    Handler handler;
    bool reads_only = false;
  };
  const GatewayConfig& config_;
  Outbox& outbox_;
  Ingest& ingest_;
  Escalation& escalation_;
  Ports ports_;
  OperatorBook operators_;
  RateLimiter revoked_answers_{1.0, 5.0};  // errors sent back to revoked operators
  std::map<pb_size_t, Row> verbs_;
  std::optional<Key> sector_key_;  // a sector gateway: the key its root's requests are checked with
  std::string root_req_topic_, root_resp_topic_;
};

}  // namespace kairos::gw

#include "gateway/rpc/control.h"

#include <algorithm>
#include <cmath>

#include "common/core/utf8.h"
#include "common/io/clock.h"
#include "common/io/files.h"
#include "common/io/log.h"
#include "gateway/rpc/operator_store.h"
#include "gateway/rpc/verbs.h"

namespace kairos::gw {

Control::Control(const GatewayConfig& config, const Key& shared, Outbox& outbox, Ingest& ingest, Escalation& escalation,
                 Ports ports)
    : config_(config), outbox_(outbox), ingest_(ingest), escalation_(escalation), ports_(std::move(ports)),
      operators_(config.keys_dir, shared) {
  if (config.role == GatewayConfig::Role::sector) {
    const std::string path = config.sector_key_path(config.sector);
    try {
      sector_key_ = load_key_file(path);
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string(e.what()) + " (the sector's key, shared with its root: kairosctl provision "
                               "--sector " + config.sector + " writes it)");
    }
    root_req_topic_ = sector_topic(config.mesh, config.sector, TopicKind::sector_req);
    root_resp_topic_ = sector_topic(config.mesh, config.sector, TopicKind::sector_resp);
  }
  on(kairos_v1_ControlRequest_operators_tag, [this](const Request& r) { operators_verb(r); });
}

void Control::restore() {
  operators_.restore(load_operators(outbox_.store()));
  if (!operators_.revoked(std::string(kSharedOperator)) && operators_.names().size() > 1)
    log::warn("operators", "requests on _ctl/req signed with the shared operator.key are taken as operator 'operator'; "
                           "once every console has a named key: kairosctl operators revoke operator --confirm");
}

void Control::on(pb_size_t verb, Handler handler, bool reads_only) { verbs_[verb] = {std::move(handler), reads_only}; }

void Control::at_once(pb_size_t verb, pb_size_t reads, Fill fill) {
  on(verb, [this, reads, fill = std::move(fill)](const Request& r) {
    auto resp = new_response(r.req.request_id);
    if (reads) {
      resp->ok = true;
      resp->which_reply = reads;
    }
    fill(r, *resp);
    ports_.answer(r.to, *resp);
  }, reads != 0);
}

const Key* Control::request_key(const Topic& t, const Inbound& m, std::int64_t now_us) {
  if (t.kind == TopicKind::sector_req) {
    if (!sector_key_ || m.topic != root_req_topic_)
      ingest_.drop(DropReason::bad_topic, m.topic, "not this sector gateway's request topic", now_us);
    return m.topic == root_req_topic_ && sector_key_ ? &*sector_key_ : nullptr;
  }
  if (t.kind != TopicKind::ctl_req) {
    ingest_.drop(DropReason::bad_topic, m.topic, "not a request topic", now_us);
    return nullptr;
  }
  if (t.name == kSharedOperator) {
    ingest_.drop(DropReason::unknown_sender, m.topic, "'operator' is the shared key's: its requests go on _ctl/req", now_us);
    return nullptr;
  }
  std::string why;
  const Key* key = operators_.key(t.name.empty() ? std::string(kSharedOperator) : t.name, now_us, why);
  if (!key) ingest_.drop(DropReason::unknown_sender, m.topic, why, now_us);
  return key;
}

void Control::request(const Inbound& m, std::int64_t now_us) {
  const auto t = parse_topic(m.topic);
  if (!t) return ingest_.drop(DropReason::bad_topic, m.topic, "not a request topic", now_us);
  request(*t, m, now_us);
}

void Control::request(const Topic& t, const Inbound& m, std::int64_t now_us) {
  // The key comes from the topic: an operator's own, the shared one (docs/PROTOCOL.md,
  // Operators), or on a sector gateway the sector's for its root's requests.
  const Key* key = request_key(t, m, now_us);
  if (!key) return;
  const bool from_root = t.kind == TopicKind::sector_req;
  auto opened = open(m.topic, m.payload, *key);
  if (!opened) return ingest_.drop(*opened.drop, m.topic, opened.detail, now_us);
  const Envelope& env = *opened.env;
  if (!kind_matches(TopicKind::ctl_req, env))
    return ingest_.drop(DropReason::kind_mismatch, m.topic, "not a request", now_us);
  double age_s = std::abs(static_cast<double>(wall_us() - env.sent_at_us)) / 1e6;
  if (age_s > config_.ctl_max_age_s)
    return ingest_.drop(DropReason::replay, m.topic,
                        "request stamped " + std::to_string(static_cast<long>(age_s)) + " s away", now_us);
  // The root's answers go to the sector's one response topic, matched by request id
  // (a bridge need not carry MQTT v5 properties).
  if (!from_root && m.response_topic != ctl_resp_topic(config_.mesh, env.sender))
    return ingest_.drop(DropReason::sender_mismatch, m.topic, "response topic '" + m.response_topic + "'", now_us);
  const std::string asker = from_root ? std::string(kRoot) : operator_of(m.topic);
  if (!from_root && operators_.revoked(asker)) return refuse_revoked(m, env, asker, now_us);
  if (!from_root && !operators_.bind_client(env.sender, asker))
    return ingest_.drop(DropReason::sender_mismatch, m.topic,
                        "client " + std::string(env.sender) + " speaks for another operator", now_us);
  const auto& req = env.message.ctl_request;
  const ReplyTo to = from_root ? ReplyTo{root_resp_topic_, {}, asker} : ReplyTo{m.response_topic, m.correlation, asker};
  // Every accepted request is remembered on disk for as long as its age
  // lets it pass: a replay is refused after a restart and whatever the
  // number of clients (docs/DESIGN.md 5.8).
  run(asker, req, to, from_root, now_us, [&](Store& store) {
    if (store.remember_request(env.sender, env.session_id, env.seq, env.sent_at_us)) return true;
    ingest_.drop(DropReason::replay, m.topic, "request seq " + std::to_string(env.seq) + " already answered", now_us);
    return false;
  });
}

void Control::local(const std::string& name, const kairos_v1_ControlRequest& req, const ReplyTo& to,
                    std::int64_t now_us) {
  if (operators_.revoked(name)) {
    auto resp = new_response(req.request_id);
    set_string(resp->error, "operator " + name + " is revoked");
    return ports_.answer(to, *resp);
  }
  run(name, req, to, false, now_us, [](Store&) { return true; });
}

const Key* Control::operator_key(const std::string& name, std::int64_t now_us, std::string& why) {
  // Every console holds the shared key: once operators have keys of their own, it signs in nobody
  // (over MQTT the broker's ACL keeps a named operator to its own request topic; here nothing would).
  if (name == kSharedOperator && operators_.names().size() > 1) {
    why = "the shared operator.key is every console's, and this gateway has named operators: sign in with your own";
    return nullptr;
  }
  if (operators_.revoked(name)) {
    why = "operator " + name + " is revoked";
    return nullptr;
  }
  return operators_.key(name, now_us, why);
}

void Control::run(const std::string& asker, const kairos_v1_ControlRequest& req, const ReplyTo& to, bool from_root,
                  std::int64_t now_us, const std::function<bool(Store&)>& remember) {
  const auto row = verbs_.find(req.which_verb);
  // A request that cannot be recorded is refused, unless it only reads.
  bool remembered = false, replayed = false;
  if (!outbox_.paused(mono_us()))
    remembered = outbox_.transaction([&](Store& store) {
      replayed = !remember(store);
      if (!replayed) record(store, asker, req, from_root);
    }, mono_us());
  if (replayed) return;
  if (!remembered && !(row != verbs_.end() && row->second.reads_only)) {
    auto resp = new_response(req.request_id);
    set_string(resp->error, storage_refusal(outbox_));
    return ports_.answer(to, *resp);
  }
  ingest_.count_accepted();
  if (row == verbs_.end()) {
    auto resp = new_response(req.request_id);
    set_string(resp->error, "unknown verb: this gateway does not support it (upgrade the gateway)");
    return ports_.answer(to, *resp);
  }
  ports_.prepare(now_us);
  row->second.handler({to, req, now_us});
}

void Control::refuse_revoked(const Inbound& m, const Envelope& env, const std::string& name, std::int64_t now_us) {
  ingest_.drop(DropReason::revoked, m.topic, "operator " + name + " is revoked", now_us);
  // Told why, so that nobody waits on a silent gateway; no more than a few
  // answers a second, whatever a revoked operator sends.
  if (!revoked_answers_.allow(now_us)) return;
  operators_.bind_client(env.sender, name);  // signed with its own key: it can check the answer
  const OperatorRecord* r = operators_.find(name);
  auto resp = new_response(env.message.ctl_request.request_id);
  set_string(resp->error, "operator " + name + " is revoked" +
                              (r && !r->changed_by.empty() ? " (by " + r->changed_by + ")" : std::string()) +
                              ": its requests are refused; an active operator can restore it (kairosctl operators "
                              "restore " + name + " --confirm)");
  ports_.answer({m.response_topic, m.correlation, name}, *resp);
}

void Control::record(Store& store, const std::string& name, const kairos_v1_ControlRequest& req, bool from_root) {
  const std::int64_t now = wall_us();
  if (!from_root) {  // the root is no operator of this gateway: only audited
    operators_.count_request(name, now);
    save_operator(store, *operators_.find(name));
  }
  AuditLine line = audit_line(req);
  if (line.verb.empty()) return;
  append_operator_action(store, {0, name, line.verb, line.detail, now});
  log::info("operators", name + ": " + line.verb + " " + log_safe(line.detail, 128));
}

void Control::operators_verb(const Request& rq) {
  const auto& req = rq.req.verb.operators;
  const std::string& by = rq.to.by;
  auto resp = new_response(rq.req.request_id);
  resp->which_reply = kairos_v1_ControlResponse_operators_tag;
  auto& r = resp->reply.operators;
  set_string(r.you, by);
  auto refuse = [&](const std::string& why) {
    resp->ok = false;
    set_string(resp->error, "operators: " + why);
    ports_.answer(rq.to, *resp);
  };
  const std::string name = req.name;
  Store& store = outbox_.store();
  switch (req.action) {
    case kairos_v1_OperatorsAction_OPERATORS_LIST:
      break;
    case kairos_v1_OperatorsAction_OPERATORS_LOG: {
      if (!name.empty() && !valid_name(name)) return refuse("'" + name + "' is not an operator name");
      const std::uint32_t limit = req.limit ? std::min(req.limit, 20u) : 20u;
      for (const auto& a : operator_actions(store, name, req.before_id, limit)) {
        auto& o = r.log[r.log_count++];
        o.id = a.id;
        o.at_us = a.at_wall_us;
        set_string(o.name, a.name);
        set_string(o.verb, a.verb);
        set_string(o.detail, a.detail);
      }
      resp->ok = true;
      return ports_.answer(rq.to, *resp);
    }
    case kairos_v1_OperatorsAction_OPERATORS_REVOKE:
    case kairos_v1_OperatorsAction_OPERATORS_RESTORE: {
      const bool revoke = req.action == kairos_v1_OperatorsAction_OPERATORS_REVOKE;
      const char* verb = revoke ? "revoke" : "restore";
      if (!valid_name(name)) return refuse(std::string(verb) + " names an operator (kairosctl operators lists them)");
      if (!req.confirm)
        return refuse(std::string(verb) + " " + name + " needs --confirm" +
                      (revoke ? ": its requests are refused from then on" : ""));
      if (auto why = revoke ? operators_.may_revoke(name) : operators_.may_restore(name); !why.empty()) return refuse(why);
      const std::int64_t now = wall_us();
      const OperatorRecord before = operators_.find(name) ? *operators_.find(name) : OperatorRecord{};
      operators_.set_revoked(name, revoke, by, now);
      if (!outbox_.transaction([&](Store& s) { save_operator(s, *operators_.find(name)); }, mono_us())) {
        operators_.set_revoked(name, before.revoked, before.changed_by, before.changed_wall_us);
        return refuse(storage_refusal(outbox_));
      }
      const std::string what = "operator " + name + (revoke ? " revoked by " : " restored by ") + by;
      log::warn("operators", what);
      // Every operator hears of it (and the hook runs): a revocation is a security event.
      escalation_.alert({revoke ? "OPERATOR_REVOKED" : "OPERATOR_RESTORED", 4, "", what, now,
                         revoke ? "its requests are refused; kairosctl operators restore " + name + " --confirm undoes it"
                                : "its requests are taken again; kairosctl operators revoke " + name +
                                      " --confirm undoes it",
                         0, "", ""});
      outbox_.commit(mono_us());  // the alert goes out now
      break;
    }
    default:
      return refuse("unknown action: this gateway does not support it (upgrade the gateway)");
  }
  const auto names = operators_.names();
  r.total = static_cast<std::uint32_t>(names.size());
  for (const auto& n : names) {
    if (r.operators_count >= sizeof r.operators / sizeof r.operators[0]) break;
    auto& o = r.operators[r.operators_count++];
    set_string(o.name, n);
    set_string(o.state, operators_.revoked(n) ? "revoked" : "active");
    set_string(o.key, to_string(operators_.key_kind(n)));
    if (const OperatorRecord* rec = operators_.find(n)) {
      o.requests = rec->requests;
      o.last_request_us = rec->last_request_wall_us;
      set_string(o.changed_by, rec->changed_by);
      o.changed_us = rec->changed_wall_us;
    }
  }
  resp->ok = true;
  ports_.answer(rq.to, *resp);
}

}  // namespace kairos::gw

// Named operators at the gateway (docs/PROTOCOL.md, Operators): the key a
// request is checked with, revocation, and the record of who asked what.
#include <algorithm>

#include "common/core/utf8.h"
#include "common/io/clock.h"
#include "common/io/log.h"
#include "gateway/gateway.h"

namespace kairos::gw {

const Key* Gateway::request_key(const Topic& t, const Inbound& m, std::int64_t now_us) {
  if (t.name == kSharedOperator) {
    drop(DropReason::unknown_sender, m.topic, "'operator' is the shared key's: its requests go on _ctl/req", now_us);
    return nullptr;
  }
  std::string why;
  const Key* key = operators_.key(t.name.empty() ? std::string(kSharedOperator) : t.name, now_us, why);
  if (!key) drop(DropReason::unknown_sender, m.topic, why, now_us);
  return key;
}

void Gateway::refuse_revoked(const Inbound& m, const Envelope& env, const std::string& name, std::int64_t now_us) {
  drop(DropReason::revoked, m.topic, "operator " + name + " is revoked", now_us);
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
  answer(m, *resp);
}

void Gateway::record_request(const std::string& name, const kairos_v1_ControlRequest& req) {
  const std::int64_t now = wall_us();
  operators_.count_request(name, now);
  save_operator(store_, *operators_.find(name));
  AuditLine line = audit_line(req);
  if (line.verb.empty()) return;
  append_operator_action(store_, {0, name, line.verb, line.detail, now});
  log::info("operators", name + ": " + line.verb + " " + log_safe(line.detail, 128));
}

void Gateway::operators_verb(const Inbound& m, std::uint64_t request_id, const kairos_v1_OperatorsRequest& req) {
  const std::string by = operator_of(m.topic);
  auto resp = new_response(request_id);
  resp->which_reply = kairos_v1_ControlResponse_operators_tag;
  auto& r = resp->reply.operators;
  set_string(r.you, by);
  auto refuse = [&](const std::string& why) {
    resp->ok = false;
    set_string(resp->error, "operators: " + why);
    answer(m, *resp);
  };
  const std::string name = req.name;
  switch (req.action) {
    case kairos_v1_OperatorsAction_OPERATORS_LIST:
      break;
    case kairos_v1_OperatorsAction_OPERATORS_LOG: {
      if (!name.empty() && !valid_name(name)) return refuse("'" + name + "' is not an operator name");
      const std::uint32_t limit = req.limit ? std::min(req.limit, 20u) : 20u;
      for (const auto& a : operator_actions(store_, name, req.before_id, limit)) {
        auto& o = r.log[r.log_count++];
        o.id = a.id;
        o.at_us = a.at_wall_us;
        set_string(o.name, a.name);
        set_string(o.verb, a.verb);
        set_string(o.detail, a.detail);
      }
      resp->ok = true;
      return answer(m, *resp);
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
      operators_.set_revoked(name, revoke, by, now);
      store_.begin();
      save_operator(store_, *operators_.find(name));
      store_.commit();
      const std::string what = "operator " + name + (revoke ? " revoked by " : " restored by ") + by;
      log::warn("operators", what);
      // Every operator hears of it (and the hook runs): a revocation is a security event.
      escalation_.alert({revoke ? "OPERATOR_REVOKED" : "OPERATOR_RESTORED", 4, "", what, now,
             revoke ? "its requests are refused; kairosctl operators restore " + name + " --confirm undoes it"
                    : "its requests are taken again; kairosctl operators revoke " + name + " --confirm undoes it",
             0, "", ""});
      commit_durable();  // the alert goes out now
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
  answer(m, *resp);
}

}  // namespace kairos::gw

#include "gateway/rpc/operators.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <stdexcept>

#include "common/core/topic.h"
#include "common/core/utf8.h"
#include "common/io/files.h"

namespace kairos::gw {

namespace {

constexpr std::size_t kMaxDetail = 128;  // OperatorAction.detail's bound
constexpr std::size_t kMaxClients = 50'000;

std::string cut(std::string s) {
  s.resize(utf8_cut(s, std::min(s.size(), kMaxDetail)));
  return s;
}

std::string quoted(std::string_view s, std::size_t max = 48) {
  std::string q(s.substr(0, utf8_cut(s, std::min(s.size(), max))));
  return "'" + q + (q.size() < s.size() ? "...'" : "'");
}

const char* action_name(const kairos_v1_Command& c) {
  switch (c.which_action) {
    case kairos_v1_Command_rebirth_tag: return "rebirth";
    case kairos_v1_Command_set_output_tag: return "set_output";
    case kairos_v1_Command_freeze_tag: return "freeze";
    case kairos_v1_Command_thaw_tag: return "thaw";
    case kairos_v1_Command_heal_tag: return "heal";
    case kairos_v1_Command_config_reload_tag: return "config_reload";
    default: return "?";
  }
}

std::string or_all(const char* s) { return s[0] ? std::string(s) : "all"; }

}  // namespace

std::string_view to_string(OperatorKey k) {
  switch (k) {
    case OperatorKey::named: return "named";
    case OperatorKey::shared: return "shared";
    default: return "missing";
  }
}

AuditLine audit_line(const kairos_v1_ControlRequest& req) {
  switch (req.which_verb) {
    case kairos_v1_ControlRequest_delegate_tag: {
      const auto& d = req.verb.delegate;
      return {"delegate", cut(std::string(d.handler) + " to " + (d.to[0] ? d.to : "any node") + ", redundancy " +
                              std::to_string(d.redundancy ? d.redundancy : 1) + ", payload " +
                              std::to_string(d.payload.size) + " bytes" + (d.confirm ? ", confirmed" : ""))};
    }
    case kairos_v1_ControlRequest_ask_tag: {
      const auto& a = req.verb.ask;
      return {"ask", cut(quoted(std::string_view(a.question)) + " of " + std::to_string(a.sample ? a.sample : 5) +
                         " nodes, handler " + (a.handler[0] ? a.handler : "read") + (a.confirm ? ", confirmed" : ""))};
    }
    case kairos_v1_ControlRequest_freeze_tag: {
      const auto& f = req.verb.freeze;
      return {f.thaw ? "thaw" : "freeze", cut(or_all(f.scope) + (f.confirm ? ", confirmed" : ""))};
    }
    case kairos_v1_ControlRequest_broadcast_tag: {
      const auto& b = req.verb.broadcast;
      return {"broadcast", cut(quoted(std::string_view(b.text)) + " to " + or_all(b.targets) + (b.ack ? ", acks" : ""))};
    }
    case kairos_v1_ControlRequest_schedule_tag: {
      const auto& s = req.verb.schedule;
      std::string when = s.at_us ? "at " + std::to_string(s.at_us) + " us" : "in " + std::to_string(s.in_ms) + " ms";
      return {"schedule", cut(std::string(action_name(s.command)) + " to " + or_all(s.targets) + ", " + when +
                              (s.strategy[0] ? ", " + std::string(s.strategy) : ""))};
    }
    case kairos_v1_ControlRequest_heal_tag:
      return {"heal", cut(req.verb.heal.node)};
    case kairos_v1_ControlRequest_forget_tag:
      return {"forget", cut(req.verb.forget.node)};
    case kairos_v1_ControlRequest_quarantine_tag: {
      const auto& q = req.verb.quarantine;
      return {"quarantine", cut(std::string(q.node) + (q.reason[0] ? ": " + std::string(q.reason) : ""))};
    }
    case kairos_v1_ControlRequest_breakers_tag: {
      const auto& b = req.verb.breakers;
      if (b.hold[0]) return {"breakers", cut(std::string("hold ") + b.hold)};
      if (b.release[0]) return {"breakers", cut(std::string("release ") + b.release)};
      return {};
    }
    case kairos_v1_ControlRequest_resolve_tag: {
      const auto& r = req.verb.resolve;
      return {"resolve", cut("task " + std::to_string(r.task) + (r.note[0] ? ": " + std::string(r.note) : ""))};
    }
    case kairos_v1_ControlRequest_ball_tag: {
      const auto& b = req.verb.ball;
      const std::string as = b.as[0] ? std::string(" as ") + b.as : "";
      switch (b.verb) {
        case kairos_v1_BallVerb_BALL_HUT: return {"ball", cut("hut " + std::string(b.session) + as)};
        case kairos_v1_BallVerb_BALL_SAY:
          return {"ball", cut("say " + std::string(b.session) + as + (b.to[0] ? std::string(" to ") + b.to : ""))};
        case kairos_v1_BallVerb_BALL_ACK:
          return {"ball", cut("ack " + std::string(b.session) + " #" + std::to_string(b.seq) + as)};
        case kairos_v1_BallVerb_BALL_DONE:
          return {"ball", cut("done " + std::string(b.session) + " objective " + std::to_string(b.objective) + as)};
        default: return {};  // show, list
      }
    }
    case kairos_v1_ControlRequest_rotate_key_tag:
      return {"rotate-key", cut(req.verb.rotate_key.node)};
    case kairos_v1_ControlRequest_operators_tag: {
      const auto& o = req.verb.operators;
      if (o.action == kairos_v1_OperatorsAction_OPERATORS_REVOKE) return {"revoke", cut(o.name)};
      if (o.action == kairos_v1_OperatorsAction_OPERATORS_RESTORE) return {"restore", cut(o.name)};
      return {};
    }
    default:
      return {};
  }
}

std::string operator_of(std::string_view ctl_req_topic) {
  auto t = parse_topic(ctl_req_topic);
  return t && !t->name.empty() ? t->name : std::string(kSharedOperator);
}

OperatorBook::OperatorBook(std::string keys_dir, const Key& shared, std::int64_t recheck_us)
    : dir_(std::move(keys_dir)), shared_(shared), recheck_us_(recheck_us) {}

std::string OperatorBook::path_of(const std::string& name) const { return dir_ + "/operators/" + name + ".key"; }

void OperatorBook::restore(const std::vector<OperatorRecord>& rows) {
  for (const auto& r : rows) records_[r.name] = r;
}

const Key* OperatorBook::key(const std::string& name, std::int64_t now_us, std::string& why) {
  if (name == kSharedOperator) return &shared_;
  if (!valid_name(name)) {
    why = "'" + name + "' is not an operator name";
    return nullptr;
  }
  auto it = keys_.find(name);
  if (it != keys_.end() && now_us - it->second.checked_us < recheck_us_) return &it->second.key;
  const std::string path = path_of(name);
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (it != keys_.end()) keys_.erase(it);
    why = "no key for operator " + name + " (" + path + ")";
    return nullptr;
  }
  const std::int64_t mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
  if (it != keys_.end() && it->second.mtime_ns == mtime_ns && it->second.size == st.st_size) {
    it->second.checked_us = now_us;
    return &it->second.key;
  }
  try {
    Cached c{load_key_file(path), mtime_ns, static_cast<std::int64_t>(st.st_size), now_us};
    auto& slot = keys_[name] = c;
    return &slot.key;
  } catch (const std::exception& e) {
    if (it != keys_.end()) keys_.erase(it);
    why = e.what();
    return nullptr;
  }
}

OperatorKey OperatorBook::key_kind(const std::string& name) const {
  if (name == kSharedOperator) return OperatorKey::shared;
  std::error_code ec;
  return valid_name(name) && std::filesystem::is_regular_file(path_of(name), ec) ? OperatorKey::named
                                                                                 : OperatorKey::missing;
}

const OperatorRecord* OperatorBook::find(const std::string& name) const {
  auto it = records_.find(name);
  return it == records_.end() ? nullptr : &it->second;
}

bool OperatorBook::revoked(const std::string& name) const {
  const auto* r = find(name);
  return r && r->revoked;
}

std::vector<std::string> OperatorBook::names() const {
  std::set<std::string> out{std::string(kSharedOperator)};
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir_ + "/operators", ec), end; !ec && it != end; it.increment(ec)) {
    const auto& p = it->path();
    if (p.extension() != ".key") continue;
    std::string name = p.stem().string();
    if (valid_name(name) && name != kSharedOperator) out.insert(name);
  }
  for (const auto& [name, r] : records_) out.insert(name);
  return {out.begin(), out.end()};
}

bool OperatorBook::active(const std::string& name) const {
  return !revoked(name) && key_kind(name) != OperatorKey::missing;
}

std::string OperatorBook::may_revoke(const std::string& name) const {
  if (key_kind(name) == OperatorKey::missing && !find(name))
    return "no operator '" + name + "' (kairosctl operators lists them)";
  if (revoked(name)) return "operator " + name + " is already revoked";
  if (active(name)) {
    bool other = false;
    for (const auto& n : names()) other = other || (n != name && active(n));
    if (!other)
      return name + " is the last active operator: nobody could run the mesh after it (kairosctl provision --operator "
                    "NAME makes another; copy the gateway's keys, then revoke)";
  }
  return "";
}

std::string OperatorBook::may_restore(const std::string& name) const {
  if (key_kind(name) == OperatorKey::missing && !find(name))
    return "no operator '" + name + "' (kairosctl operators lists them)";
  if (!revoked(name)) return "operator " + name + " is not revoked";
  return "";
}

void OperatorBook::set_revoked(const std::string& name, bool revoked, const std::string& by, std::int64_t wall_us) {
  auto& r = records_[name];
  r.name = name;
  r.revoked = revoked;
  r.changed_by = by;
  r.changed_wall_us = wall_us;
}

void OperatorBook::count_request(const std::string& name, std::int64_t wall_us) {
  auto& r = records_[name];
  r.name = name;
  ++r.requests;
  r.last_request_wall_us = wall_us;
}

bool OperatorBook::bind_client(const std::string& client, const std::string& name) {
  if (clients_.size() >= kMaxClients) clients_.clear();  // client ids are random per kairosctl run
  auto [it, added] = clients_.emplace(client, name);
  return added || it->second == name;
}

const Key& OperatorBook::response_key(const std::string& response_topic, std::int64_t now_us) {
  auto t = parse_topic(response_topic);
  if (!t || t->kind != TopicKind::ctl_resp) return shared_;
  auto it = clients_.find(t->name);
  if (it == clients_.end()) return shared_;
  std::string why;
  const Key* k = key(it->second, now_us, why);
  return k ? *k : shared_;
}

}  // namespace kairos::gw

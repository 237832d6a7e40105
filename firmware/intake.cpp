#include "firmware/intake.h"

#include <cstdio>

#include "common/core/topic.h"

namespace kairos::node {

CommandIntake::CommandIntake(std::string id, const Key& key, std::uint64_t session, SessionFile* sessions)
    : id_(std::move(id)), key_(key), session_(session), sessions_(sessions) {
  if (sessions_)
    for (const auto& [gateway, s] : sessions_->peers()) guard_.restore(gateway, s, 0);
}

CommandIntake::Result CommandIntake::receive(const std::string& topic, ByteView payload, std::int64_t received_us,
                                             bool quarantined) {
  Result r;
  auto dropped = [&](DropReason reason, std::string detail, bool breach) {
    drops_.add(reason);
    r.kind = Result::Kind::dropped;
    r.drop = reason;
    r.detail = std::move(detail);
    r.breach = breach;
    return std::move(r);
  };
  auto opened = open(topic, payload, key_);
  if (!opened && *opened.drop == DropReason::bad_mac && retired_) {
    // Signed before the gateway heard that this node took its new key?
    if (auto old = open(topic, payload, *retired_)) {
      if (received_us > retired_until_us_)
        return dropped(DropReason::bad_mac, "signed with the key this node rotated away from", false);
      opened = std::move(old);
    }
  } else if (opened) {
    retired_until_us_ = 0;  // the gateway signs with the new key: the old one is done
  }
  // A forged or corrupted command addressed to this node is a breach.
  if (!opened) return dropped(*opened.drop, opened.detail, *opened.drop == DropReason::bad_mac);
  if (!kind_matches(TopicKind::cmd, *opened.env)) return dropped(DropReason::kind_mismatch, "not a command", false);
  const auto& env = *opened.env;
  const auto& cmd = env.message.command;
  // A command for an earlier start of this node, or from an ended gateway
  // session: a replay or a stale copy, refused without a breach (docs/DESIGN.md 4).
  if (cmd.to_session != session_)
    return dropped(DropReason::stale_session, "command for session " + std::to_string(cmd.to_session), false);
  auto v = guard_.check(env.sender, env.session_id, env.seq, true);
  if (v.drop == DropReason::stale_session)
    return dropped(*v.drop, "command of an ended gateway session " + std::to_string(env.session_id), false);
  // A copy of a command already taken: refused, but not the node's breach
  // (anyone who can replay would otherwise quarantine it).
  if (v.drop) return dropped(*v.drop, "replayed command, seq " + std::to_string(env.seq), false);
  if (v.new_session && sessions_) sessions_->set_peer(env.sender, env.session_id);

  r.env = std::move(opened.env);
  if (cmd.expires_at_us != 0 && received_us > cmd.expires_at_us) {
    char why[64];
    std::snprintf(why, sizeof why, "expired %.1f ms ago", static_cast<double>(received_us - cmd.expires_at_us) / 1000.0);
    r.kind = Result::Kind::refused;
    r.detail = why;
    return r;
  }
  if (cmd.execute_at_us == 0 || cmd.which_action == kairos_v1_Command_ping_tag) {
    r.kind = Result::Kind::run;
    return r;
  }
  std::int64_t tolerance_us =
      static_cast<std::int64_t>(cmd.late_tolerance_ms ? cmd.late_tolerance_ms : kDefaultLateToleranceMs) * 1000;
  std::int64_t late_us = received_us - cmd.execute_at_us;
  r.kind = Result::Kind::refused;
  if (late_us > tolerance_us) {
    char why[64];
    std::snprintf(why, sizeof why, "late by %.1f ms", static_cast<double>(late_us) / 1000.0);
    r.detail = why;
    return r;
  }
  if (quarantined) {
    r.detail = "quarantined: only heal and config_reload are obeyed";
    return r;
  }
  r.kind = Result::Kind::held;
  held_.emplace(cmd.execute_at_us, Held{copy_envelope(*r.env), received_us});
  return r;
}

void CommandIntake::rekey(const Key& next, std::int64_t now_us) {
  retired_ = key_;
  retired_until_us_ = now_us + kRetiredGraceUs;
  key_ = next;
}

EnvelopePtr CommandIntake::take_due(std::int64_t now_us, std::int64_t* received_us) {
  if (held_.empty() || held_.begin()->first > now_us) return nullptr;
  auto env = std::move(held_.begin()->second.env);
  if (received_us) *received_us = held_.begin()->second.received_us;
  held_.erase(held_.begin());
  return env;
}

EnvelopePtr make_ack(const kairos_v1_Command& cmd, int state, const std::string& detail,
                                   std::int64_t received_us, std::int64_t executed_us) {
  auto env = make_envelope("", 0, 0, 0);
  env->which_message = kairos_v1_Envelope_ack_tag;
  auto& a = env->message.ack;
  a.command_id = cmd.command_id;
  a.state = state;
  set_string(a.detail, detail);
  a.received_at_us = received_us;
  a.executed_at_us = executed_us;
  return env;
}

}  // namespace kairos::node

// Key rotation at the gateway (docs/PROTOCOL.md, Key rotation): the
// rotate-key verb, node frames opened under whichever key signed them, the
// node's confirmation and the rotations abandoned for want of one.
#include "gateway/gateway.h"

#include "common/core/utf8.h"
#include "common/io/clock.h"
#include "common/io/log.h"

namespace kairos::gw {

namespace {

constexpr std::uint32_t kDefaultRotateTimeoutMs = 15'000;
constexpr std::uint32_t kMaxRotateTimeoutMs = 600'000;

}  // namespace

EnvelopePtr Gateway::open_node_frame(const Topic& t, const Inbound& m, std::int64_t now_us) {
  auto o = keybook_.open(t.name, t.kind, m.topic, m.payload, now_us);
  if (!o.known) {
    drop(DropReason::unknown_sender, m.topic, "no key for " + t.name, now_us);
    return nullptr;
  }
  if (o.frame) {
    if (o.promoted) {
      log::info("keys", t.name + ": key generation " + std::to_string(o.generation) +
                            " confirmed (its first frame, seq " + std::to_string(o.frame.env->seq) + " on " +
                            log_safe(m.topic) + "); generation " + std::to_string(o.generation - 1) +
                            " is refused for the node's later frames");
      rotation_done(t.name, true, "");
    }
    return std::move(o.frame.env);
  }
  if (o.retired_refused) {
    // Refused, but no breach: whoever kept the retired key (a copy, a node
    // restored from an old backup) could otherwise quarantine the node with
    // it. The operator hears of it: that key should exist nowhere any more.
    if (!m.retained) escalation_.conflict("RETIRED_KEY", 4, t.name, "frame on " + m.topic + " " + o.frame.detail, now_us);
    drop(DropReason::bad_mac, m.topic, o.frame.detail, now_us);
    return nullptr;
  }
  if (*o.frame.drop == DropReason::bad_mac) {
    // A frame on a known node's topic that fails that node's MAC: a forged or
    // altered frame, or a node whose key no longer matches (docs/DESIGN.md 5.6).
    escalation_.conflict("HASH_MISMATCH", 4, t.name, "frame on " + m.topic + " failed its MAC", now_us);
    escalation_.quarantine(t.name, "HASH_MISMATCH: a frame on its topic failed its MAC");
  }
  drop(*o.frame.drop, m.topic, o.frame.detail, now_us);
  return nullptr;
}

void Gateway::rotate_key(const Inbound& m, std::uint64_t request_id, const kairos_v1_RotateKeyRequest& req) {
  auto refuse = [&](const std::string& why) {
    auto resp = new_response(request_id);
    set_string(resp->error, "rotate-key: " + why);
    answer(m, *resp);
  };
  const std::string id = req.node;
  const NodeEntry* n = registry_.find(id);
  if (!n) return refuse("no node '" + id + "' (kairosctl nodes lists them)");
  // The node must answer, under the new key, for the rotation to complete.
  if (!n->online) return refuse(id + " is offline; rotate its key once it is online again");
  if (n->quarantined || n->status == kairos_v1_NodeStatus_QUARANTINED)
    return refuse(id + " is quarantined and obeys only heal; find out why (kairosctl conflicts), kairosctl heal " + id +
                  ", then rotate");
  if (rotations_.count(id)) return refuse("a rotation of " + id + " is already waiting for the node's confirmation");
  if (req.timeout_ms > kMaxRotateTimeoutMs) return refuse("the timeout is at most 600000 ms");
  const std::uint32_t timeout_ms = req.timeout_ms ? req.timeout_ms : kDefaultRotateTimeoutMs;
  const std::int64_t now = mono_us();
  auto b = keybook_.begin(id, now);
  if (!b.error.empty()) {
    log::error("keys", id + ": no rotation: cannot keep the new key: " + b.error);
    return refuse("cannot keep the new key (" + b.error + "); nothing was sent. gateway.rotated_keys_dir (" +
                  keybook_.dir() + ") must be writable by the gateway");
  }
  const std::uint64_t command = send_command(*n, timeout_ms, [&](kairos_v1_Command& cmd) {
    cmd.which_action = kairos_v1_Command_rekey_tag;
    cmd.action.rekey.generation = b.generation;
    cmd.action.rekey.wrapped_key.size = static_cast<pb_size_t>(b.wrapped.size());
    std::copy(b.wrapped.begin(), b.wrapped.end(), cmd.action.rekey.wrapped_key.bytes);
  });
  if (!command) return refuse("no key for " + id);
  rotations_[id] = {m.response_topic, m.correlation, request_id, command, b.generation, b.resent, now,
                    now + std::int64_t{timeout_ms} * 1000};
  log::info("keys", "rotating the key of " + id + " to generation " + std::to_string(b.generation) + " (" +
                        (b.resent ? "the pending key of an unconfirmed rotation, sent again"
                                  : "new key kept in " + keybook_.path(id, ".key.next")) +
                        "); both keys are taken until the node confirms");
}

bool Gateway::rotation_ack(const std::string& id, const kairos_v1_Ack& ack) {
  auto it = rotations_.find(id);
  if (it == rotations_.end() || it->second.command_id != ack.command_id) return false;
  // READY comes signed with the new key and has completed the rotation
  // already (open_node_frame); a READY under the old one would say the node
  // has not switched: the rotation then waits for its time.
  if (ack.state < 0) {
    const std::string why = std::string("the node refused the new key: ") + ack.detail;
    log::warn("keys", id + ": rotation to generation " + std::to_string(it->second.generation) + " abandoned: " +
                          log_safe(ack.detail) + "; the node keeps generation " +
                          std::to_string(it->second.generation - 1));
    rotation_done(id, false, why);
  }
  return true;
}

void Gateway::rotation_done(const std::string& id, bool rotated, const std::string& detail) {
  auto it = rotations_.find(id);
  if (it == rotations_.end()) return;
  const Rotation& r = it->second;
  auto resp = new_response(r.request_id);
  resp->ok = true;
  resp->which_reply = kairos_v1_ControlResponse_rotate_key_tag;
  auto& o = resp->reply.rotate_key;
  set_string(o.node, id);
  o.rotated = rotated;
  const NodeKeys* k = keybook_.find(id, mono_us());
  o.generation = k ? k->current.generation : 0;
  if (rotated) o.confirm_ms = static_cast<std::uint32_t>((mono_us() - r.sent_us) / 1000);
  set_string(o.detail, detail);
  o.resent = r.resent;
  answer(r.response_topic, r.correlation, *resp);
  rotations_.erase(it);
}

void Gateway::rotations_service(std::int64_t now_us) {
  for (auto it = rotations_.begin(); it != rotations_.end();) {
    auto next = std::next(it);
    if (now_us >= it->second.deadline_us) {
      const std::string id = it->first;
      const std::uint32_t g = it->second.generation;
      const std::string why = "no confirmation within " +
                              std::to_string((it->second.deadline_us - it->second.sent_us) / 1000) +
                              " ms; the node keeps generation " + std::to_string(g - 1) +
                              ". The new key stays pending: a frame signed with it still completes the rotation, and "
                              "rotate-key sends it again";
      log::warn("keys", id + ": rotation to generation " + std::to_string(g) + " abandoned: " + why);
      rotation_done(id, false, why);
    }
    it = next;
  }
}

}  // namespace kairos::gw

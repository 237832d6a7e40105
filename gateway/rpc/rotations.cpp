#include "gateway/rpc/rotations.h"

#include <algorithm>

#include "common/core/utf8.h"
#include "common/io/clock.h"
#include "common/io/log.h"

namespace kairos::gw {

namespace {

constexpr std::uint32_t kDefaultRotateTimeoutMs = 15'000;
constexpr std::uint32_t kMaxRotateTimeoutMs = 600'000;

}  // namespace

void Rotations::verb(const ReplyTo& to, std::uint64_t request_id, const kairos_v1_RotateKeyRequest& req) {
  auto refuse = [&](const std::string& why) {
    auto resp = new_response(request_id);
    set_string(resp->error, "rotate-key: " + why);
    ports_.answer(to, *resp);
  };
  const std::string id = req.node;
  const NodeEntry* n = registry_.find(id);
  if (!n) return refuse("no node '" + id + "' (kairosctl nodes lists them)");
  // The node must answer, under the new key, for the rotation to complete.
  if (!n->online) return refuse(id + " is offline; rotate its key once it is online again");
  if (n->quarantined || n->status == kairos_v1_NodeStatus_QUARANTINED)
    return refuse(id + " is quarantined and obeys only heal; find out why (kairosctl conflicts), kairosctl heal " + id +
                  ", then rotate");
  if (waiting_.count(id)) return refuse("a rotation of " + id + " is already waiting for the node's confirmation");
  if (req.timeout_ms > kMaxRotateTimeoutMs) return refuse("the timeout is at most 600000 ms");
  const std::uint32_t timeout_ms = req.timeout_ms ? req.timeout_ms : kDefaultRotateTimeoutMs;
  const std::int64_t now = mono_us();
  auto b = keys_.begin(id, now);
  if (!b.error.empty()) {
    log::error("keys", id + ": no rotation: cannot keep the new key: " + b.error);
    return refuse("cannot keep the new key (" + b.error + "); nothing was sent. gateway.rotated_keys_dir (" +
                  keys_.dir() + ") must be writable by the gateway");
  }
  const std::uint64_t command = ports_.send(*n, timeout_ms, [&](kairos_v1_Command& cmd) {
    cmd.which_action = kairos_v1_Command_rekey_tag;
    cmd.action.rekey.generation = b.generation;
    cmd.action.rekey.wrapped_key.size = static_cast<pb_size_t>(b.wrapped.size());
    std::copy(b.wrapped.begin(), b.wrapped.end(), cmd.action.rekey.wrapped_key.bytes);
  });
  if (!command) return refuse("no key for " + id);
  waiting_[id] = {to, request_id, command, b.generation, b.resent, now, now + std::int64_t{timeout_ms} * 1000};
  log::info("keys", "rotating the key of " + id + " to generation " + std::to_string(b.generation) + " (" +
                        (b.resent ? "the pending key of an unconfirmed rotation, sent again"
                                  : "new key kept in " + keys_.path(id, ".key.next")) +
                        "); both keys are taken until the node confirms");
}

bool Rotations::on_ack(const std::string& id, const kairos_v1_Ack& ack) {
  auto it = waiting_.find(id);
  if (it == waiting_.end() || it->second.command_id != ack.command_id) return false;
  // READY comes signed with the new key and has completed the rotation
  // already (ingest saw the frame); a READY under the old one would say the
  // node has not switched: the rotation then waits for its time.
  if (ack.state < 0) {
    const std::string why = std::string("the node refused the new key: ") + ack.detail;
    log::warn("keys", id + ": rotation to generation " + std::to_string(it->second.generation) + " abandoned: " +
                          log_safe(ack.detail) + "; the node keeps generation " +
                          std::to_string(it->second.generation - 1));
    done(id, false, why);
  }
  return true;
}

void Rotations::done(const std::string& id, bool rotated, const std::string& detail) {
  auto it = waiting_.find(id);
  if (it == waiting_.end()) return;
  const Rotation& r = it->second;
  auto resp = new_response(r.request_id);
  resp->ok = true;
  resp->which_reply = kairos_v1_ControlResponse_rotate_key_tag;
  auto& o = resp->reply.rotate_key;
  set_string(o.node, id);
  o.rotated = rotated;
  const NodeKeys* k = keys_.find(id, mono_us());
  o.generation = k ? k->current.generation : 0;
  if (rotated) o.confirm_ms = static_cast<std::uint32_t>((mono_us() - r.sent_us) / 1000);
  set_string(o.detail, detail);
  o.resent = r.resent;
  ports_.answer(r.to, *resp);
  waiting_.erase(it);
}

void Rotations::service(std::int64_t now_us) {
  for (auto it = waiting_.begin(); it != waiting_.end();) {
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
      done(id, false, why);
    }
    it = next;
  }
}

}  // namespace kairos::gw

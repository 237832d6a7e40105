#include "firmware/rekey.h"

#include <cstdlib>

#include "common/io/clock.h"
#include "common/io/files.h"
#include "common/io/log.h"
#include "common/io/rotated_key.h"
#include "firmware/node.h"
#include "firmware/reports.h"

namespace kairos::node {

std::string rotated_key_file(const NodeConfig& c) {
  if (!c.rotated_key_file.empty()) return c.rotated_key_file;
  std::string dir;
  if (!c.state_file.empty()) {
    auto slash = c.state_file.rfind('/');
    dir = slash == std::string::npos ? "." : c.state_file.substr(0, slash);
  } else if (const char* state = std::getenv("STATE_DIRECTORY"); state && *state) {
    dir = state;
  }
  return dir.empty() ? std::string() : dir + "/" + c.id + ".key";
}

NodeKey load_node_key(const NodeConfig& c) {
  const Key provisioned = load_key_file(c.key_file);
  NodeKey k;
  k.rotated_file = rotated_key_file(c);
  if (k.rotated_file == c.key_file) {
    k.note =
        "key rotation off: a rotated key would replace node.key_file " + c.key_file + "; set node.rotated_key_file";
    k.rotated_file.clear();
  }
  std::optional<RotatedKey> rotated;
  if (!k.rotated_file.empty()) rotated = load_rotated_key(k.rotated_file);
  std::string why;
  k.current = choose_key(provisioned, rotated, why);
  if (!why.empty()) k.note = k.rotated_file + " not used: " + why + "; using " + c.key_file;
  else if (k.current.generation > 0)
    k.note = "key generation " + std::to_string(k.current.generation) + " from " + k.rotated_file;
  return k;
}

Rekeyed open_rekey(const kairos_v1_Rekey& r, const std::string& id, const RotatedKey& current,
                   const std::optional<Key>& retired) {
  Rekeyed out;
  const ByteView wrapped(r.wrapped_key.bytes, r.wrapped_key.size);
  if (wrapped.size() != kWrappedKeySize) {
    out.refusal = "a wrapped key is 40 bytes, not " + std::to_string(wrapped.size());
    return out;
  }
  const std::string holds = "this node holds key generation " + std::to_string(current.generation);
  if (retired && r.generation == current.generation) {
    // The rotation it took last, sent again: its key unwraps under the key before.
    auto k = unwrap_key(rekey_kek(*retired, id, r.generation), wrapped);
    if (k && equal_constant_time(k->bytes, current.key.bytes)) out.already = true;
    else out.refusal = "generation " + std::to_string(r.generation) + " was taken already, with another key";
    return out;
  }
  if (r.generation != current.generation + 1) {
    out.refusal = "generation " + std::to_string(r.generation) + " asked, but " + holds + " (the next is " +
                  std::to_string(current.generation + 1) + ")";
    return out;
  }
  auto k = unwrap_key(rekey_kek(current.key, id, r.generation), wrapped);
  if (!k) {
    out.refusal = "the new key does not unwrap under " + holds + " (altered, or wrapped under another key)";
    return out;
  }
  out.next = RotatedKey{r.generation, current.base, *k, 0, 0};
  return out;
}

void Node::rekey(const kairos_v1_Command& cmd, std::int64_t received) {
  const std::uint32_t before = key_.current.generation;
  auto refuse_rekey = [&](const std::string& why) {
    log::warn("node", "rekey refused: " + why);
    ack(cmd, kAckConflict, why, received, 0);
  };
  if (key_.rotated_file.empty())
    return refuse_rekey("no place to keep a new key: set node.rotated_key_file (or node.state_file)");
  auto out = open_rekey(cmd.action.rekey, config_.id, key_.current, intake_.retired());
  if (out.already) return ack(cmd, kAckReady, "generation " + std::to_string(before) + " already", received, wall_us());
  if (!out.next) return refuse_rekey(out.refusal);
  // On disk before anyone hears of it: a node restarted after confirming starts with the new key.
  try {
    save_rotated_key(key_.rotated_file, *out.next);
  } catch (const std::exception& e) {
    return refuse_rekey(std::string("cannot keep the new key: ") + e.what());
  }
  key_.current = *out.next;
  intake_.rekey(key_.current.key, wall_us());
  log::info("node", "key rotated from generation " + std::to_string(before) + " to " +
                        std::to_string(key_.current.generation) + " (kept in " + key_.rotated_file +
                        "); commands signed with the old key are taken until the gateway's first with the new one");
  // Signed with the new key: this ack is the confirmation.
  ack(cmd, kAckReady, "generation " + std::to_string(key_.current.generation), received, wall_us());
  // The broker's retained birth and state were signed with the old key:
  // replaced, so that a gateway that starts later reads them.
  publish_birth();
  publish(TopicKind::state, *state_envelope(true, session_), 1, true);
}

}  // namespace kairos::node

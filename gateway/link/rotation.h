#pragma once
// Node keys as they rotate, at the gateway (docs/PROTOCOL.md, Key rotation).
// Per node: the current key (the provisioned one, generation 0, or the last
// confirmed rotation), the pending next key while a rotation waits for the
// node, and the retired key, still taken for the frames the node signed
// before it switched.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/core/frame.h"
#include "common/core/keywrap.h"
#include "gateway/link/keyring.h"

namespace kairos::gw {

// Which of a node's keys verified a frame.
enum class KeyUse { current, pending, retired };

// One node's keys (pure: no files, no clock).
struct NodeKeys {
  RotatedKey current;
  std::optional<RotatedKey> pending;  // generation current + 1, sent (or to be sent) in a rekey command
  std::optional<RotatedKey> retired;  // generation current - 1; until_session/until_seq: where the node switched

  // Whether a frame (session, seq) that verified under the retired key was
  // signed before the node switched: the switch's session, and a lower seq
  // (frames in flight at the switch), or, for will (an offline state), the
  // MQTT Will sealed at the connect before the switch, whose seq is the
  // counter then plus 2^40 (docs/PROTOCOL.md, The Will).
  bool before_switch(std::uint64_t session, std::uint64_t seq, bool will) const;
  // The node holds the pending key: the first frame signed with it was
  // (session, seq). The pending key becomes current and the current one
  // retired as of that frame.
  void promote(std::uint64_t session, std::uint64_t seq);
};

// The rotation state of every node, over the provisioned keys of a KeyRing,
// kept in files under dir (gateway.rotated_keys_dir): nodes/<id>.key (the
// current key once rotated), nodes/<id>.key.next (pending), nodes/<id>.key.old
// (retired, kept as evidence and for frames from before the switch).
class KeyBook {
 public:
  KeyBook(KeyRing& ring, std::string dir, std::int64_t retry_us = 5'000'000);

  // A node's keys, read on first use; null when the node has no provisioned
  // key or its rotated key files are unusable (said in the log, looked at
  // again after retry_us).
  NodeKeys* find(const std::string& id, std::int64_t now_us);
  // The key commands to the node are signed with: its current one.
  const Key* signing_key(const std::string& id, std::int64_t now_us);

  struct Opened {
    kairos::Opened frame;  // as open(): the envelope, or why it was dropped
    bool known = false;    // the node has a key
    KeyUse use = KeyUse::current;
    bool promoted = false;         // this frame completed a rotation: its key is now current
    std::uint32_t generation = 0;  // of the key that verified it
    bool retired_refused = false;  // it verified only under the retired key, and not as a frame from before the switch
  };
  // Opens a frame on one of node id's report topics under the key that
  // signed it: current, then pending (which the frame then makes current),
  // then retired.
  Opened open(const std::string& id, TopicKind kind, std::string_view topic, ByteView payload, std::int64_t now_us) {
    NodeKeys* known = nullptr;
    return open(id, known, kind, topic, payload, now_us);
  }
  // The same with the node's keys at hand (the book never removes a node's
  // entry, so a caller may keep the pointer): known is looked up when null, and set.
  Opened open(const std::string& id, NodeKeys*& known, TopicKind kind, std::string_view topic, ByteView payload,
              std::int64_t now_us);

  struct Begun {
    std::uint32_t generation = 0;  // of the new key
    std::array<std::uint8_t, kWrappedKeySize> wrapped{};  // under the current key (rekey_kek)
    bool resent = false;   // the pending key of an earlier attempt, sent again
    std::string error;     // when the new key could not be kept (nothing is sent then)
  };
  // Starts (or restarts) a rotation of node id: a new key for the next
  // generation, written to nodes/<id>.key.next before anything is sent, or
  // the one already pending. The rotation completes when a frame signed
  // with it arrives (open).
  Begun begin(const std::string& id, std::int64_t now_us);

  std::string path(const std::string& id, const char* suffix) const { return dir_ + "/nodes/" + id + suffix; }
  const std::string& dir() const { return dir_; }

 private:
  // Writes a promotion: the old key retired, the new one current, the pending file removed.
  void save_promotion(const std::string& id, const NodeKeys& k);
  KeyRing& ring_;
  std::string dir_;
  std::int64_t retry_us_;
  std::unordered_map<std::string, NodeKeys> nodes_;
  std::unordered_map<std::string, std::int64_t> failed_;  // id -> when its files were last found unusable
};

}  // namespace kairos::gw

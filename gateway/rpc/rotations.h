#pragma once
// Key rotation at the gateway (docs/PROTOCOL.md, Key rotation): the
// rotate-key verb, the node's confirmation (its first frame under the new
// key, seen by ingest) or refusal (its ack), and the rotations abandoned
// for want of either in time. Each is answered once it ends.
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "gateway/link/reply.h"
#include "gateway/link/rotation.h"
#include "gateway/registry/registry.h"

namespace kairos::gw {

class Rotations {
 public:
  struct Ports {
    SendCommand send;
    Answer answer;
  };
  Rotations(KeyBook& keys, const Registry& registry, Ports ports)
      : keys_(keys), registry_(registry), ports_(std::move(ports)) {}

  void verb(const ReplyTo& to, std::uint64_t request_id, const kairos_v1_RotateKeyRequest& req);
  // The ack of a rekey command (a refusal ends its rotation): true when it was one.
  bool on_ack(const std::string& id, const kairos_v1_Ack& ack);
  // The node's first frame under its new key.
  void confirmed(const std::string& id) { done(id, true, ""); }
  // Rotations not confirmed by their deadline are abandoned. now_us: monotonic.
  void service(std::int64_t now_us);

 private:
  void done(const std::string& id, bool rotated, const std::string& detail);
  struct Rotation {
    ReplyTo to;
    std::uint64_t request_id = 0;
    std::uint64_t command_id = 0;  // of the rekey command
    std::uint32_t generation = 0;  // the new key's
    bool resent = false;
    std::int64_t sent_us = 0;      // monotonic
    std::int64_t deadline_us = 0;  // monotonic: abandoned then
  };
  KeyBook& keys_;
  const Registry& registry_;
  Ports ports_;
  std::map<std::string, Rotation> waiting_;  // node -> the rotate-key waiting for its confirmation
};

}  // namespace kairos::gw

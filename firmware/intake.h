#pragma once
// What a node does with a frame on its command topic (docs/DESIGN.md 4, 5.4), shared
// by kairos-node and the simulated nodes of kairos-sim: verify the MAC,
// the message type and the replay window, then decide: run now, hold until
// execute_at (TRANSIT), or refuse because it came too late (CONFLICT).
// Time is the node's own wall clock, passed in.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/core/frame.h"
#include "common/core/replay.h"
#include "common/io/session_file.h"

namespace kairos::node {

constexpr int kAckReady = 1, kAckTransit = 0, kAckConflict = -1;
// Default late tolerance of a scheduled command (ms) when it names none.
constexpr std::uint32_t kDefaultLateToleranceMs = 20;

class CommandIntake {
 public:
  // session: this start's (commands for another are stale). sessions, when
  // given, persists the newest gateway session obeyed across restarts.
  CommandIntake(std::string id, const Key& key, std::uint64_t session, SessionFile* sessions = nullptr);

  struct Result {
    enum class Kind { dropped, run, held, refused };
    Kind kind = Kind::dropped;
    DropReason drop = DropReason::bad_topic;  // when dropped
    bool breach = false;   // dropped for a bad MAC (a forged or altered command): CAT-1 for the node
    std::string detail;    // why dropped or refused
    EnvelopePtr env;  // run, held (a copy is kept), refused
  };

  // A frame that arrived on this node's command topic (already matched to it)
  // at received_us on the node's clock. A scheduled command is held while
  // quarantined is false; a quarantined node refuses it.
  Result receive(const std::string& topic, ByteView payload, std::int64_t received_us, bool quarantined);

  // The held command due first, node clock; INT64_MAX when none is held.
  std::int64_t next_due_us() const { return held_.empty() ? INT64_MAX : held_.begin()->first; }
  // Takes the first held command if it is due at now_us, else null;
  // received_us (if given) gets when it arrived.
  EnvelopePtr take_due(std::int64_t now_us, std::int64_t* received_us = nullptr);
  std::size_t held() const { return held_.size(); }
  const DropCounters& drops() const { return drops_; }
  void count_drop(DropReason r) { drops_.add(r); }

  // The node switched to a new key at now_us (docs/PROTOCOL.md, Key
  // rotation). The old one still verifies the commands the gateway signed
  // before it heard of the switch: until the first command under the new
  // key, for at most kRetiredGraceUs. A command under it after that is
  // dropped as bad_mac but is no breach: the gateway's commands sent just
  // before the switch may come late.
  void rekey(const Key& next, std::int64_t now_us);
  static constexpr std::int64_t kRetiredGraceUs = 60'000'000;
  // The key before the last rekey (until the process ends).
  const std::optional<Key>& retired() const { return retired_; }

 private:
  std::string id_;
  Key key_;
  std::optional<Key> retired_;         // the key before the last rekey
  std::int64_t retired_until_us_ = 0;  // node clock: commands signed with it are taken until then
  std::uint64_t session_;
  SessionFile* sessions_;
  SessionGuard guard_;
  DropCounters drops_;
  struct Held {
    EnvelopePtr env;
    std::int64_t received_us;
  };
  std::multimap<std::int64_t, Held> held_;  // by execute_at
};

// An ack for cmd (docs/DESIGN.md 5.4): state +1 READY, 0 TRANSIT, -1 CONFLICT; times on the node's clock.
EnvelopePtr make_ack(const kairos_v1_Command& cmd, int state, const std::string& detail,
                                   std::int64_t received_us, std::int64_t executed_us);

}  // namespace kairos::node

#pragma once
// The Ball protocol's pure core (docs/DESIGN.md 6): what a peer's input says, whether
// a ball-mode entry ends legally, execution-line acknowledgements, and the
// hash-chained lineage. No I/O.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/core/crypto.h"

namespace kairos::ball {

inline constexpr std::size_t kMaxInput = 4096;  // bytes of one input ("MM:" included)
inline constexpr std::size_t kMaxPeers = 16;
inline constexpr std::size_t kMaxObjectives = 16;
inline constexpr std::size_t kMaxObjective = 128;  // bytes of one objective

// What a hut names: 2..kMaxPeers distinct peers (names of the topic rules),
// 1..kMaxObjectives objectives of one line each. Trims the objectives;
// "" when the play may start, else why not.
std::string check_hut(const std::vector<std::string>& peers, std::vector<std::string>& objectives);

// A hut's node peers must each run a ball job. node_caps holds, for every
// peer that is a registered node, the capabilities of its last birth (online
// or not); every other peer is a person. "" when they do, else why not and
// what to do.
std::string check_node_peers(const std::vector<std::string>& peers,
                             const std::map<std::string, std::vector<std::string>>& node_caps);

// When a node holder whose answer is owed is asked again after a failed or
// timed-out job (docs/BALL.md): retry_us after the first failure in a row,
// doubling with each further one, at most max_us.
struct AskSchedule {
  std::int64_t retry_us = 30'000'000;
  std::int64_t max_us = 600'000'000;
  // The time of the next ask after the `failures`-th failure in a row (1 for
  // the first) at now_us (monotonic).
  std::int64_t after_failure(std::int64_t now_us, int failures) const;
};

enum class Ending { none, questions, action_items, handoff, touchdown };
const char* to_string(Ending e);

struct Input {
  bool ball_mode = false;  // prefixed "MM:": appended to the lineage, delivered to every peer
  std::string text;        // ball mode: everything after "MM:", unedited; else the whole input
  Ending ending = Ending::none;
  std::string handoff_to;  // Ending::handoff: the peer who takes the Ball
};

struct Parsed {
  std::optional<Input> input;
  std::string error;  // why it was refused
};

// Reads one input of a peer. Conversational input (no "MM:") is accepted as
// it is. A ball-mode entry must end with exactly one of: a Questions: block,
// an Action Items: block, a final left-aligned "->Name" naming one of peers,
// or a last line "TOUCHDOWN!". "->Ø", vague routing ("send this to Jason"), a
// handoff that is not left-aligned and a name that is no peer are refused.
Parsed parse_input(std::string_view input, const std::vector<std::string>& peers);

// Execution-line acknowledgements, only forward.
enum class AckLevel { none, read, ack, understood, concur, implement };
const char* to_string(AckLevel a);
std::optional<AckLevel> parse_ack(std::string_view s);  // "read", "ack", "understood", "concur", "implement"
// Empty when `to` may follow `from`, else why not.
std::string ack_step_error(AckLevel from, AckLevel to);

// One lineage entry. kind: genesis, entry, ack, done, touchdown.
struct Entry {
  std::uint64_t seq = 0;  // 0 for the genesis entry
  std::string session;
  std::string kind;
  std::string author;
  std::int64_t at_us = 0;
  std::string text;
  Digest hash{};
  // Kept beside the entry, not hashed: the console operator whose request
  // appended it ("" for a node's answer).
  std::string asked_by{};
};

// The canonical form that is hashed (docs/BALL.md): one "key=value" line each
// for seq, session, kind, author, at_us and len (bytes of text), then the
// text, unedited.
std::string canonical(const Entry& e);
// SHA-256(prev_hash || canonical(e)); the genesis entry's prev is 32 zero bytes.
Digest chain_hash(const Digest& prev, const Entry& e);

struct Break {
  std::uint64_t seq = 0;  // where the chain breaks
  std::string reason;
};
// Re-checks a whole lineage, oldest first, against its signed head
// (sequence and hash). Nothing when it holds; else the first break.
std::optional<Break> verify(const std::vector<Entry>& entries, std::uint64_t head_seq, const Digest& head_hash);

}  // namespace kairos::ball

namespace kairos::ball {

// One play (docs/DESIGN.md 6): peers, objectives, who holds the Ball, the lineage and
// every peer's acknowledgement of every entry. Pure logic: the gateway
// stores what it appends and carries what it delivers.
class Session {
 public:
  // hut: a new play of session `session`; the genesis entry names the ball
  // id, peers and objectives; the first peer holds the Ball.
  Session(std::string session, std::string ball_id, std::vector<std::string> peers,
          std::vector<std::string> objectives, std::string author, std::int64_t at_us);
  // Rebuilds a play from its stored lineage (oldest first) by playing every
  // entry again; nothing and `why` when the lineage does not chain or an
  // entry does not replay to the same hash.
  static std::optional<Session> replay(const std::vector<Entry>& entries, Break& why);

  struct Outcome {
    std::string error;             // refused: why (the lineage is unchanged)
    std::optional<Entry> appended;  // a new lineage entry, already chained
    bool conversational = false;   // delivered to the addressed peer only, not logged
    bool closed = false;           // TOUCHDOWN! accepted
    static Outcome refused(std::string why) {
      Outcome o;
      o.error = std::move(why);
      return o;
    }
  };
  Outcome say(const std::string& author, std::string_view input, std::int64_t at_us);
  Outcome ack(const std::string& peer, std::uint64_t seq, AckLevel level, std::int64_t at_us);
  Outcome done(const std::string& peer, std::size_t objective, std::int64_t at_us);

  const std::string& id() const { return id_; }
  const std::string& ball_id() const { return ball_id_; }
  const std::vector<std::string>& objectives() const { return objectives_; }
  const std::vector<bool>& done_flags() const { return done_; }
  bool is_peer(const std::string& name) const;
  // How far `peer` has acknowledged entry seq.
  AckLevel level(std::uint64_t seq, const std::string& peer) const;
  // Ball-mode entries by others that `peer` has not yet concurred on.
  std::vector<std::uint64_t> pending(const std::string& peer) const;
  const std::string& holder() const { return holder_; }
  const std::vector<Entry>& lineage() const { return lineage_; }
  const std::vector<std::string>& peers() const { return peers_; }
  bool closed() const { return closed_; }
  // What still stands between the play and TOUCHDOWN! ("" when nothing).
  std::string missing() const;

 private:
  Outcome append(const std::string& kind, const std::string& author, std::string text, std::int64_t at_us);
  // Why `peer` may not write now (the play closed, not a peer), or "".
  std::string gate(const std::string& peer) const;
  std::string id_;
  std::string ball_id_;
  std::vector<std::string> peers_;
  std::vector<std::string> objectives_;
  std::vector<bool> done_;
  std::string holder_;
  std::vector<Entry> lineage_;
  std::vector<std::uint64_t> says_;  // seqs of ball-mode entries
  std::map<std::pair<std::uint64_t, std::string>, AckLevel> acks_;  // (entry, peer) -> level
  bool closed_ = false;
};

}  // namespace kairos::ball

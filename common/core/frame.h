#pragma once
#include <array>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/core/bytes.h"
#include "common/core/crypto.h"
#include "common/core/topic.h"
#include "common/core/utf8.h"
#include "kairos.pb.h"

namespace kairos {

using Envelope = kairos_v1_Envelope;

// Envelopes are 14.5 KB: one per frame would be a heap allocation per frame.
// Their owner hands them back to a small per-thread pool instead, and the
// next one is taken from there (new_envelope()).
struct EnvelopeRecycler {
  void operator()(Envelope* env) const noexcept;
};
using EnvelopePtr = std::unique_ptr<Envelope, EnvelopeRecycler>;
// An envelope from the pool, contents undefined (callers start from _init_zero).
EnvelopePtr new_envelope();
// A copy of env in an envelope of the pool.
EnvelopePtr copy_envelope(const Envelope& env);

// Why an inbound frame was dropped. Every drop is counted under one of
// these and logged with its detail (docs/DESIGN.md 4).
enum class DropReason {
  bad_topic,        // not a topic of docs/DESIGN.md 4, or a kind this receiver does not take
  oversized_frame,  // payload larger than any valid frame
  malformed_frame,  // outer Frame does not decode (truncated, garbage)
  unknown_sender,   // no key for the name in the topic
  bad_mac,          // MAC does not match topic and body
  oversized_field,  // a string, bytes or repeated field over its bound
  malformed_body,   // Envelope does not decode
  invalid_value,    // decoded, but an enum, range or name is invalid
  sender_mismatch,  // envelope sender differs from the topic's name
  kind_mismatch,    // message type does not belong on this topic
  replay,           // sequence number already seen or too old
  stale_session,    // session of an earlier start of the sender
  unknown_session,  // session never announced by a birth
  revoked,          // a control request of an operator that has been revoked
  queue_full,       // received, but the receiver's inbound queue was full (its loop fell behind)
  count_,
};

std::string_view to_string(DropReason reason);

inline constexpr std::size_t kMaxBody = 16384;
inline constexpr std::size_t kMaxPayload = kMaxBody + 64;
// The largest MQTT packet a legal frame needs: the frame, its topic and the
// PUBLISH headers and properties (docs/DESIGN.md 4). Brokers and clients refuse more.
inline constexpr std::size_t kMaxPacket = kMaxPayload + 1024;

// Encodes env and signs it for topic: returns the MQTT payload.
Bytes seal(std::string_view topic, const Envelope& env, const Key& key);
// An envelope as bytes and back (store and forward keeps frames unsealed).
Bytes encode_envelope(const Envelope& env);
EnvelopePtr decode_envelope(ByteView body, std::string& error);

// Signs an already encoded body for topic (tests and fault injection).
Bytes seal_body(std::string_view topic, ByteView body, const Key& key);

struct Opened {
  EnvelopePtr env;  // set when accepted
  std::optional<DropReason> drop;
  std::string detail;             // why, for the log
  explicit operator bool() const { return env != nullptr; }
};

// Checks the MAC over the received bytes, then decodes and validates the
// envelope. The key is chosen by the caller from the topic, never from the body.
Opened open(std::string_view topic, ByteView payload, const Key& key);

// Decodes a frame's envelope WITHOUT checking its MAC: for hints that steer
// nothing but timing (a receiver that lacks the key). nullptr if it does not decode.
EnvelopePtr peek_unverified(ByteView payload);

// An enum field's integer as it arrived: nanopb stores any value in a C
// enum field, and reading one out of range through the enum type is
// undefined in C++, so checks read the raw integer.
template <class E>
int raw_enum(const E& e) {
  static_assert(sizeof(E) == sizeof(int));
  int v;
  std::memcpy(&v, &e, sizeof v);
  return v;
}

// Range and enum checks that nanopb does not make; nullopt when valid.
std::optional<std::string> validate(const Envelope& env);

// Whether the message type of env belongs on a topic of this kind.
bool kind_matches(TopicKind kind, const Envelope& env);

// Names of the wire enums, as operators read them ("?" when out of range).
std::string_view to_string(kairos_v1_MeshMode m);
std::string_view to_string(kairos_v1_NodeStatus s);
std::string_view class_letter(kairos_v1_DeviceClass c);  // "A".."F"

// A zeroed envelope with sender, session, seq and time filled in.
EnvelopePtr make_envelope(std::string_view sender, std::uint64_t session,
                                        std::uint64_t seq, std::int64_t sent_at_us);

// Copies s into a fixed nanopb char array, truncating to fit, never inside
// a UTF-8 sequence (nor keeping one an earlier cut left incomplete).
template <std::size_t N>
void set_string(char (&dst)[N], std::string_view s) {
  std::size_t n = utf8_cut(s, s.size() < N - 1 ? s.size() : N - 1);
  s.copy(dst, n);
  dst[n] = '\0';
}

}  // namespace kairos

namespace kairos {

// Numbers outbound frames of one sender's session: seq rises by one per
// frame from 1 (docs/DESIGN.md 4). The key is given per frame: a gateway signs each
// node's commands with that node's key.
class Signer {
 public:
  Signer(std::string sender, std::uint64_t session) : sender_(std::move(sender)), session_(session) {}

  // Fills env's header (sender, session, next seq, sent_at_us) and seals it.
  Bytes seal(std::string_view topic, Envelope& env, const Key& key, std::int64_t sent_at_us);
  // Reserves a seq for a frame sealed now but sent later (the MQTT Will).
  std::uint64_t take_seq() { return next_++; }
  // Fills env's header with a seq taken earlier (or set apart, as the Will's)
  // and seals it: a frame whose place among the sender's frames was fixed
  // before it was made.
  Bytes seal_reserved(std::string_view topic, Envelope& env, const Key& key, std::uint64_t seq,
                      std::int64_t sent_at_us) const;
  std::uint64_t next_seq() const { return next_; }
  void skip_to(std::uint64_t next) { next_ = next > next_ ? next : next_; }
  const std::string& sender() const { return sender_; }
  std::uint64_t session() const { return session_; }

 private:
  std::string sender_;
  std::uint64_t session_;
  std::uint64_t next_ = 1;
};

// Dropped inbound frames per reason.
struct DropCounters {
  std::array<std::uint64_t, static_cast<std::size_t>(DropReason::count_)> by_reason{};
  void add(DropReason r) { ++by_reason[static_cast<std::size_t>(r)]; }
  std::uint64_t operator[](DropReason r) const { return by_reason[static_cast<std::size_t>(r)]; }
  std::uint64_t total() const {
    std::uint64_t t = 0;
    for (auto n : by_reason) t += n;
    return t;
  }
};

}  // namespace kairos

#include <gtest/gtest.h>

#include <cstring>

#include "common/core/frame.h"
#include "tests/unit/keys.h"

using namespace kairos;

using kairos::test::key_of;

namespace {


const std::string kTopic = "kairos/v1/demo/c1/n1/hb";

Bytes heartbeat_frame(const Key& key, std::uint64_t seq = 1, const std::string& topic = kTopic) {
  auto env = make_envelope("n1", 42, seq, 1'700'000'000'000'000);
  env->which_message = kairos_v1_Envelope_heartbeat_tag;
  env->message.heartbeat.status = kairos_v1_NodeStatus_COMPLIANT;
  env->message.heartbeat.processing_ms = 0.5f;
  return seal(topic, *env, key);
}

// Raw protobuf: field 1 (sender) as a string of n bytes, then seq, session, heartbeat.
Bytes raw_body_with_sender(std::size_t n) {
  Bytes b;
  b.reserve(n + 16);
  b.push_back(0x0a);
  std::size_t len = n;
  while (len >= 0x80) {
    b.push_back(static_cast<std::uint8_t>((len & 0x7f) | 0x80));
    len >>= 7;
  }
  b.push_back(static_cast<std::uint8_t>(len));
  for (std::size_t i = 0; i < n; ++i) b.push_back('a');
  for (int t : {0x10, 0x01, 0x18, 0x01, 0x62, 0x02, 0x08, 0x01})  // session 1, seq 1, hb{status 1}
    b.push_back(static_cast<std::uint8_t>(t));
  return b;
}

int out_of_range_enum() { return 99; }

}  // namespace

TEST(Frame, SealOpenRoundTrip) {
  Key k = key_of(7);
  auto payload = heartbeat_frame(k, 9);
  auto r = open(kTopic, payload, k);
  ASSERT_TRUE(r) << r.detail;
  EXPECT_STREQ(r.env->sender, "n1");
  EXPECT_EQ(r.env->session_id, 42u);
  EXPECT_EQ(r.env->seq, 9u);
  EXPECT_EQ(r.env->which_message, kairos_v1_Envelope_heartbeat_tag);
  EXPECT_FLOAT_EQ(r.env->message.heartbeat.processing_ms, 0.5f);
  EXPECT_TRUE(kind_matches(TopicKind::hb, *r.env));
  EXPECT_FALSE(kind_matches(TopicKind::phase, *r.env));
}

struct BadFrameCase {
  const char* what;
  DropReason reason;
};

TEST(Frame, DropsWithReason) {
  Key k = key_of(7);
  auto good = heartbeat_frame(k);

  // wrong key
  EXPECT_EQ(open(kTopic, good, key_of(8)).drop, DropReason::bad_mac);
  // same bytes on another topic: the MAC covers the topic
  EXPECT_EQ(open("kairos/v1/demo/c1/n2/hb", good, k).drop, DropReason::bad_mac);
  // one flipped body bit
  auto flipped = good;
  flipped[5] ^= 0x01;
  EXPECT_EQ(open(kTopic, flipped, k).drop, DropReason::bad_mac);
  // truncated at every length: never accepted, never a crash
  for (std::size_t n = 0; n < good.size(); ++n) {
    auto r = open(kTopic, ByteView(good.data(), n), k);
    EXPECT_FALSE(r) << n;
    ASSERT_TRUE(r.drop.has_value());
    EXPECT_TRUE(*r.drop == DropReason::malformed_frame || *r.drop == DropReason::bad_mac) << n;
  }
  EXPECT_EQ(open(kTopic, ByteView(good.data(), good.size() - 3), k).drop, DropReason::malformed_frame);
  // oversized payload
  Bytes huge(kMaxPayload + 1, 0);
  EXPECT_EQ(open(kTopic, huge, k).drop, DropReason::oversized_frame);
  // garbage
  Bytes junk{0xff, 0xff, 0xff, 0xff};
  EXPECT_EQ(open(kTopic, junk, k).drop, DropReason::malformed_frame);
}

TEST(Frame, OversizedFieldIsDroppedAfterMac) {
  Key k = key_of(3);
  auto ok = seal_body(kTopic, raw_body_with_sender(64), k);
  EXPECT_TRUE(open(kTopic, ok, k)) << open(kTopic, ok, k).detail;
  auto big = seal_body(kTopic, raw_body_with_sender(65), k);
  auto r = open(kTopic, big, k);
  EXPECT_EQ(r.drop, DropReason::oversized_field) << r.detail;
}

TEST(Frame, InvalidValues) {
  Key k = key_of(1);
  auto env = make_envelope("n1", 42, 1, 0);
  env->which_message = kairos_v1_Envelope_heartbeat_tag;
  int bad_status = out_of_range_enum();  // as a peer could send it; stored raw like nanopb does
  std::memcpy(&env->message.heartbeat.status, &bad_status, sizeof bad_status);
  EXPECT_EQ(open(kTopic, seal(kTopic, *env, k), k).drop, DropReason::invalid_value);

  env->message.heartbeat.status = kairos_v1_NodeStatus_OFFLINE;  // only the gateway says OFFLINE
  EXPECT_EQ(open(kTopic, seal(kTopic, *env, k), k).drop, DropReason::invalid_value);

  env->message.heartbeat.status = kairos_v1_NodeStatus_COMPLIANT;
  env->seq = 0;
  EXPECT_EQ(open(kTopic, seal(kTopic, *env, k), k).drop, DropReason::invalid_value);

  auto phase = make_envelope("n1", 42, 1, 0);
  phase->which_message = kairos_v1_Envelope_phase_tag;
  phase->message.phase.node_c = 1.5f;
  EXPECT_EQ(open(kTopic, seal(kTopic, *phase, k), k).drop, DropReason::invalid_value);

  auto bad_sender = make_envelope("bad/name", 42, 1, 0);
  bad_sender->which_message = kairos_v1_Envelope_heartbeat_tag;
  bad_sender->message.heartbeat.status = kairos_v1_NodeStatus_COMPLIANT;
  EXPECT_EQ(open(kTopic, seal(kTopic, *bad_sender, k), k).drop, DropReason::invalid_value);

  auto state = make_envelope("n1", 42, 1, 0);
  state->which_message = kairos_v1_Envelope_state_tag;
  state->message.state.session_id = 41;  // must equal the envelope's session
  EXPECT_EQ(open(kTopic, seal(kTopic, *state, k), k).drop, DropReason::invalid_value);
}

TEST(Frame, ReasonNames) {
  EXPECT_EQ(to_string(DropReason::bad_mac), "bad_mac");
  EXPECT_EQ(to_string(DropReason::unknown_session), "unknown_session");
  for (int i = 0; i < static_cast<int>(DropReason::count_); ++i)
    EXPECT_NE(to_string(static_cast<DropReason>(i)), "?");
}

TEST(Frame, NonLengthDelimitedFieldsAreRefused) {
  // body as a varint (field 1, wire type 0), then a well-formed 32-byte mac:
  // nanopb passes such a field through a scratch buffer, never the payload.
  Bytes p{0x08, 0x96, 0x01, 0x12, 0x20};
  p.insert(p.end(), 32, 0xab);
  auto r = open(kTopic, p, key_of(1));
  EXPECT_EQ(r.drop, DropReason::malformed_frame) << r.detail;
  Bytes q{0x0a, 0x02, 0x01, 0x02, 0x15, 1, 2, 3, 4};  // mac as fixed32
  EXPECT_EQ(open(kTopic, q, key_of(1)).drop, DropReason::malformed_frame);
}

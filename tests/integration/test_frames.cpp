// Hostile and broken frames through a real broker: each is dropped, counted
// under its reason, and changes nothing.
#include <gtest/gtest.h>

#include "common/core/frame.h"
#include "common/core/topic.h"
#include "tests/integration/harness.h"

using namespace kairos;
using namespace kairos::test;
using namespace std::chrono_literals;

namespace {

struct Fixture {
  TempDir dir;
  Broker broker{dir};
  Mesh mesh{dir, broker};
  std::string birth_topic(const std::string& id) { return node_topic(mesh.name(), "c1", id, TopicKind::birth); }

  // A birth that would register `id` if the gateway accepted it.
  EnvelopePtr birth(const std::string& sender, std::uint64_t session, std::uint64_t seq) {
    auto env = make_envelope(sender, session, seq, 0);
    env->which_message = kairos_v1_Envelope_birth_tag;
    set_string(env->message.birth.cluster, "c1");
    set_string(env->message.birth.board, "generic-linux");
    env->message.birth.device_class = kairos_v1_DeviceClass_CLASS_A;
    env->message.birth.heartbeat_period_ms = 60'000;
    return env;
  }
};

// Sends one bad frame and checks that exactly `reason` went up by one.
void expect_dropped(Fixture& f, Client& c, const std::string& topic, const Bytes& payload, const std::string& reason) {
  auto before = f.mesh.status();
  ASSERT_TRUE(before);
  auto count = [&](const kairos_v1_StatusReply& s, const std::string& r) {
    for (pb_size_t i = 0; i < s.drops_count; ++i)
      if (r == s.drops[i].reason) return s.drops[i].count;
    return std::uint64_t{0};
  };
  std::uint64_t total_before = 0;
  for (pb_size_t i = 0; i < before->drops_count; ++i) total_before += before->drops[i].count;
  c.publish(topic, payload);
  ASSERT_TRUE(eventually([&] { return f.mesh.drops(reason) == count(*before, reason) + 1; }, 10s))
      << reason << "\n" << f.mesh.gateway().output();
  auto after = f.mesh.status();
  std::uint64_t total_after = 0;
  for (pb_size_t i = 0; i < after->drops_count; ++i) total_after += after->drops[i].count;
  EXPECT_EQ(total_after, total_before + 1) << "only " << reason << " may count";
  EXPECT_NE(f.mesh.gateway().output().find(reason), std::string::npos) << "the drop is logged with its reason";
}

}  // namespace

TEST(Frames, BadFramesAreDroppedCountedAndChangeNothing) {
  Fixture f;
  f.mesh.start_gateway();
  Key intruder_key = f.mesh.node_key("intruder");
  Key real_key = f.mesh.node_key("n1");
  Client c(f.broker.uri());
  ASSERT_TRUE(f.mesh.status()) << f.mesh.gateway().output();

  // 1. wrong MAC: signed with another key
  Key wrong = intruder_key;
  wrong.bytes[0] ^= 0xff;
  expect_dropped(f, c, f.birth_topic("intruder"), seal(f.birth_topic("intruder"), *f.birth("intruder", 7, 1), wrong),
                 "bad_mac");
  // 2. truncated
  auto good = seal(f.birth_topic("intruder"), *f.birth("intruder", 7, 1), intruder_key);
  expect_dropped(f, c, f.birth_topic("intruder"), Bytes(good.begin(), good.end() - 5), "malformed_frame");
  // 3. oversized field: a 65-character sender inside a correctly signed body
  std::string long_name(65, 'x');
  auto env = f.birth("intruder", 7, 1);
  Bytes body{0x0a, 65};
  body.insert(body.end(), long_name.begin(), long_name.end());
  body.insert(body.end(), {0x10, 0x07, 0x18, 0x01});
  expect_dropped(f, c, f.birth_topic("intruder"), seal_body(f.birth_topic("intruder"), body, intruder_key),
                 "oversized_field");
  // 4. a topic that does not match its sender: intruder signs, with its own
  //    key and on its own topic, a frame claiming to come from n1
  expect_dropped(f, c, f.birth_topic("intruder"), seal(f.birth_topic("intruder"), *f.birth("n1", 7, 1), intruder_key),
                 "sender_mismatch");
  // 5. a valid n1 frame moved to intruder's topic: the MAC binds the topic
  expect_dropped(f, c, f.birth_topic("intruder"), seal(f.birth_topic("n1"), *f.birth("n1", 7, 1), real_key), "bad_mac");
  // 6. a message type that does not belong on the topic
  auto hb_topic = node_topic(f.mesh.name(), "c1", "intruder", TopicKind::hb);
  expect_dropped(f, c, hb_topic, seal(hb_topic, *f.birth("intruder", 7, 1), intruder_key), "kind_mismatch");
  // 7. a node without a key
  expect_dropped(f, c, f.birth_topic("ghost"), seal(f.birth_topic("ghost"), *f.birth("ghost", 7, 1), intruder_key),
                 "unknown_sender");

  // Nothing above registered anyone.
  EXPECT_TRUE(f.mesh.nodes().empty());

  // The same frame, correct this time, does register: the checks above could fail.
  c.publish(f.birth_topic("intruder"), good);
  ASSERT_TRUE(eventually([&] { return f.mesh.node_info("intruder").has_value(); }));
  auto before = *f.mesh.node_info("intruder");
  EXPECT_EQ(before.device_class, kairos_v1_DeviceClass_CLASS_A);

  // 8. replayed: the very same bytes again, with a changed birth behind it
  expect_dropped(f, c, f.birth_topic("intruder"), good, "replay");
  auto other = f.birth("intruder", 7, 1);
  other->message.birth.device_class = kairos_v1_DeviceClass_CLASS_F;
  expect_dropped(f, c, f.birth_topic("intruder"), seal(f.birth_topic("intruder"), *other, intruder_key), "replay");
  EXPECT_EQ(f.mesh.node_info("intruder")->device_class, kairos_v1_DeviceClass_CLASS_A);
  EXPECT_EQ(f.mesh.nodes().size(), 1u);
}

TEST(Frames, ReplayedFrameOfARealNodeIsRefused) {
  Fixture f;
  f.mesh.start_gateway();
  f.mesh.start_node("n1", "c1", "waveform = \"sine\"\n", "heartbeat_period_s = 0.5");
  Client c(f.broker.uri());
  auto hb = node_topic(f.mesh.name(), "c1", "n1", TopicKind::hb);
  c.subscribe(hb);
  ASSERT_TRUE(c.wait_for_topic(hb));
  Bytes captured = c.last_on(hb)->payload;
  ASSERT_TRUE(eventually([&] { return f.mesh.node_info("n1").has_value(); }));
  expect_dropped(f, c, hb, captured, "replay");
  EXPECT_TRUE(f.mesh.node_info("n1")->online);
}

// The MQTT v5 packets of the ingest connection, against bytes written out
// here from the standard (MQTT 5.0, sections 2 and 3), not by the code under test.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/core/mqtt_wire.h"

using namespace kairos::mqttw;

namespace {

std::vector<std::uint8_t> bytes(const std::string& s) { return {s.begin(), s.end()}; }

std::string varint(std::size_t v) {
  std::string out;
  do {
    std::uint8_t b = v % 128;
    v /= 128;
    out.push_back(static_cast<char>(v ? b | 0x80 : b));
  } while (v);
  return out;
}

std::string str(const std::string& s) { return std::string{static_cast<char>(s.size() >> 8), static_cast<char>(s.size() & 0xFF)} + s; }

// A PUBLISH as a broker writes it.
std::string publish(const std::string& topic, const std::string& payload, int qos = 0, std::uint16_t id = 0,
                    const std::string& props = "", bool retain = false) {
  std::string body = str(topic);
  if (qos > 0) body += std::string{static_cast<char>(id >> 8), static_cast<char>(id & 0xFF)};
  body += varint(props.size()) + props + payload;
  return std::string(1, static_cast<char>(0x30 | qos << 1 | (retain ? 1 : 0))) + varint(body.size()) + body;
}

Frame frame_of(const std::vector<std::uint8_t>& b) {
  Frame f = next_frame(b, 1 << 20);
  EXPECT_EQ(f.status, Frame::Status::ok);
  EXPECT_EQ(f.size, b.size());
  return f;
}

}  // namespace

TEST(MqttWire, ConnectCarriesCleanStartKeepaliveAndTheLargestPacketTaken) {
  std::string expected = std::string("\x10\x13\x00\x04MQTT\x05\x02\x00\x0a\x05\x27\x00\x00\x44\x40\x00\x01" "c", 21);
  EXPECT_EQ(connect_packet({"c", "", "", 10, 17472}), expected);
  // User name and password: their flags and fields, in that order.
  std::string with = connect_packet({"c", "u", "pw", 30, 0});
  EXPECT_EQ(with, std::string("\x10\x15\x00\x04MQTT\x05\xc2\x00\x1e\x00\x00\x01" "c\x00\x01u\x00\x02pw", 23));
}

TEST(MqttWire, SubscribePubackPingAndDisconnect) {
  EXPECT_EQ(subscribe_packet(1, {{"a/+", 0}, {"b/#", 1}}),
            std::string("\x82\x0f\x00\x01\x00\x00\x03" "a/+\x00\x00\x03" "b/#\x01", 17));
  EXPECT_EQ(puback_packet(0x1234), std::string("\x40\x02\x12\x34", 4));
  EXPECT_EQ(pingreq_packet(), std::string("\xc0\x00", 2));
  EXPECT_EQ(disconnect_packet(kReasonNormal), std::string("\xe0\x00", 2));
  EXPECT_EQ(disconnect_packet(kReasonPacketTooLarge), std::string("\xe0\x02\x95\x00", 4));
}

TEST(MqttWire, FramesComeWholeOrNotAtAllWhereverTheStreamIsCut) {
  // Three packets, the second with a two-byte length (200 bytes of payload).
  std::string stream = publish("k/a", "x") + publish("k/b", std::string(200, 'y'), 1, 9) + std::string("\xd0\x00", 2);
  const auto all = bytes(stream);
  for (std::size_t cut = 0; cut <= all.size(); ++cut) {
    std::vector<std::uint8_t> held(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(cut));
    std::size_t off = 0, whole = 0;
    for (;;) {
      Frame f = next_frame({held.data() + off, held.size() - off}, 1 << 20);
      if (f.status == Frame::Status::need_more) break;
      ASSERT_EQ(f.status, Frame::Status::ok);
      off += f.size;
      ++whole;
    }
    std::size_t expected = cut >= all.size() ? 3 : cut >= all.size() - 2 ? 2 : cut >= publish("k/a", "x").size() ? 1 : 0;
    EXPECT_EQ(whole, expected) << "cut at " << cut;
  }
}

TEST(MqttWire, ALengthOfFiveBytesIsMalformedAndOneAboveTheLimitTooLarge) {
  EXPECT_EQ(next_frame(bytes(std::string("\x30\xff\xff\xff\xff\x01", 6)), 1 << 30).status, Frame::Status::malformed);
  auto p = bytes(publish("k/a", std::string(100, 'z')));
  EXPECT_EQ(next_frame(p, p.size()).status, Frame::Status::ok);
  Frame f = next_frame(p, p.size() - 1);
  EXPECT_EQ(f.status, Frame::Status::too_large);
  EXPECT_EQ(f.wanted, p.size());
  // Too large is known from the header alone, before the body arrives.
  EXPECT_EQ(next_frame({p.data(), 3}, 50).status, Frame::Status::too_large);
}

TEST(MqttWire, APublishGivesTopicQosIdPropertiesAndPayload) {
  std::string props = std::string("\x01\x01", 2) + "\x08" + str("re/ply") + "\x09" + str("cid") +
                      "\x26" + str("k") + str("v") + std::string("\x02\x00\x00\x00\x3c", 5);
  auto b = bytes(publish("kairos/v1/m/c/n/ack", "PAYLOAD", 1, 0x0102, props, true));
  std::string why;
  auto p = read_publish(frame_of(b), why);
  ASSERT_TRUE(p) << why;
  EXPECT_EQ(p->topic, "kairos/v1/m/c/n/ack");
  EXPECT_EQ(p->qos, 1);
  EXPECT_TRUE(p->retain);
  EXPECT_EQ(p->packet_id, 0x0102);
  EXPECT_EQ(p->response_topic, "re/ply");
  EXPECT_EQ(std::string(p->correlation.begin(), p->correlation.end()), "cid");
  EXPECT_EQ(std::string(p->payload.begin(), p->payload.end()), "PAYLOAD");
  // QoS 0: no packet id; an empty payload is a payload.
  auto q = read_publish(frame_of(bytes(publish("t", ""))), why);
  ASSERT_TRUE(q) << why;
  EXPECT_EQ(q->qos, 0);
  EXPECT_TRUE(q->payload.empty());
}

TEST(MqttWire, PublishesNoBrokerMaySendThisClientAreRefusedWithAReason) {
  auto refused = [](const std::string& packet, const std::string& words) {
    std::string why;
    auto p = read_publish(frame_of(bytes(packet)), why);
    EXPECT_FALSE(p);
    EXPECT_NE(why.find(words), std::string::npos) << why;
  };
  refused(publish("t", "x", 2, 1), "QoS 2");
  refused(std::string("\x36\x05\x00\x01t\x00\x00", 7), "QoS 3");
  refused(publish("", "x"), "empty topic");
  refused(publish("t", "x", 0, 0, std::string("\x23\x00\x01", 3)), "topic alias");
  refused(publish("t", "x", 0, 0, std::string("\x11\x00\x00\x00\x01", 5)), "may not carry");  // session expiry
  refused(publish("t", "x", 0, 0, std::string("\x7f\x00", 2)), "does not define");
  refused(publish("t", "x", 1, 0), "packet id 0");
  // Properties that claim more than the packet holds.
  refused(std::string("\x30\x05\x00\x01t\x09\x00", 7), "longer than the packet");
  // A topic longer than the packet.
  refused(std::string("\x30\x03\x00\x09t", 5), "cut short");
}

TEST(MqttWire, ConnackSubackAndDisconnectAreRead) {
  std::string why;
  auto ok = read_connack(frame_of(bytes(std::string("\x20\x0b\x01\x00\x08\x13\x00\x05\x27\x00\x00\x10\x00", 13))), why);
  ASSERT_TRUE(ok) << why;
  EXPECT_TRUE(ok->session_present);
  EXPECT_EQ(ok->reason, 0);
  EXPECT_EQ(ok->server_keepalive_s, 5);
  EXPECT_EQ(ok->max_packet_size, 4096u);
  auto no = read_connack(frame_of(bytes(std::string("\x20\x02\x00\x87", 4))), why);
  ASSERT_TRUE(no);
  EXPECT_EQ(no->reason, 0x87);
  EXPECT_FALSE(read_connack(frame_of(bytes(std::string("\x20\x01\x00", 3))), why));

  auto sub = read_suback(frame_of(bytes(std::string("\x90\x05\x00\x01\x00\x00\x87", 7))), why);
  ASSERT_TRUE(sub) << why;
  EXPECT_EQ(sub->packet_id, 1);
  EXPECT_EQ(sub->reasons, (std::vector<std::uint8_t>{0x00, 0x87}));

  EXPECT_EQ(read_disconnect(frame_of(bytes(std::string("\xe0\x00", 2))), why), kReasonNormal);
  EXPECT_EQ(read_disconnect(frame_of(bytes(std::string("\xe0\x01\x8e", 3))), why), kReasonSessionTakenOver);
  EXPECT_EQ(reason_name(kReasonSessionTakenOver), "session taken over");
}

TEST(MqttWire, PublishesThisClientSendsAndThePubacksItReads) {
  const std::vector<std::uint8_t> payload{'h', 'i'};
  // QoS 0, retained: no packet id, an empty property block.
  EXPECT_EQ(publish_packet("a/b", payload, 0, true), std::string("\x31\x08\x00\x03" "a/b\x00hi", 10));
  // QoS 1: the packet id's two bytes follow the topic, set when sent.
  std::string q1 = publish_packet("a/b", payload, 1, false);
  const std::size_t at = publish_id_at("a/b", payload.size());
  EXPECT_EQ(at, 7u);
  set_publish_id(q1, at, 0x0102);
  EXPECT_EQ(q1, std::string("\x32\x0a\x00\x03" "a/b\x01\x02\x00hi", 12));
  EXPECT_EQ(q1, publish("a/b", "hi", 1, 0x0102));
  // A remaining length of two bytes moves the id by one.
  const std::vector<std::uint8_t> big(200, 'x');
  std::string long_one = publish_packet("t", big, 1, false);
  set_publish_id(long_one, publish_id_at("t", big.size()), 0xBEEF);
  EXPECT_EQ(long_one, publish("t", std::string(200, 'x'), 1, 0xBEEF));

  std::string why;
  auto plain = read_puback(frame_of(bytes(std::string("\x40\x02\x12\x34", 4))), why);
  ASSERT_TRUE(plain) << why;
  EXPECT_EQ(plain->packet_id, 0x1234);
  EXPECT_EQ(plain->reason, 0);
  auto refused = read_puback(frame_of(bytes(std::string("\x40\x04\x00\x07\x87\x00", 6))), why);
  ASSERT_TRUE(refused) << why;
  EXPECT_EQ(refused->reason, 0x87);  // not authorized
  EXPECT_FALSE(read_puback(frame_of(bytes(std::string("\x40\x02\x00\x00", 4))), why)) << "packet id 0";
  EXPECT_FALSE(read_puback(frame_of(bytes(std::string("\x40\x01\x00", 3))), why));
  // The broker's Receive Maximum, and the 65,535 it means when it says none.
  auto capped = read_connack(frame_of(bytes(std::string("\x20\x06\x00\x00\x03\x21\x00\x14", 8))), why);
  ASSERT_TRUE(capped) << why;
  EXPECT_EQ(capped->receive_max, 20);
  EXPECT_EQ(read_connack(frame_of(bytes(std::string("\x20\x03\x00\x00\x00", 5))), why)->receive_max, 65535);
  EXPECT_FALSE(read_connack(frame_of(bytes(std::string("\x20\x06\x00\x00\x03\x21\x00\x00", 8))), why));
}

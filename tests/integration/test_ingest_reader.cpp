// The gateway's ingest connection (docs/DESIGN.md 4, "The ingest
// connection"): Kairos's MQTT v5 subscriber against a real Mosquitto, and
// against a broker scripted here byte by byte for what Mosquitto never does.
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <thread>

#include "common/core/mqtt_wire.h"
#include "common/io/clock.h"
#include "common/io/mqtt.h"
#include "common/io/mqtt_reader.h"
#include "tests/integration/harness.h"

using namespace kairos;
using namespace kairos::test;
using namespace std::chrono_literals;

namespace {

MqttOptions reader_options(const std::string& uri, const std::string& id) {
  MqttOptions o;
  o.uri = uri;
  o.client_id = id;
  o.reconnect_min_s = 0.1;
  o.reconnect_max_s = 0.5;
  return o;
}

// Events until pred(all so far) holds or the timeout passes.
bool gather(MqttReader& r, std::vector<LinkEvent>& got, const std::function<bool()>& pred,
            std::chrono::milliseconds timeout = 15s) {
  const std::int64_t end = mono_us() + std::chrono::duration_cast<std::chrono::microseconds>(timeout).count();
  while (!pred()) {
    if (mono_us() >= end) return false;
    for (auto& ev : r.wait(std::min(end, mono_us() + 100'000))) got.push_back(std::move(ev));
  }
  return true;
}

std::size_t count(const std::vector<LinkEvent>& evs, LinkEvent::Type t) {
  return static_cast<std::size_t>(std::count_if(evs.begin(), evs.end(), [t](const LinkEvent& e) { return e.type == t; }));
}

std::vector<std::string> payloads(const std::vector<LinkEvent>& evs, const std::string& topic) {
  std::vector<std::string> out;
  for (const auto& e : evs)
    if (e.type == LinkEvent::Type::message && e.msg.topic == topic)
      out.emplace_back(e.msg.payload.begin(), e.msg.payload.end());
  return out;
}

// A publisher through Paho, connected.
std::unique_ptr<MqttLink> publisher(const std::string& uri) {
  MqttOptions o;
  o.uri = uri;
  o.client_id = "ingest-test-pub";
  auto link = std::make_unique<MqttLink>(o);
  EXPECT_TRUE(eventually([&] {
    link->service(mono_us());
    link->wait(mono_us() + 20'000);
    return link->connected();
  }));
  return link;
}

// Publishes `probe` until the reader has it: its subscription is in place.
void until_subscribed(MqttLink& pub, MqttReader& r, std::vector<LinkEvent>& got, const std::string& topic) {
  ASSERT_TRUE(gather(r, got, [&] {
    pub.publish(topic, Bytes{'p'}, 0, false);
    pub.wait(0);
    return !payloads(got, topic).empty();
  }));
}

// A reader subscribed to in/# at QoS 1 on a real Mosquitto, with a publisher.
struct Subscribed {
  explicit Subscribed(const std::function<void(MqttOptions&)>& tune) {
    auto o = reader_options(broker.uri(), "ingest-test-limits");
    tune(o);
    r = std::make_unique<MqttReader>(o);
    r->add_subscription("in/#", 1);
    r->start();
    pub = publisher(broker.uri());
    until_subscribed(*pub, *r, got, "in/probe");
  }
  TempDir dir;
  Broker broker{dir};
  std::unique_ptr<MqttReader> r;
  std::unique_ptr<MqttLink> pub;
  std::vector<LinkEvent> got;
};

}  // namespace

TEST(IngestReader, TakesEveryFrameAtQos0And1InOrderWithItsTopicAndRetainFlag) {
  TempDir dir;
  Broker broker(dir);
  auto pub = publisher(broker.uri());
  pub->publish("in/r/state", Bytes{'R'}, 1, true);  // retained before the reader subscribes
  MqttReader r(reader_options(broker.uri(), "ingest-test-1"));
  r.add_subscription("in/+/data", 1);
  r.add_subscription("in/+/fast", 0);
  r.add_subscription("in/+/state", 1);
  r.start();
  std::vector<LinkEvent> got;
  ASSERT_TRUE(gather(r, got, [&] { return !payloads(got, "in/r/state").empty(); }));
  EXPECT_EQ(got.front().type, LinkEvent::Type::connected);
  for (const auto& e : got) {
    if (e.type == LinkEvent::Type::message) {
      EXPECT_TRUE(e.msg.retained);
    }
  }
  until_subscribed(*pub, r, got, "in/x/fast");
  // Thousands in a burst: the reader takes many per read and acks each QoS 1 one.
  constexpr int kEach = 3000;
  for (int i = 0; i < kEach; ++i) {
    std::string s = std::to_string(i);
    pub->publish("in/a/data", Bytes(s.begin(), s.end()), 1, false);
    pub->publish("in/b/fast", Bytes(s.begin(), s.end()), 0, false);
    if (i % 256 == 0) pub->wait(0);
  }
  ASSERT_TRUE(gather(r, got, [&] {
    pub->wait(0);
    return payloads(got, "in/a/data").size() == kEach && payloads(got, "in/b/fast").size() == kEach;
  }, 60s)) << payloads(got, "in/a/data").size() << " and " << payloads(got, "in/b/fast").size();
  auto data = payloads(got, "in/a/data"), fast = payloads(got, "in/b/fast");
  for (int i = 0; i < kEach; ++i) {
    ASSERT_EQ(data[static_cast<std::size_t>(i)], std::to_string(i));
    ASSERT_EQ(fast[static_cast<std::size_t>(i)], std::to_string(i));
  }
  for (const auto& e : got)
    if (e.type == LinkEvent::Type::message && e.msg.topic == "in/a/data") {
      EXPECT_FALSE(e.msg.retained);
      EXPECT_GT(e.msg.received_mono_us, 0);
    }
  EXPECT_EQ(r.counters().inbound_dropped, 0u);
  EXPECT_EQ(r.counters().protocol_errors, 0u);
}

TEST(IngestReader, ComesBackAndSubscribesAgainAfterTheBrokerRestarts) {
  TempDir dir;
  Broker broker(dir);
  MqttReader r(reader_options(broker.uri(), "ingest-test-2"));
  r.add_subscription("in/#", 0);
  r.start();
  std::vector<LinkEvent> got;
  {
    auto pub = publisher(broker.uri());
    until_subscribed(*pub, r, got, "in/one");
  }
  broker.kill();
  ASSERT_TRUE(gather(r, got, [&] { return count(got, LinkEvent::Type::lost) == 1; }));
  EXPECT_FALSE(r.connected());
  broker.start();
  ASSERT_TRUE(gather(r, got, [&] { return count(got, LinkEvent::Type::connected) == 2; }));
  auto pub = publisher(broker.uri());
  until_subscribed(*pub, r, got, "in/two");
  EXPECT_EQ(r.counters().reconnects, 1u);
}

TEST(IngestReader, TakesPlainTcpUrisOnly) {
  EXPECT_TRUE(MqttReader::usable("tcp://127.0.0.1:1883"));
  EXPECT_TRUE(MqttReader::usable("mqtt://broker.local"));
  EXPECT_TRUE(MqttReader::usable("tcp://[::1]:1884"));
  EXPECT_FALSE(MqttReader::usable("ssl://broker.local:8883"));
  EXPECT_FALSE(MqttReader::usable("ws://broker.local:9001"));
  EXPECT_FALSE(MqttReader::usable("tcp://broker.local:port"));
  EXPECT_FALSE(MqttReader::usable("tcp://"));
}

TEST(IngestReader, ARefusedOrUnreachableBrokerIsToldOfWithItsReason) {
  TempDir dir;
  {
    MqttReader r(reader_options("tcp://127.0.0.1:" + std::to_string(free_port()), "ingest-test-3"));
    r.start();
    std::vector<LinkEvent> got;
    ASSERT_TRUE(gather(r, got, [&] { return count(got, LinkEvent::Type::connect_failed) >= 2; }));
    EXPECT_EQ(got[0].code, -1);
    EXPECT_NE(got[0].detail.find("Connection refused"), std::string::npos) << got[0].detail;
  }
  Broker broker(dir, 0, true, "allow_anonymous false\n");
  MqttReader r(reader_options(broker.uri(), "ingest-test-4"));
  r.start();
  std::vector<LinkEvent> got;
  ASSERT_TRUE(gather(r, got, [&] { return count(got, LinkEvent::Type::connect_failed) >= 1; }));
  EXPECT_GE(got[0].code, 0x80);
  EXPECT_NE(got[0].detail.find("refused: "), std::string::npos) << got[0].detail;
  EXPECT_FALSE(r.connected());
}

TEST(IngestReader, TooLargeIsNeverSentToItAndTooLongPayloadsAreCutForTheirDrop) {
  Subscribed t([](MqttOptions& o) {
    o.max_packet_size = 1000;
    o.max_payload = 100;
  });
  auto& r = *t.r;
  auto& pub = t.pub;
  auto& got = t.got;
  pub->publish("in/big", Bytes(5000, 'b'), 1, false);     // over the packet size: the broker keeps it from us
  pub->publish("in/long", Bytes(500, 'l'), 1, false);     // over the payload limit, under the packet size
  pub->publish("in/after", Bytes{'a'}, 1, false);
  ASSERT_TRUE(gather(r, got, [&] { return !payloads(got, "in/after").empty(); }));
  EXPECT_TRUE(payloads(got, "in/big").empty());
  ASSERT_EQ(payloads(got, "in/long").size(), 1u);
  EXPECT_EQ(payloads(got, "in/long")[0].size(), 101u);
  EXPECT_EQ(count(got, LinkEvent::Type::lost), 0u);
  EXPECT_EQ(r.counters().protocol_errors, 0u);
}

TEST(IngestReader, FramesBeyondTheQueueAreDroppedAndCounted) {
  Subscribed t([](MqttOptions& o) { o.inbound_limit = 10; });
  auto& r = *t.r;
  auto& pub = t.pub;
  auto& got = t.got;
  r.wait(0);
  const auto before = r.counters().received;  // as of that drain: the queue was empty then
  for (int i = 0; i < 100; ++i) pub->publish("in/n", Bytes{static_cast<std::uint8_t>(i)}, 1, false);
  ASSERT_TRUE(eventually([&] {
    pub->wait(0);
    return r.counters_now().received >= before + 100;
  }));
  auto held = r.wait(0);
  const auto& c = r.counters();
  EXPECT_EQ(count(held, LinkEvent::Type::message), 10u);
  EXPECT_EQ(c.inbound_dropped, c.received - before - 10);  // every one read is held or counted
  EXPECT_GE(c.inbound_dropped, 90u);
}

TEST(IngestReader, ASecondConnectionWithItsIdIsSaidToHaveTakenItOver) {
  TempDir dir;
  Broker broker(dir);
  auto o = reader_options(broker.uri(), "ingest-test-7");
  o.takeover_min_s = 30;
  MqttReader first(o);
  first.start();
  std::vector<LinkEvent> got;
  ASSERT_TRUE(gather(first, got, [&] { return count(got, LinkEvent::Type::connected) == 1; }));
  MqttReader second(o);
  second.start();
  // Mosquitto closes the older connection without a word (an MQTT v5 broker
  // may say "session taken over"): links lost right after connecting, three
  // in a row, are taken for it.
  ASSERT_TRUE(gather(first, got, [&] {
    second.wait(0);
    return !got.empty() && got.back().type == LinkEvent::Type::lost &&
           (got.back().taken_over || got.back().detail.find("reconnecting in 30 s") != std::string::npos);
  }, 30s));
  const auto& lost = got.back();
  EXPECT_TRUE(lost.detail.find("session taken over") != std::string::npos ||
              lost.detail.find("is another client using this client id") != std::string::npos)
      << lost.detail;
}

namespace {

// A broker scripted by the test, byte by byte: one connection at a time.
class ScriptedBroker {
 public:
  ScriptedBroker() {
    listen_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(listen_, reinterpret_cast<sockaddr*>(&a), len) != 0 || ::listen(listen_, 4) != 0 ||
        ::getsockname(listen_, reinterpret_cast<sockaddr*>(&a), &len) != 0)
      throw std::runtime_error("scripted broker: no socket");
    port_ = ntohs(a.sin_port);
  }
  ~ScriptedBroker() {
    if (fd_ >= 0) ::close(fd_);
    ::close(listen_);
  }
  std::string uri() const { return "tcp://127.0.0.1:" + std::to_string(port_); }
  bool accept() {
    pollfd p{listen_, POLLIN, 0};
    if (::poll(&p, 1, 10'000) != 1) return false;
    if (fd_ >= 0) ::close(fd_);
    fd_ = ::accept(listen_, nullptr, nullptr);
    held_.clear();
    return fd_ >= 0;
  }
  // Closes the client's connection.
  void drop() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  // The client's next packet: its type and body; type 0 when none came in time or it closed.
  std::pair<int, std::string> next(std::chrono::milliseconds timeout = 10s) {
    const std::int64_t end = mono_us() + timeout.count() * 1000;
    for (;;) {
      auto f = mqttw::next_frame({reinterpret_cast<const std::uint8_t*>(held_.data()), held_.size()}, 1 << 20);
      if (f.status == mqttw::Frame::Status::ok) {
        std::pair<int, std::string> out{f.type, std::string(f.body.begin(), f.body.end())};
        held_.erase(0, f.size);
        return out;
      }
      pollfd p{fd_, POLLIN, 0};
      int ms = static_cast<int>((end - mono_us()) / 1000);
      if (ms <= 0 || ::poll(&p, 1, ms) != 1) return {0, ""};
      char buf[4096];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return {0, ""};
      held_.append(buf, static_cast<std::size_t>(n));
    }
  }
  void send(const std::string& bytes) {
    ASSERT_EQ(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
  }
  // CONNECT in, CONNACK (with props) out, SUBSCRIBE in, SUBACK out (a client that subscribes).
  void greet(const std::string& connack = std::string("\x20\x03\x00\x00\x00", 5), bool subscribes = true) {
    ASSERT_TRUE(accept());
    ASSERT_EQ(next().first, mqttw::kConnect);
    send(connack);
    if (!subscribes) return;
    auto sub = next();
    ASSERT_EQ(sub.first, mqttw::kSubscribe);
    send(std::string("\x90\x04", 2) + sub.second.substr(0, 2) + std::string("\x00\x01", 2));
  }

 private:
  int listen_ = -1, fd_ = -1, port_ = 0;
  std::string held_;
};

}  // namespace

TEST(IngestReader, AcksEachQos1FrameWithItsIdAndNothingAtQos0) {
  ScriptedBroker b;
  MqttReader r(reader_options(b.uri(), "ingest-test-8"));
  r.add_subscription("in/#", 1);
  r.start();
  b.greet();
  // Three publishes in one write: QoS 1 id 0x0A0B, QoS 0, QoS 1 id 0x0C0D.
  b.send(std::string("\x32\x08\x00\x02t1\x0a\x0b\x00" "A", 10) + std::string("\x30\x06\x00\x02t2\x00" "B", 8) +
         std::string("\x32\x08\x00\x02t3\x0c\x0d\x00" "C", 10));
  auto ack1 = b.next(), ack2 = b.next();
  EXPECT_EQ(ack1, (std::pair<int, std::string>{mqttw::kPuback, std::string("\x0a\x0b", 2)}));
  EXPECT_EQ(ack2, (std::pair<int, std::string>{mqttw::kPuback, std::string("\x0c\x0d", 2)}));
  std::vector<LinkEvent> got;
  ASSERT_TRUE(gather(r, got, [&] { return count(got, LinkEvent::Type::message) == 3; }));
  EXPECT_EQ(payloads(got, "t1"), std::vector<std::string>{"A"});
  EXPECT_EQ(payloads(got, "t2"), std::vector<std::string>{"B"});
  EXPECT_EQ(payloads(got, "t3"), std::vector<std::string>{"C"});
}

TEST(IngestReader, AMalformedPacketDropsTheConnectionIsCountedAndItComesBack) {
  ScriptedBroker b;
  MqttReader r(reader_options(b.uri(), "ingest-test-9"));
  r.add_subscription("in/#", 0);
  r.start();
  b.greet();
  b.send(std::string("\x30\x06\x00\x02t1\x00" "A", 8) + std::string("\x30\xff\xff\xff\xff\x01", 6));
  auto bye = b.next();
  EXPECT_EQ(bye, (std::pair<int, std::string>{mqttw::kDisconnect, std::string("\x81\x00", 2)}));
  std::vector<LinkEvent> got;
  ASSERT_TRUE(gather(r, got, [&] { return count(got, LinkEvent::Type::lost) == 1; }));
  EXPECT_EQ(payloads(got, "t1"), std::vector<std::string>{"A"});  // what came before it stands
  EXPECT_NE(got.back().detail.find("dropped the connection: a packet length of more than four bytes"),
            std::string::npos) << got.back().detail;
  EXPECT_EQ(r.counters_now().protocol_errors, 1u);
  b.greet();  // and it connects again
  ASSERT_TRUE(gather(r, got, [&] { return count(got, LinkEvent::Type::connected) == 2; }));
}

TEST(IngestReader, ABrokerThatStopsAnsweringIsLeftWithinItsKeepalive) {
  ScriptedBroker b;
  MqttReader r(reader_options(b.uri(), "ingest-test-10"));
  r.add_subscription("in/#", 0);
  r.start();
  b.greet(std::string("\x20\x06\x00\x00\x03\x13\x00\x01", 8));  // the broker's keepalive: 1 s
  EXPECT_EQ(b.next().first, mqttw::kPingreq);  // unanswered
  std::vector<LinkEvent> got;
  ASSERT_TRUE(gather(r, got, [&] { return count(got, LinkEvent::Type::lost) == 1; }));
  EXPECT_NE(got.back().detail.find("nothing from the broker within 1 s of a ping"), std::string::npos)
      << got.back().detail;
}

TEST(IngestReader, ABrokerSayingSessionTakenOverIsBelievedAtOnce) {
  ScriptedBroker b;
  auto o = reader_options(b.uri(), "ingest-test-11");
  o.takeover_min_s = 30;
  MqttReader r(o);
  r.add_subscription("in/#", 0);
  r.start();
  b.greet();
  b.send(std::string("\xe0\x02\x8e\x00", 4));
  std::vector<LinkEvent> got;
  ASSERT_TRUE(gather(r, got, [&] { return count(got, LinkEvent::Type::lost) == 1; }));
  EXPECT_TRUE(got.back().taken_over);
  EXPECT_NE(got.back().detail.find("session taken over"), std::string::npos) << got.back().detail;
  EXPECT_NE(got.back().detail.find("reconnecting in 30 s"), std::string::npos) << got.back().detail;
}

// Publishing (kairos-sim --client lean): through a real Mosquitto to a
// subscriber, and against the scripted broker for its window and resends.

TEST(IngestReader, PublishesAtQos0And1ReachASubscriberInOrder) {
  TempDir dir;
  Broker broker(dir);
  MqttReader sub(reader_options(broker.uri(), "lean-sub"));
  sub.add_subscription("out/#", 1);
  sub.start();
  std::vector<LinkEvent> got;
  ASSERT_TRUE(gather(sub, got, [&] { return count(got, LinkEvent::Type::connected) == 1; }));
  auto o = reader_options(broker.uri(), "lean-pub");
  o.backlog_limit = 10'000;  // all of them handed over at once
  MqttReader pub(o);
  pub.start();
  ASSERT_TRUE(eventually([&] { return pub.connected(); }));
  constexpr int kFrames = 3000;
  for (int i = 0; i < kFrames; ++i) {
    const std::string body = std::to_string(i);
    ASSERT_TRUE(pub.publish(i % 10 ? "out/q1" : "out/q0", as_bytes(body), i % 10 ? 1 : 0, false));
  }
  EXPECT_TRUE(pub.flush(mono_us() + 15'000'000)) << pub.unsent() << " not acknowledged";
  EXPECT_EQ(pub.unsent(), 0u);
  ASSERT_TRUE(gather(sub, got, [&] { return count(got, LinkEvent::Type::message) == kFrames; }));
  auto q1 = payloads(got, "out/q1"), q0 = payloads(got, "out/q0");
  ASSERT_EQ(q1.size() + q0.size(), static_cast<std::size_t>(kFrames));
  for (std::size_t k = 1; k < q1.size(); ++k) ASSERT_LT(std::stoi(q1[k - 1]), std::stoi(q1[k])) << "in order";
  const auto c = pub.counters_now();
  EXPECT_EQ(c.published, static_cast<std::uint64_t>(kFrames));
  EXPECT_EQ(c.publish_failures + c.backlog_dropped + c.offline_dropped, 0u);
}

TEST(IngestReader, PublishesWaitForTheBrokersWindowAndUnackedOnesAreSentAgainAfterADrop) {
  ScriptedBroker b;
  auto o = reader_options(b.uri(), "lean-pub-2");
  o.backlog_limit = 4;
  MqttReader pub(o);
  // Not connected: QoS 0 is refused, QoS 1 waits, up to backlog_limit.
  EXPECT_FALSE(pub.publish("t", as_bytes("zero"), 0, false));
  for (char c : std::string("abcd")) EXPECT_TRUE(pub.publish("t", as_bytes(std::string(1, c)), 1, false));
  EXPECT_FALSE(pub.publish("t", as_bytes("e"), 1, false));
  auto c = pub.counters_now();
  EXPECT_EQ(c.offline_dropped, 1u);
  EXPECT_EQ(c.backlog_dropped, 1u);
  EXPECT_EQ(pub.unsent(), 4u);
  pub.start();
  // A Receive Maximum of 2: two publishes, then nothing until a PUBACK.
  b.greet(std::string("\x20\x06\x00\x00\x03\x21\x00\x02", 8), false);
  auto payload_of = [](const std::pair<int, std::string>& pkt) {
    EXPECT_EQ(pkt.first, mqttw::kPublish);
    return pkt.second.substr(2 + 1 + 2 + 1);  // topic "t", packet id, no properties
  };
  auto id_of = [](const std::pair<int, std::string>& pkt) { return pkt.second.substr(3, 2); };
  auto a = b.next(), bb = b.next();
  EXPECT_EQ(payload_of(a), "a");
  EXPECT_EQ(payload_of(bb), "b");
  EXPECT_EQ(b.next(300ms).first, 0) << "a third publish beyond the window";
  b.send(std::string("\x40\x02", 2) + id_of(a));
  auto third = b.next();
  EXPECT_EQ(payload_of(third), "c");
  // The connection drops with b and c unacknowledged: on the next one they go first, then d.
  b.drop();
  ASSERT_TRUE(b.accept()) << "the client comes back";
  ASSERT_EQ(b.next().first, mqttw::kConnect);
  b.send(std::string("\x20\x03\x00\x00\x00", 5));
  std::vector<std::string> again;
  for (int i = 0; i < 3; ++i) {
    auto pkt = b.next();
    again.push_back(payload_of(pkt));
    b.send(std::string("\x40\x02", 2) + id_of(pkt));
  }
  EXPECT_EQ(again, (std::vector<std::string>{"b", "c", "d"}));
  EXPECT_TRUE(pub.flush(mono_us() + 5'000'000));
  EXPECT_EQ(pub.counters_now().reconnects, 1u);
}

TEST(IngestReader, PublishesHandedOverWithoutAWakeLeaveTogetherAtTheWake) {
  ScriptedBroker b;
  MqttReader pub(reader_options(b.uri(), "lean-pub-3"));
  pub.start();
  b.greet(std::string("\x20\x03\x00\x00\x00", 5), false);
  ASSERT_TRUE(eventually([&] { return pub.connected(); }));
  for (char c : std::string("xyz")) ASSERT_TRUE(pub.publish("t", as_bytes(std::string(1, c)), 0, false, false));
  EXPECT_EQ(b.next(300ms).first, 0) << "nothing before the wake";
  pub.wake();
  for (char c : std::string("xyz")) {
    auto pkt = b.next();
    ASSERT_EQ(pkt.first, mqttw::kPublish);
    EXPECT_EQ(pkt.second.substr(4), std::string(1, c));  // topic "t", no properties
  }
  EXPECT_TRUE(pub.flush(mono_us() + 5'000'000));
}

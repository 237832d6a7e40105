// A frame that reaches a link after a second of quiet is taken at once, not
// after Paho C's idle sleep (docs/DESIGN.md 4, quiet links).
#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

#include "common/io/clock.h"
#include "common/io/mqtt.h"
#include "tests/integration/harness.h"

using namespace kairos;
using namespace kairos::test;
using namespace std::chrono_literals;

namespace {

// The next message's arrival (Paho's callback, monotonic us), or 0.
std::int64_t next_arrival(MqttLink& link, std::int64_t deadline_us) {
  while (mono_us() < deadline_us)
    for (auto& ev : link.wait(deadline_us))
      if (ev.type == LinkEvent::Type::message) return ev.msg.received_mono_us;
  return 0;
}

TEST(QuietLink, AFrameMeetingPahosIdleSleepIsTakenAtOnce) {
  TempDir dir;
  Broker broker(dir);
  MqttOptions o;
  o.uri = broker.uri();
  o.client_id = "quiet-receiver";
  MqttLink receiver(o);
  receiver.add_subscription("quiet/t", 0);
  o.client_id = "quiet-sender";
  MqttLink sender(o);
  ASSERT_TRUE(eventually([&] {
    for (auto* l : {&receiver, &sender}) {
      l->service(mono_us());
      l->wait(mono_us() + 20'000);
    }
    return receiver.connected() && sender.connected();
  }));
  // The subscription is in place once a frame comes back.
  ASSERT_TRUE(eventually([&] {
    sender.publish("quiet/t", Bytes{1}, 0, false);
    return next_arrival(receiver, mono_us() + 200'000) != 0;
  }));
  // Each round: a frame, then another 1,030 ms after the first was taken.
  // Paho's receive thread has polled the quiet socket for its second by
  // then, and would sleep 100 ms before it polls again: the second frame
  // would wait about 70 ms there.
  std::vector<double> delays_ms;
  for (int round = 0; round < 5; ++round) {
    sender.publish("quiet/t", Bytes{2}, 0, false);
    const std::int64_t first = next_arrival(receiver, mono_us() + 2'000'000);
    ASSERT_NE(first, 0);
    std::this_thread::sleep_until(std::chrono::steady_clock::time_point(std::chrono::microseconds(first + 1'030'000)));
    const std::int64_t sent = mono_us();
    sender.publish("quiet/t", Bytes{3}, 0, false);
    const std::int64_t taken = next_arrival(receiver, sent + 2'000'000);
    ASSERT_NE(taken, 0);
    delays_ms.push_back(static_cast<double>(taken - sent) / 1000.0);
  }
  std::sort(delays_ms.begin(), delays_ms.end());
  std::string all;
  for (double d : delays_ms) all += std::to_string(d) + " ";
  EXPECT_LT(delays_ms[2], 30.0) << "delays (ms): " << all;
  RecordProperty("delays_ms", all);
}

}  // namespace

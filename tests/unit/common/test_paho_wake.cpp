#include <gtest/gtest.h>

#include <pthread.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <thread>

#include "common/io/paho_wake.h"

namespace kairos {
namespace {

TEST(PahoWake, OnlyTheReceiveThreadsIdleSleepAfterAPollThatWaitedIsCut) {
  EXPECT_EQ(paho_sleep_us(100'000, "MQTTAsync_rcv", 1'000'000), kPahoIdleSleepUs);
  EXPECT_EQ(paho_sleep_us(100'000, "MQTTAsync_rcv", INT64_MAX), kPahoIdleSleepUs);
  // A poll that returned at once (no socket): the pause paces that loop.
  EXPECT_EQ(paho_sleep_us(100'000, "MQTTAsync_rcv", 2'000), 100'000u);
  // Other sleeps, other threads: as asked.
  EXPECT_EQ(paho_sleep_us(50'000, "MQTTAsync_rcv", 1'000'000), 50'000u);
  EXPECT_EQ(paho_sleep_us(100'000, "MQTTAsync_send", 1'000'000), 100'000u);
  EXPECT_EQ(paho_sleep_us(100'000, "kairos-node", 1'000'000), 100'000u);
  // Any thread tearing a client down: Paho's 100 ms waits for its threads' end are short.
  EXPECT_EQ(paho_sleep_us(100'000, "kairosctl", 1'000'000, true), kPahoIdleSleepUs);
  EXPECT_EQ(paho_sleep_us(100'000, "MQTTAsync_rcv", 2'000, true), kPahoIdleSleepUs);
  EXPECT_EQ(paho_sleep_us(50'000, "kairosctl", 1'000'000, true), 50'000u);
}

TEST(PahoWake, ThisProcesssUsleepIsOurs) { EXPECT_TRUE(paho_wake_installed()); }

// Through the process's usleep, as Paho calls it: the first idle sleep of a
// thread named as Paho's receive thread is short, one right after it (a poll
// that did not wait) is whole, and another thread's is whole.
TEST(PahoWake, UsleepShortensThePahoReceiveThreadsFirstIdleSleepOnly) {
  using clock = std::chrono::steady_clock;
  auto timed = [] {
    auto t0 = clock::now();
    ::usleep(100'000);
    return std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - t0).count();
  };
  std::int64_t first = 0, second = 0, other = 0;
  std::thread rcv([&] {
    pthread_setname_np(pthread_self(), "MQTTAsync_rcv");
    first = timed();
    second = timed();
  });
  rcv.join();
  std::thread plain([&] { other = timed(); });
  plain.join();
  EXPECT_LT(first, 100'000);
  EXPECT_GE(second, 100'000);
  EXPECT_GE(other, 100'000);
}

// A thread tearing clients down sleeps short while it does, whole after.
TEST(PahoWake, UsleepIsShortWhileTheThreadTearsAClientDown) {
  using clock = std::chrono::steady_clock;
  auto timed = [] {
    auto t0 = clock::now();
    ::usleep(100'000);
    return std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - t0).count();
  };
  std::int64_t during = 0, after = 0;
  std::thread t([&] {
    {
      PahoTeardown quick;
      during = timed();
    }
    after = timed();
  });
  t.join();
  EXPECT_LT(during, 100'000);
  EXPECT_GE(after, 100'000);
}

}  // namespace
}  // namespace kairos

#include <gtest/gtest.h>

#include "common/core/impedance.h"

using namespace kairos;

TEST(ClockFilter, MinRttSampleGivesTheOffset) {
  ClockFilter f;
  // node clock 5 s ahead; one-way delays vary, the tightest sample wins
  const std::int64_t ahead = 5'000'000;
  auto sample = [&](std::int64_t t1, std::int64_t up, std::int64_t proc, std::int64_t down) {
    return ClockSample{t1, t1 + up + ahead, t1 + up + proc + ahead, t1 + up + proc + down};
  };
  EXPECT_TRUE(f.add(sample(0, 30'000, 1'000, 10'000)));   // asymmetric: offset off by 10 ms
  EXPECT_TRUE(f.add(sample(1'000'000, 5'000, 500, 5'000)));  // symmetric and tight
  EXPECT_TRUE(f.add(sample(2'000'000, 20'000, 700, 40'000)));
  EXPECT_EQ(f.count(), 3u);
  EXPECT_DOUBLE_EQ(f.rtt_us(), 10'000);
  EXPECT_DOUBLE_EQ(f.offset_us(), ahead);
  EXPECT_DOUBLE_EQ(f.one_way_us(), 5'000);
  EXPECT_GT(f.jitter_us(), 0);
  EXPECT_FALSE(f.add({0, 10, 1'000, 5}));  // negative round trip: refused
  EXPECT_EQ(f.count(), 3u);
}

TEST(ClockFilter, KeepsTheLastSixteen) {
  ClockFilter f;
  f.add({0, 0, 0, 1'000});  // rtt 1 ms, soon forgotten
  for (int i = 1; i <= 16; ++i) f.add({i * 100'000, i * 100'000 + 2'000, i * 100'000 + 2'000, i * 100'000 + 4'000});
  EXPECT_EQ(f.count(), 16u);
  EXPECT_DOUBLE_EQ(f.rtt_us(), 4'000);
  EXPECT_DOUBLE_EQ(f.jitter_us(), 0.0);
}

TEST(Impedance, Spec52) {
  ImpedanceInputs in;
  in.device_class = 1;  // A: 10 ms
  in.rtt_ms = 20;
  in.jitter_ms = 2;
  in.queue_depth = 5;
  in.payload_weight = 1;
  auto r = impedance(in, 0);
  EXPECT_DOUBLE_EQ(r.processing_est_ms, 10 * 1.5 * 1.5);
  EXPECT_DOUBLE_EQ(r.buffer_ms, 8);
  EXPECT_DOUBLE_EQ(r.lead_ms, 10 + 22.5 + 8);
  EXPECT_EQ(r.score, 41);
  EXPECT_DOUBLE_EQ(r.drift, 0.2);
  EXPECT_DOUBLE_EQ(r.confidence, 0.5 - 0.06 + 0.2);
  EXPECT_FALSE(r.degraded);
  EXPECT_FALSE(r.unstable);
  in.processing_ema_ms = 3;  // measured replaces the class base
  EXPECT_DOUBLE_EQ(impedance(in, 0).processing_est_ms, 3 * 1.5 * 1.5);
  EXPECT_TRUE(impedance(in, 10).degraded);  // above twice its own baseline
  in.device_class = 6;  // F: a human, 60 s
  in.processing_ema_ms = -1;
  EXPECT_EQ(impedance(in, 0).score, 1000);
  EXPECT_TRUE(impedance(in, 0).degraded);
  in.jitter_ms = 30;
  EXPECT_TRUE(impedance(in, 0).unstable);
  in.reliability = 0;
  in.heartbeat_fresh = false;
  EXPECT_DOUBLE_EQ(impedance(in, 0).confidence, 0.0);
}

TEST(EwRate, MovesTowardsOutcomes) {
  EwRate r(0.5);
  EXPECT_DOUBLE_EQ(r.value(), 1.0);
  r.add(false);
  EXPECT_DOUBLE_EQ(r.value(), 0.5);
  r.add(true);
  EXPECT_DOUBLE_EQ(r.value(), 0.75);
}

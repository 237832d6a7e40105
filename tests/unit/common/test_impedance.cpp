#include <gtest/gtest.h>

#include <cmath>
#include <random>

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

namespace {
// A ping at t1 with one-way trips up and down (us), node clock `ahead`.
ClockSample ping(std::int64_t t1, std::int64_t up, std::int64_t down, std::int64_t ahead = 0) {
  return {t1, t1 + up + ahead, t1 + up + ahead + 100, t1 + up + 100 + down};
}
}  // namespace

TEST(ClockFilter, LatencyJumpRestartsTheWindowWithinThreePings) {
  ClockFilter f;
  for (int i = 0; i < 16; ++i) f.add(ping(i * 1'000'000, 20'000 + (i % 3) * 300, 20'000, 7'000));
  EXPECT_NEAR(f.one_way_us(), 20'000, 1);
  // the route changes: 150 ms more each way
  f.add(ping(20'000'000, 170'000, 170'000, 7'000));
  f.add(ping(21'000'000, 170'500, 170'000, 7'000));
  EXPECT_EQ(f.shifts(), 0u);
  EXPECT_NEAR(f.one_way_us(), 20'000, 1) << "two slow pings are not yet a new level";
  f.add(ping(22'000'000, 170'200, 170'000, 7'000));
  EXPECT_EQ(f.shifts(), 1u);
  EXPECT_EQ(f.count(), 3u);
  EXPECT_NEAR(f.one_way_us(), 170'000, 1);
  EXPECT_NEAR(f.offset_us(), 7'000, 1);
  // and back down
  for (int i = 0; i < 3; ++i) f.add(ping(23'000'000 + i * 1'000'000, 20'000, 20'000, 7'000));
  EXPECT_EQ(f.shifts(), 2u);
  EXPECT_NEAR(f.one_way_us(), 20'000, 1);
}

TEST(ClockFilter, OrdinaryJitterIsNoLevelShift) {
  ClockFilter f;
  // one-way 50 ms with a tail up to 6 ms, alternating: never three outliers in a row
  for (int i = 0; i < 200; ++i) f.add(ping(i * 1'000'000, 50'000 + (i % 2) * 6'000, 50'000 + (i % 3) * 2'000));
  EXPECT_EQ(f.shifts(), 0u);
  EXPECT_EQ(f.count(), 16u);
}

TEST(ClockFilter, InboundTailIsTheLargestExcessOverTheFloor) {
  ClockFilter f;
  f.add(ping(0, 10'000, 10'000, 3'000'000));
  f.add(ping(1'000'000, 14'000, 10'000, 3'000'000));  // commands reached the node 4 ms late once
  f.add(ping(2'000'000, 10'000, 13'000, 3'000'000));  // the way back does not count
  EXPECT_NEAR(f.offset_us(), 3'000'000, 1);
  EXPECT_NEAR(f.inbound_tail_us(), 4'000, 1);
}

TEST(Impedance, CalibrationAddsToTheLead) {
  ImpedanceInputs in;
  in.device_class = 1;
  in.rtt_ms = 20;
  in.processing_ema_ms = 1;
  in.calibration_ms = 6;
  auto r = impedance(in, 0);
  EXPECT_DOUBLE_EQ(r.calibration_ms, 6);
  EXPECT_DOUBLE_EQ(r.lead_ms, 10 + 1 + 2 + 6);
  EXPECT_EQ(r.score, 19);
  in.calibration_ms = -3;  // never shortens the lead
  EXPECT_DOUBLE_EQ(impedance(in, 0).lead_ms, 13);
}

TEST(ClockFilter, ACongestedSecondIsNoLevelShift) {
  ClockFilter f;
  for (int i = 0; i < 10; ++i) f.add(ping(i * 250'000, 5'000, 5'000));
  // 1 s of congestion, pinged every 250 ms: 4 slow samples, then back
  for (int i = 10; i < 14; ++i) f.add(ping(i * 250'000, 30'000, 30'000));
  for (int i = 14; i < 20; ++i) f.add(ping(i * 250'000, 5'000, 5'000));
  EXPECT_EQ(f.shifts(), 0u);
  EXPECT_NEAR(f.one_way_us(), 5'000, 1);
  // but 2 s of it is a new level: the window restarts from those 2 s
  ClockFilter g;
  for (int i = 0; i < 16; ++i) g.add(ping(i * 250'000, 5'000, 5'000));
  for (int i = 16; i < 24; ++i) g.add(ping(i * 250'000, 30'000, 30'000));
  EXPECT_EQ(g.shifts(), 0u) << "1.75 s so far";
  g.add(ping(24 * 250'000, 30'000, 30'000));
  EXPECT_EQ(g.shifts(), 1u);
  EXPECT_EQ(g.count(), 9u);
  EXPECT_NEAR(g.one_way_us(), 30'000, 1);
}

TEST(ClockFilter, OneStraySampleDoesNotSetTheTailOnceThereAreEight) {
  ClockFilter f;
  for (int i = 0; i < 7; ++i) f.add(ping(i * 1'000'000, 10'000 + i * 100, 10'000));
  f.add(ping(7'000'000, 900'000, 10'000));  // stalled once
  EXPECT_NEAR(f.inbound_tail_us(), 600, 1) << "the second largest excess";
}

namespace {

// A node whose clock reads `offset` + drift * t ahead of the gateway's, pinged
// every `period` with one-way delays up and down (us).
struct DriftingNode {
  double offset_us = 3'000'000;
  double drift_ppm = 0;
  double node_at(std::int64_t t) const { return static_cast<double>(t) + offset_us + drift_ppm * 1e-6 * static_cast<double>(t); }
  ClockSample ping(std::int64_t t1, std::int64_t up, std::int64_t down) const {
    const auto t2 = static_cast<std::int64_t>(node_at(t1 + up));
    return {t1, t2, t2 + 200, t1 + up + 200 + down};
  }
};

}  // namespace

TEST(ClockFilter, FollowsADriftingClockBetweenPings) {
  ClockFilter f;
  DriftingNode node;
  node.drift_ppm = 80;
  // Ten-second pings with a noisy tail; the floor is 5 ms each way.
  const std::int64_t ups[] = {5'000, 9'000, 5'300, 12'000, 5'100, 7'000, 5'000, 30'000, 5'200, 6'000, 5'050, 5'400};
  std::int64_t t = 0;
  for (auto up : ups) {
    f.add(node.ping(t, up, 5'000 + (up - 5'000) / 3));
    t += 10'000'000;
  }
  EXPECT_NEAR(f.drift_ppm(), 80, 5);
  // 30 s past the last ping, the offset is where the clock has gone: within
  // 0.5 ms (the offset alone, without the drift, would be off by 2.4 ms or more).
  const std::int64_t later = t + 20'000'000;
  EXPECT_NEAR(f.offset_at_us(later), node.node_at(later) - static_cast<double>(later), 500);
  EXPECT_EQ(f.steps(), 0u);
}

TEST(ClockFilter, NoDriftIsFittedFromAShortOrFewSamples) {
  ClockFilter f;
  DriftingNode node;
  node.drift_ppm = 100;
  for (std::int64_t i = 0; i < 8; ++i) f.add(node.ping(i * 2'000'000, 5'000, 5'000));  // 14 s
  EXPECT_EQ(f.drift_ppm(), 0);
  f.add(node.ping(30'000'000, 5'000, 5'000));
  EXPECT_NEAR(f.drift_ppm(), 100, 1);
}

TEST(ClockFilter, AStepOfTheNodesClockRestartsTheWindowAfterTwoGoodSamples) {
  ClockFilter f;
  DriftingNode node;
  for (std::int64_t i = 0; i < 10; ++i) f.add(node.ping(i * 10'000'000, 5'000, 5'000));
  ASSERT_NEAR(f.offset_us(), node.offset_us, 1);
  node.offset_us += 5'000;  // an NTP correction on the node
  f.add(node.ping(100'000'000, 5'000, 5'000));
  EXPECT_EQ(f.steps(), 0u);  // one sample is not a step
  EXPECT_NEAR(f.offset_us(), node.offset_us - 5'000, 1);
  f.add(node.ping(110'000'000, 5'000, 5'000));
  EXPECT_EQ(f.steps(), 1u);
  EXPECT_EQ(f.count(), 2u);
  EXPECT_NEAR(f.offset_us(), node.offset_us, 1);
}

TEST(ClockFilter, AnAsymmetricSampleIsNoStep) {
  ClockFilter f;
  DriftingNode node;
  for (std::int64_t i = 0; i < 10; ++i) f.add(node.ping(i * 10'000'000, 5'000, 5'000));
  // Two slow pings one way: their offsets are off by up to half their excess, not a step.
  f.add(node.ping(100'000'000, 25'000, 5'000));
  f.add(node.ping(110'000'000, 25'000, 5'000));
  EXPECT_EQ(f.steps(), 0u);
  EXPECT_EQ(f.count(), 12u);
}

TEST(Impedance, AMeasuredTailSetsTheLeadInsteadOfTheJitter) {
  ImpedanceInputs in;
  in.device_class = 2;
  in.rtt_ms = 40;
  in.jitter_ms = 4;
  in.processing_ema_ms = 3;
  in.calibration_ms = 1;
  const auto normal = impedance(in, 0);
  EXPECT_DOUBLE_EQ(normal.lead_ms, 20 + 3 + (3 * 4 + 2) + 1);
  in.delay_tail_ms = 95;  // a heavy tail: p99.9 far beyond rtt/2 + 3 sd
  const auto tail = impedance(in, 0);
  EXPECT_DOUBLE_EQ(tail.buffer_ms, 2);
  EXPECT_DOUBLE_EQ(tail.lead_ms, 95 + 3 + 2 + 1);
  in.delay_tail_ms = 5;  // never below the floor
  EXPECT_DOUBLE_EQ(impedance(in, 0).lead_ms, 20 + 3 + 2 + 1);
}

TEST(ClockFilter, TighterSamplesThanTheAnchorAreNoStep) {
  // A heavy tail: the first samples all wait in a queue one way; later ones
  // find the floor. Their offsets differ by half the queue, which is the
  // anchor's error, not a step of the clock.
  ClockFilter f;
  DriftingNode node;
  for (std::int64_t i = 0; i < 12; ++i) {
    const bool queued = i < 2 || i == 5 || i == 9;
    f.add(node.ping(i * 2'000'000, queued ? 35'000 : 5'000, 5'000));
  }
  EXPECT_EQ(f.steps(), 0u);
  EXPECT_EQ(f.count(), 12u);
  EXPECT_NEAR(f.offset_us(), node.offset_us, 1);
}

TEST(ClockFilter, AHeavyTailMakesNoFalseStepsAndTheWindowFills) {
  // Class E on a Pareto tail (docs/SIM.md): 200 ms each way plus a Lomax
  // queue of scale 100 ms, alpha 2. Asymmetric samples everywhere.
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> u(0, 1);
  auto lomax = [&] { return 100'000 * (std::pow(1 - u(rng), -1.0 / 2) - 1); };
  ClockFilter f;
  DriftingNode node;
  node.drift_ppm = 30;
  for (std::int64_t i = 0; i < 300; ++i)
    f.add(node.ping(i * 10'000'000, 200'000 + static_cast<std::int64_t>(lomax()), 200'000 + static_cast<std::int64_t>(lomax())));
  EXPECT_EQ(f.steps(), 0u);
  EXPECT_EQ(f.count(), 16u);
}

TEST(ClockFilter, WifiWithDriftAndStepsIsFollowed) {
  // The Wi-Fi profile: a 3 ms floor and a log-normal jitter (median 2 ms,
  // sigma 0.8) each way; the clock 100 ppm fast and stepped by 5 ms every
  // 300 s (an NTP correction).
  std::mt19937_64 rng(5);
  std::lognormal_distribution<double> jitter(std::log(2'000.0), 0.8);
  ClockFilter f;
  DriftingNode node;
  node.drift_ppm = 100;
  int steps = 0;
  double worst = 0, sum = 0;
  int n = 0;
  for (std::int64_t i = 1; i <= 180; ++i) {  // 30 minutes of 10 s pings
    const std::int64_t t = i * 10'000'000;
    if (i % 30 == 0) {
      node.offset_us += (i / 30) % 2 ? 5'000 : -5'000;
      ++steps;
    }
    f.add(node.ping(t, 3'000 + static_cast<std::int64_t>(jitter(rng)), 3'000 + static_cast<std::int64_t>(jitter(rng))));
    // Where T would be, 2 s on: the offset there, against the truth (a step
    // is known two pings after it).
    if (i > 20 && i % 30 != 0 && i % 30 != 1) {
      const double e = std::abs(f.offset_at_us(t + 2'000'000) - (node.node_at(t + 2'000'000) - static_cast<double>(t + 2'000'000)));
      worst = std::max(worst, e);
      sum += e;
      ++n;
    }
  }
  // A 5 ms step hides in this jitter (the threshold is its scatter and
  // uncertainty, several ms): it is followed as the window turns over, and
  // the offset at T stays within a few ms, well inside the +-10 ms a
  // schedule aims at; a mesh whose clocks step often wants faster pings.
  (void)steps;
  EXPECT_NEAR(f.drift_ppm(), 100, 30);
  EXPECT_LT(worst, 8'000);
  EXPECT_LT(sum / n, 2'000);
}

TEST(Impedance, ASpeakersBufferLengthensTheLead) {
  ImpedanceInputs in;
  in.rtt_ms = 10;
  in.processing_ema_ms = 1;
  in.delay_tail_ms = 8;
  const double plain = impedance(in, 0).lead_ms;
  in.output_ms = 25;  // 15 ms queued in the device, and a wake of the engine
  EXPECT_DOUBLE_EQ(impedance(in, 0).lead_ms, plain + 25);
}

TEST(OneWayFloors, FindTheOffsetOnAHeavyTailWhereTheQuickestRoundTripCannot) {
  // Class E on the Pareto profile: 200 ms each way plus a Lomax queue of
  // scale 100 ms; the node's clock 2.5 s ahead (a drift too small to tell
  // from this noise is none here). Pings every 10 s (a sample each way) and
  // heartbeats every 5 s (outbound).
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> u(0, 1);
  auto delay = [&] { return 200'000 + 100'000 * (std::pow(1 - u(rng), -1.0 / 2) - 1); };
  DriftingNode node;
  node.offset_us = 2'500'000;
  double floors_worst = 0, filter_worst = 0;
  for (int trial = 0; trial < 20; ++trial) {
    ClockFilter f;
    OneWayFloors w;
    const std::int64_t t0 = trial * 1'000'000'000LL;
    for (std::int64_t i = 0; i < 40; ++i) {
      const std::int64_t t = t0 + i * 5'000'000;
      // A heartbeat: sent at t on the node's clock, received after its delay.
      const auto d = static_cast<std::int64_t>(delay());
      w.outbound(t + d, static_cast<double>(t + d) - node.node_at(t));
      if (i % 2) continue;
      const auto up = static_cast<std::int64_t>(delay()), down = static_cast<std::int64_t>(delay());
      const auto s = node.ping(t, up, down);
      f.add(s);
      w.inbound(s.t1_us, static_cast<double>(s.t2_us - s.t1_us));
      w.outbound(s.t4_us, static_cast<double>(s.t4_us - s.t3_us));
    }
    const std::int64_t T = t0 + 205'000'000;
    const double truth = node.node_at(T) - static_cast<double>(T);
    double o = 0;
    ASSERT_TRUE(w.offset_at_us(T, f.drift_ppm(), o));
    floors_worst = std::max(floors_worst, std::abs(o - truth));
    filter_worst = std::max(filter_worst, std::abs(f.offset_at_us(T) - truth));
  }
  EXPECT_LT(floors_worst, 5'000);
  EXPECT_GT(filter_worst, 2 * floors_worst);  // the reason for the floors
}

TEST(OneWayFloors, SayNothingUntilBothWaysHaveFrames) {
  OneWayFloors w;
  double o = 0;
  for (int i = 0; i < 20; ++i) w.outbound(i * 1'000'000, 5'000);
  EXPECT_FALSE(w.offset_at_us(0, 0, o));
  for (int i = 0; i < 8; ++i) w.inbound(i * 1'000'000, 9'000);
  ASSERT_TRUE(w.offset_at_us(0, 0, o));
  EXPECT_DOUBLE_EQ(o, 2'000);
  w.clear();
  EXPECT_FALSE(w.offset_at_us(0, 0, o));
}

TEST(OneWayFloors, TheKeptMinimumIsTheMinimumOverTheRing) {
  // Frames come one at a time, the drift changes now and then, the frame
  // that held the floor leaves the ring: the answer is always the one a
  // walk over the last 32 frames of each direction gives.
  std::mt19937_64 rng(17);
  std::uniform_real_distribution<double> u(0, 1);
  OneWayFloors w;
  std::vector<std::pair<std::int64_t, double>> in, out;
  double drift_ppm = 0;
  for (int i = 0; i < 2000; ++i) {
    const std::int64_t t = 1'700'000'000'000'000 + i * 250'000;
    const double raw = 3'000'000 + 40'000 * std::pow(1 - u(rng), -0.5);
    if (i % 3 == 0) {
      w.inbound(t, raw);
      in.emplace_back(t, raw);
    } else {
      w.outbound(t, raw - 6'000'000);
      out.emplace_back(t, raw - 6'000'000);
    }
    if (i % 97 == 0) drift_ppm = 200 * u(rng) - 100;
    double got = 0;
    if (!w.offset_at_us(t, drift_ppm, got)) continue;
    auto walk = [&](const auto& v, double sign) {
      double m = INFINITY;
      for (std::size_t k = v.size() > 32 ? v.size() - 32 : 0; k < v.size(); ++k)
        m = std::min(m, v[k].second + sign * drift_ppm * 1e-6 * static_cast<double>(v[k].first - t));
      return m;
    };
    ASSERT_NEAR(got, (walk(in, -1) - walk(out, +1)) / 2, 1.0) << i;
  }
}

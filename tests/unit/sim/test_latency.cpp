// The network and clock model of kairos-sim (docs/SIM.md): exact and
// deterministic for a seed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "tools/sim/latency.h"

using namespace kairos::sim;

namespace {

struct Moments {
  double mean_ms = 0;
  double sd_ms = 0;
  double min_ms = 1e18;
};

Moments draws(std::uint64_t seed, double base_ms, double jitter, int n) {
  Rng rng(seed);
  double sum = 0, sum2 = 0;
  Moments m;
  for (int i = 0; i < n; ++i) {
    double ms = static_cast<double>(draw_delay_us(rng, base_ms, jitter)) / 1000.0;
    sum += ms;
    sum2 += ms * ms;
    m.min_ms = std::min(m.min_ms, ms);
  }
  m.mean_ms = sum / n;
  m.sd_ms = std::sqrt(sum2 / n - m.mean_ms * m.mean_ms);
  return m;
}

}  // namespace

TEST(LatencyModel, DelayIsTheBasePlusAnExponentialTail) {
  // (base ms, jitter): the tail's mean is jitter * base, at least kMinTailMs.
  const struct {
    double base_ms, jitter, tail_ms;
  } cases[] = {{5, 0.05, 0.25}, {50, 0.05, 2.5}, {200, 0.2, 40}, {20, 0, kMinTailMs}, {0, 0.05, kMinTailMs}};
  for (const auto& c : cases) {
    SCOPED_TRACE(testing::Message() << "base " << c.base_ms << " jitter " << c.jitter);
    EXPECT_DOUBLE_EQ(tail_mean_ms(c.base_ms, c.jitter), c.tail_ms);
    auto m = draws(42, c.base_ms, c.jitter, 200'000);
    EXPECT_GE(m.min_ms, c.base_ms) << "the propagation floor holds for every frame";
    EXPECT_LT(m.min_ms, c.base_ms + 0.01 * c.tail_ms + 0.002);
    // An exponential's mean and standard deviation are both its mean:
    // within 1.5 % over 200,000 draws (the microsecond rounding aside).
    EXPECT_NEAR(m.mean_ms, c.base_ms + c.tail_ms, 0.015 * c.tail_ms + 0.001);
    EXPECT_NEAR(m.sd_ms, c.tail_ms, 0.015 * c.tail_ms + 0.001);
  }
}

TEST(LatencyModel, TheSeedDecidesEveryDraw) {
  auto a = draws(7, 50, 0.05, 1000), b = draws(7, 50, 0.05, 1000), c = draws(8, 50, 0.05, 1000);
  EXPECT_EQ(a.mean_ms, b.mean_ms);
  EXPECT_EQ(a.min_ms, b.min_ms);
  EXPECT_NE(a.mean_ms, c.mean_ms);
  EXPECT_NE(derive_seed(7, 1), derive_seed(7, 2));
  EXPECT_NE(derive_seed(7, 1), derive_seed(8, 1));
  EXPECT_EQ(derive_seed(7, 1), derive_seed(7, 1));
}

TEST(LatencyModel, FramesOfOneDirectionAreNeverReordered) {
  // A heavy tail (jitter 1: tail mean = base) and frames 100 us apart: many
  // frames draw less than their predecessor and must wait for it.
  DelayLine line(3);
  std::int64_t prev = INT64_MIN;
  int held_back = 0;
  for (int i = 0; i < 20'000; ++i) {
    const std::int64_t now = 1'000'000 + i * 100;
    const std::int64_t out = line.pass(now, 10, 1.0);
    EXPECT_GE(out, prev);
    EXPECT_GE(out, now + 10'000) << "never faster than the floor";
    if (out == prev) ++held_back;
    prev = out;
  }
  EXPECT_GT(held_back, 1000);
}

TEST(LatencyModel, SlowNodesHaveTenTimesTheBase) {
  const double base = 20, jitter = 0.05;
  auto normal = draws(11, base, jitter, 100'000);
  auto slow = draws(11, base * kSlowFactor, jitter, 100'000);
  EXPECT_GE(slow.min_ms, 200.0);
  EXPECT_NEAR(slow.mean_ms / normal.mean_ms, kSlowFactor, 0.05);
}

TEST(LatencyModel, AJumpMovesTheFloorAndKeepsTheOrder) {
  // 20 ms, then +40 ms (both directions of a node use the new base), then
  // back down by 55 ms: frames sent after the drop may not overtake those
  // still on their way.
  DelayLine line(5);
  double base = 20;
  std::int64_t prev = INT64_MIN, now = 0;
  for (int i = 0; i < 100; ++i, now += 1000) {
    prev = line.pass(now, base, 0.05);
    EXPECT_LT(prev - now, 40'000);
  }
  base += 40;
  for (int i = 0; i < 100; ++i, now += 1000) {
    auto out = line.pass(now, base, 0.05);
    EXPECT_GE(out - now, 60'000);
    EXPECT_GE(out, prev);
    prev = out;
  }
  base = std::max(0.0, base - 55);
  const std::int64_t last_before_drop = prev;
  auto first = line.pass(now, base, 0.05);
  EXPECT_EQ(first, last_before_drop) << "waits for the frames ahead of it";
  now += 100'000;
  auto later = line.pass(now, base, 0.05);
  EXPECT_GE(later - now, 5'000);
  EXPECT_LT(later - now, 10'000) << "once the queue is gone, the new floor holds";
}

TEST(LatencyClock, OffsetOnlyMapsBothWaysExactly) {
  NodeClock c{-1'234'567, 0.0, 1'700'000'000'000'000};
  for (std::int64_t hours : {0, 1, 1000}) {
    const std::int64_t t = c.start_us + hours * 3'600'000'000 - 5'000'000;
    EXPECT_EQ(c.node_us(t), t - 1'234'567);
    EXPECT_EQ(c.true_us(c.node_us(t)), t);
  }
}

TEST(LatencyClock, DriftRunsTheNodeClockFastOrSlow) {
  const std::int64_t start = 1'700'000'000'000'000;
  NodeClock fast{500'000, 100.0, start};  // +0.5 s, 100 ppm fast
  NodeClock slow{-2'000, -50.0, start};
  EXPECT_EQ(fast.node_us(start), start + 500'000);
  // After 1000 s: 100 ms gained, 50 ms lost.
  EXPECT_EQ(fast.node_us(start + 1'000'000'000), start + 1'000'000'000 + 500'000 + 100'000);
  EXPECT_EQ(slow.node_us(start + 1'000'000'000), start + 1'000'000'000 - 2'000 - 50'000);

  // true_us is the first true instant at which the node clock reads the
  // value: for a slow clock several true microseconds read the same.
  Rng rng(9);
  for (const auto& c : {fast, slow}) {
    for (int i = 0; i < 10'000; ++i) {
      const std::int64_t t = start + static_cast<std::int64_t>(rng.uniform(-1e9, 1e10));
      const std::int64_t n = c.node_us(t);
      const std::int64_t back = c.true_us(n);
      EXPECT_GE(c.node_us(back), n);
      EXPECT_LT(c.node_us(back - 1), n);
      EXPECT_LE(back, t);
      if (c.drift_ppm >= 0) {
        EXPECT_EQ(back, t) << "a clock that never stands still maps back exactly";
      }
    }
  }
}

TEST(LatencyClock, EachNodeDrawsItsOwnProfileFromTheSeed) {
  double min_off = 0, max_off = 0, min_drift = 0, max_drift = 0;
  for (std::size_t i = 0; i < 5000; ++i) {
    auto d = draw_node(21, i, 2000, 30);
    auto again = draw_node(21, i, 2000, 30);
    EXPECT_EQ(d.offset_us, again.offset_us);
    EXPECT_EQ(d.in_seed, again.in_seed);
    ASSERT_LE(std::abs(d.offset_us), 2'000'000);
    ASSERT_LE(std::abs(d.drift_ppm), 30.0);
    ASSERT_GE(d.wave_period_s, 0.5);
    ASSERT_LT(d.wave_period_s, 5.0);
    ASSERT_NE(d.in_seed, d.out_seed);
    min_off = std::min(min_off, static_cast<double>(d.offset_us));
    max_off = std::max(max_off, static_cast<double>(d.offset_us));
    min_drift = std::min(min_drift, d.drift_ppm);
    max_drift = std::max(max_drift, d.drift_ppm);
  }
  // Uniform over the whole range.
  EXPECT_LT(min_off, -1'990'000);
  EXPECT_GT(max_off, 1'990'000);
  EXPECT_LT(min_drift, -29.9);
  EXPECT_GT(max_drift, 29.9);
  EXPECT_NE(draw_node(21, 0, 2000, 0).offset_us, draw_node(22, 0, 2000, 0).offset_us);
  EXPECT_EQ(draw_node(21, 0, 0, 0).offset_us, 0);
}

TEST(LatencyClock, FailuresGoToExactlyTheirShareOfNodes) {
  for (auto [n, f, expect] : {std::tuple{20, 0.5, 10}, {1000, 0.1, 100}, {7, 0.5, 4}, {10, 0.0, 0}, {10, 1.0, 10}}) {
    auto pick = pick_nodes(5, 1, static_cast<std::size_t>(n), f);
    EXPECT_EQ(std::count(pick.begin(), pick.end(), true), expect) << n << " x " << f;
    EXPECT_EQ(pick, pick_nodes(5, 1, static_cast<std::size_t>(n), f));
  }
  EXPECT_NE(pick_nodes(5, 1, 1000, 0.1), pick_nodes(5, 2, 1000, 0.1)) << "each failure kind picks on its own";
}

TEST(LatencyModel, BatchedFramesLeaveOnTheGridWithoutOvertaking) {
  // Reports leave on a 5 ms grid; an ack sent right after one must not
  // leave before it.
  DelayLine line(13);
  std::int64_t prev = INT64_MIN;
  for (int i = 0; i < 10'000; ++i) {
    const bool batched = i % 3 != 0;
    const std::int64_t now = i * 700;
    const std::int64_t out = line.pass(now, 20, 0.05, batched ? 5'000 : 0);
    EXPECT_GE(out, prev);
    EXPECT_GE(out, now + 20'000);
    if (batched) {
      EXPECT_EQ(out % 5'000, 0) << out;
    }
    prev = out;
  }
}

namespace {

// The empirical p-quantiles (ms) of n draws under a model.
std::vector<double> quantiles(const DelayModel& m, double base_ms, int n, std::vector<double> ps, std::uint64_t seed) {
  Rng rng(seed);
  std::vector<double> v(static_cast<std::size_t>(n));
  for (auto& x : v) x = static_cast<double>(draw_delay_us(rng, base_ms, m)) / 1000.0;
  std::sort(v.begin(), v.end());
  std::vector<double> out;
  for (double p : ps) out.push_back(v[static_cast<std::size_t>(p * (n - 1))]);
  return out;
}

}  // namespace

TEST(NetworkModel, TheNormalQuantileIsThePublishedOne) {
  EXPECT_NEAR(normal_quantile(0.5), 0.0, 1e-9);
  EXPECT_NEAR(normal_quantile(0.975), 1.959963985, 1e-8);
  EXPECT_NEAR(normal_quantile(0.999), 3.090232306, 1e-8);
  EXPECT_NEAR(normal_quantile(0.001), -3.090232306, 1e-8);
  EXPECT_NEAR(normal_quantile(0.01), -2.326347874, 1e-8);
}

// Each profile's drawn quantiles against the model's own, 400,000 draws.
TEST(NetworkModel, EachProfilesDrawsHaveItsQuantiles) {
  const std::vector<double> ps{0.5, 0.9, 0.99, 0.999};
  struct Case {
    const char* name;
    DelayModel m;
    double base_ms;
  };
  DelayModel exp, logn, pareto, wifi;
  exp.jitter = 0.5;
  logn.profile = Profile::lognormal;
  logn.jitter = 0.2;
  logn.sigma = 1.2;
  pareto.profile = Profile::pareto;
  pareto.jitter = 0.5;
  pareto.alpha = 1.5;
  wifi.profile = Profile::wifi;
  for (const Case& c : {Case{"exponential", exp, 20}, Case{"lognormal", logn, 50}, Case{"pareto", pareto, 20},
                        Case{"wifi", wifi, 5}}) {
    const auto got = quantiles(c.m, c.base_ms, 400'000, ps, 7);
    for (std::size_t i = 0; i < ps.size(); ++i) {
      const double want = delay_quantile_ms(c.m, c.base_ms, ps[i]);
      // The sampling error of a quantile grows into the tail: 2 % at the
      // median, 5 % at p99, 12 % at p99.9 (a few standard errors at n = 400,000).
      const double tol = ps[i] < 0.95 ? 0.02 : ps[i] < 0.995 ? 0.05 : 0.12;
      EXPECT_NEAR(got[i], want, tol * want) << c.name << " p" << ps[i] * 100;
    }
  }
  // The heavy tails are heavy: p99.9 over the median.
  EXPECT_GT(delay_quantile_ms(pareto, 0, 0.999) / delay_quantile_ms(pareto, 0, 0.5), 30);
  EXPECT_LT(delay_quantile_ms(exp, 0, 0.999) / delay_quantile_ms(exp, 0, 0.5), 10);
}

TEST(NetworkModel, WifiStallsAndLossesComeAtTheirShares) {
  DelayModel wifi;
  wifi.profile = Profile::wifi;
  wifi.stall_p = 0.02;
  wifi.stall_min_ms = 50;
  wifi.stall_max_ms = 300;
  Rng rng(3);
  const int n = 200'000;
  int stalled = 0;
  double min_ms = 1e9;
  for (int i = 0; i < n; ++i) {
    const double ms = static_cast<double>(draw_delay_us(rng, 5, wifi)) / 1000.0;
    min_ms = std::min(min_ms, ms);
    if (ms >= 5 + 3 + 50) ++stalled;  // the jitter alone reaches 50 ms once in ~25,000
  }
  EXPECT_NEAR(static_cast<double>(stalled) / n, 0.02, 0.002);
  EXPECT_GE(min_ms, 5 + 3);  // base and floor
  DelayModel lossy;
  lossy.jitter = 0.05;
  lossy.loss = 0.05;
  lossy.rto_ms = 200;
  Rng r2(4);
  int late = 0, twice = 0;
  for (int i = 0; i < n; ++i) {
    const double ms = static_cast<double>(draw_delay_us(r2, 10, lossy)) / 1000.0;
    if (ms >= 200) ++late;
    if (ms >= 600) ++twice;  // lost twice: 200 + 400
  }
  EXPECT_NEAR(static_cast<double>(late) / n, 0.05, 0.003);
  EXPECT_NEAR(static_cast<double>(twice) / n, 0.0025, 0.0006);
}

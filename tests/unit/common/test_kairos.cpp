#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "common/core/kairos.h"

using namespace kairos;

TEST(Kairos, LogSpacedTaus) {
  double t[4];
  log_spaced_taus(0.25, 2.0, 4, t);
  EXPECT_DOUBLE_EQ(t[0], 0.25);
  EXPECT_NEAR(t[1], 0.5, 1e-12);
  EXPECT_NEAR(t[2], 1.0, 1e-12);
  EXPECT_DOUBLE_EQ(t[3], 2.0);
  double one[1];
  log_spaced_taus(3.0, 9.0, 1, one);
  EXPECT_DOUBLE_EQ(one[0], 3.0);
  EXPECT_THROW(log_spaced_taus(0.0, 1.0, 2, t), std::invalid_argument);
  EXPECT_THROW(log_spaced_taus(2.0, 1.0, 2, t), std::invalid_argument);
}

TEST(Kairos, FirstSampleInitialises) {
  double taus[] = {0.1, 1.0};
  KairosFilter f(taus);
  EXPECT_FALSE(f.has_sample());
  f.update({0.3, 0.7}, 5.0);
  for (std::size_t k = 0; k < 2; ++k) {
    EXPECT_DOUBLE_EQ(f.scale(k).z.real(), 0.3);
    EXPECT_DOUBLE_EQ(f.scale(k).z.imag(), 0.7);
    EXPECT_DOUBLE_EQ(f.scale(k).c, 1.0);
  }
}

TEST(Kairos, ConstantHasCoherenceOneOnEveryScale) {
  double taus[] = {0.25, 0.5, 1.0, 2.0};
  KairosFilter f(taus);
  for (int i = 0; i < 1000; ++i) f.update({0.42, 0.0}, i * 0.01);
  for (std::size_t k = 0; k < 4; ++k) {
    EXPECT_DOUBLE_EQ(f.scale(k).c, 1.0);
    EXPECT_NEAR(f.scale(k).z.real(), 0.42, 1e-12);
  }
}

TEST(Kairos, AlternatingExtremesGiveCoherenceZero) {
  double taus[] = {0.25, 0.5, 1.0, 2.0};
  KairosFilter f(taus);
  for (int i = 0; i < 2000; ++i) f.update({(i % 2) ? 1.0 : 0.0, 0.0}, i * 0.01);
  for (std::size_t k = 0; k < 4; ++k) {
    EXPECT_LT(f.scale(k).c, 0.05) << k;
    EXPECT_NEAR(f.scale(k).z.real(), 0.5, 0.05) << k;
  }
}

TEST(Kairos, StepFollowsTheExponential) {
  double taus[] = {1.0};
  KairosFilter f(taus);
  f.update({0.0, 0.0}, 0.0);
  f.update({1.0, 0.0}, 1.0);  // one tau later
  EXPECT_NEAR(f.scale(0).z.real(), 1.0 - std::exp(-1.0), 1e-12);
  EXPECT_LT(f.scale(0).c, 1.0);
}

TEST(Kairos, IrregularSamplingComposes) {
  // For a constant input, two steps of dt/2 equal one step of dt.
  double taus[] = {0.7};
  KairosFilter a(taus), b(taus);
  a.update({0.0, 0.0}, 0.0);
  b.update({0.0, 0.0}, 0.0);
  a.update({1.0, 0.5}, 0.3);
  b.update({1.0, 0.5}, 0.15);
  b.update({1.0, 0.5}, 0.3);
  EXPECT_NEAR(a.scale(0).z.real(), b.scale(0).z.real(), 1e-12);
  EXPECT_NEAR(a.scale(0).z.imag(), b.scale(0).z.imag(), 1e-12);
}

TEST(Kairos, NoiseFasterThanTheScaleLowersItsCoherence) {
  // The fast scale partly follows the noise; for the slow one it is all jumps.
  double taus[] = {0.05, 5.0};
  KairosFilter f(taus);
  std::uint32_t x = 12345;
  for (int i = 0; i < 5000; ++i) {
    x = x * 1664525u + 1013904223u;
    f.update({0.5 + 0.1 * ((x >> 8) / 16777216.0 - 0.5), 0.0}, i * 0.01);
  }
  EXPECT_GT(f.scale(0).c, f.scale(1).c);
  EXPECT_LT(f.scale(1).c, 1.0);
}

TEST(Kairos, Normalise) {
  EXPECT_DOUBLE_EQ(normalise(15, 10, 20), 0.5);
  EXPECT_DOUBLE_EQ(normalise(-5, 10, 20), 0.0);
  EXPECT_DOUBLE_EQ(normalise(50, 10, 20), 1.0);
  EXPECT_DOUBLE_EQ(normalise(1, 1, 1), 0.0);
}

namespace {

// docs/DESIGN.md 3.4's examples: scales 0.25, 0.5, 1, 2 s, samples at 100 Hz.
struct Run {
  KairosFilter f;
  std::vector<std::pair<std::size_t, bool>> events;  // (scale, collapsed)
};

template <class Signal>
Run run_signal(Signal signal, double seconds) {
  double taus[] = {0.25, 0.5, 1.0, 2.0};
  Run r{KairosFilter(taus), {}};
  for (int i = 0; i < static_cast<int>(seconds * 100); ++i) {
    double t = i * 0.01;
    auto changed = r.f.update({signal(t), 0.0}, t);
    for (std::size_t k = 0; k < 4; ++k)
      if (changed & (1u << k)) r.events.push_back({k, r.f.rhythm(k).collapsed()});
  }
  return r;
}

constexpr double kPi = 3.14159265358979323846;

}  // namespace

TEST(Rhythm, SineOfPeriodOneCollapsesTheOneAndTwoSecondScales) {
  auto r = run_signal([](double t) { return 0.5 + 0.4 * std::sin(2 * kPi * t); }, 30);
  EXPECT_FALSE(r.f.rhythm(0).collapsed()) << r.f.rhythm(0).r();
  EXPECT_FALSE(r.f.rhythm(1).collapsed()) << r.f.rhythm(1).r();
  EXPECT_TRUE(r.f.rhythm(2).collapsed()) << r.f.rhythm(2).r();
  EXPECT_TRUE(r.f.rhythm(3).collapsed()) << r.f.rhythm(3).r();
  EXPECT_GT(r.f.rhythm(2).r(), 0.9);
  for (const auto& e : r.events) EXPECT_GE(e.first, 2u) << "no passing collapse on a faster scale";
}

TEST(Rhythm, SquareOfPeriodOneCollapsesTheSameScales) {
  auto r = run_signal([](double t) { return std::fmod(t, 1.0) < 0.5 ? 0.9 : 0.1; }, 30);
  EXPECT_FALSE(r.f.rhythm(0).collapsed());
  EXPECT_FALSE(r.f.rhythm(1).collapsed());
  EXPECT_TRUE(r.f.rhythm(2).collapsed());
  EXPECT_TRUE(r.f.rhythm(3).collapsed());
}

TEST(Rhythm, SineOfPeriodTauCollapsesScaleK) {
  for (std::size_t k = 0; k < 4; ++k) {
    double period = 0.25 * std::pow(2.0, static_cast<double>(k));
    auto r = run_signal([&](double t) { return 0.5 + 0.4 * std::sin(2 * kPi * t / period); }, 40);
    EXPECT_TRUE(r.f.rhythm(k).collapsed()) << "period " << period << " R " << r.f.rhythm(k).r();
  }
}

TEST(Rhythm, NoiseAndConstantCollapseNothing) {
  std::uint32_t x = 99;
  auto noise = run_signal([&](double) {
    x = x * 1664525u + 1013904223u;
    return (x >> 8) / 16777216.0;
  }, 60);
  auto flat = run_signal([](double) { return 0.3; }, 30);
  for (std::size_t k = 0; k < 4; ++k) {
    EXPECT_FALSE(noise.f.rhythm(k).collapsed()) << k << " R " << noise.f.rhythm(k).r();
    EXPECT_TRUE(noise.events.empty());
    EXPECT_FALSE(flat.f.rhythm(k).collapsed());
    EXPECT_DOUBLE_EQ(flat.f.rhythm(k).r(), 0.0);
    EXPECT_DOUBLE_EQ(flat.f.scale(k).c, 1.0);
  }
}

TEST(Rhythm, CollapseAndReleaseAreReportedOnce) {
  // A 1 s sine for 20 s, then a constant: scale 2 (1 s) collapses once and
  // releases once.
  auto r = run_signal([](double t) { return t < 20 ? 0.5 + 0.4 * std::sin(2 * kPi * t) : 0.5; }, 60);
  std::vector<std::pair<std::size_t, bool>> on_scale2;
  for (const auto& e : r.events)
    if (e.first == 2) on_scale2.push_back(e);
  ASSERT_EQ(on_scale2.size(), 2u);
  EXPECT_TRUE(on_scale2[0].second);
  EXPECT_FALSE(on_scale2[1].second);
}

TEST(Rhythm, IrregularSamplingStillFindsTheRhythm) {
  double taus[] = {1.0};
  KairosFilter f(taus);
  double t = 0;
  std::uint32_t x = 7;
  while (t < 40) {
    f.update({0.5 + 0.4 * std::sin(2 * kPi * t), 0.0}, t);
    x = x * 1664525u + 1013904223u;
    t += 0.005 + 0.02 * ((x >> 8) / 16777216.0);  // 5..25 ms apart
  }
  EXPECT_TRUE(f.rhythm(0).collapsed()) << f.rhythm(0).r();
}

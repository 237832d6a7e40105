#include <gtest/gtest.h>

#include <cmath>

#include "firmware/drivers/synthetic.h"

using namespace kairos::node;

namespace {
SyntheticConfig wave(const char* form, double period = 1.0) {
  SyntheticConfig c;
  c.waveform = form;
  c.period_s = period;
  c.amplitude = 0.5;
  c.offset = 0.5;
  return c;
}
}  // namespace

TEST(Synthetic, SineStartsAtOffsetAndPeaksAtAQuarter) {
  SyntheticInput in(wave("sine"));
  ASSERT_TRUE(in.setup());
  EXPECT_NEAR(in.read(5'000'000).reading.x, 0.5, 1e-12);  // time counts from the first read
  EXPECT_NEAR(in.read(5'250'000).reading.x, 1.0, 1e-12);
  EXPECT_NEAR(in.read(5'750'000).reading.x, 0.0, 1e-12);
  EXPECT_DOUBLE_EQ(in.read(5'750'000).reading.b, 0.0);
}

TEST(Synthetic, SquareAndTriangle) {
  SyntheticInput sq(wave("square", 2.0));
  EXPECT_DOUBLE_EQ(sq.read(0).reading.x, 1.0);
  EXPECT_DOUBLE_EQ(sq.read(999'999).reading.x, 1.0);
  EXPECT_DOUBLE_EQ(sq.read(1'000'000).reading.x, 0.0);
  SyntheticInput tri(wave("triangle"));
  EXPECT_NEAR(tri.read(0).reading.x, 0.0, 1e-12);
  EXPECT_NEAR(tri.read(250'000).reading.x, 0.5, 1e-12);
  EXPECT_NEAR(tri.read(500'000).reading.x, 1.0, 1e-12);
}

TEST(Synthetic, NoiseIsDeterministicPerSeedAndBounded) {
  auto c = wave("noise");
  SyntheticInput a(c), b(c);
  c.seed = 2;
  SyntheticInput other(c);
  bool differs = false;
  for (int i = 0; i < 1000; ++i) {
    double x = a.read(i * 10'000).reading.x;
    EXPECT_DOUBLE_EQ(x, b.read(i * 10'000).reading.x);
    EXPECT_GE(x, 0.0);
    EXPECT_LE(x, 1.0);
    if (x != other.read(i * 10'000).reading.x) differs = true;
  }
  EXPECT_TRUE(differs);
}

TEST(Synthetic, ConstantPlusNoise) {
  auto c = wave("constant");
  c.offset = 0.3;
  SyntheticInput flat(c);
  EXPECT_DOUBLE_EQ(flat.read(0).reading.x, 0.3);
  EXPECT_DOUBLE_EQ(flat.read(123'456).reading.x, 0.3);
  c.noise = 0.01;
  SyntheticInput noisy(c);
  double x = noisy.read(0).reading.x;
  EXPECT_NEAR(x, 0.3, 0.01);
  EXPECT_NE(x, 0.3);
}

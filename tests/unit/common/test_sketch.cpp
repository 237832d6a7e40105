// A node's one-way delay distribution in constant memory (common/core/sketch).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "common/core/sketch.h"

using namespace kairos;

TEST(DelaySketch, EmptyIsZeroAndOneSampleIsItsBucketsEdge) {
  DelaySketch s;
  EXPECT_EQ(s.quantile(0.999), 0);
  s.add(1000);  // 1 ms: bucket edge at most 10 % above
  EXPECT_GE(s.quantile(0.5), 1000);
  EXPECT_LE(s.quantile(0.5), 1100);
  DelaySketch low;
  low.add(-50);  // an offset estimate off: counted in the first bucket
  EXPECT_EQ(low.quantile(1.0), DelaySketch::kFirstUs);
  DelaySketch huge;
  huge.add(1e12);  // beyond the last edge: in the last bucket
  EXPECT_GT(huge.quantile(0.5), 1.5e7);
}

// Quantiles of a heavy-tailed sample read back within the buckets' 10 %,
// against the exact quantiles of the same sample.
TEST(DelaySketch, ReadsTheQuantilesOfAHeavyTailWithinTenPercent) {
  std::mt19937_64 rng(5);
  std::lognormal_distribution<double> body(std::log(20'000.0), 1.0);  // median 20 ms
  DelaySketch s;
  std::vector<double> all;
  for (int i = 0; i < 4000; ++i) {  // under the halving limit
    const double us = body(rng);
    s.add(us);
    all.push_back(us);
  }
  std::sort(all.begin(), all.end());
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    const double exact = all[static_cast<std::size_t>(std::ceil(q * static_cast<double>(all.size()))) - 1];
    EXPECT_GE(s.quantile(q), exact) << q;  // never under: a lead from it covers the sample
    EXPECT_LE(s.quantile(q), exact * 1.1 + 1) << q;
  }
  EXPECT_EQ(s.count(), 4000u);
}

TEST(DelaySketch, HalvingFollowsAChangedPathAndKeepsARareTail) {
  DelaySketch s;
  for (int i = 0; i < 4000; ++i) s.add(5'000);
  s.add(300'000);  // one stall
  for (int i = 0; i < 200; ++i) s.add(5'000);
  EXPECT_LT(s.count(), DelaySketch::kLimit);  // halved once
  EXPECT_GE(s.quantile(1.0), 300'000);        // the stall is still there
  // The path slows to 50 ms: after a few halvings the median follows.
  for (int i = 0; i < 3 * static_cast<int>(DelaySketch::kLimit); ++i) s.add(50'000);
  EXPECT_GE(s.quantile(0.5), 50'000);
  EXPECT_LE(s.quantile(0.5), 55'000);
}

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "common/core/meshsync.h"

using namespace kairos;

TEST(MeshSync, IdenticalNodesAgreeFully) {
  std::vector<NodePhase> n(3, NodePhase{{0.4, 0.2}, 0.9, 1.0});
  auto f = mesh_figures(n);
  EXPECT_NEAR(f.z.real(), 0.4, 1e-12);
  EXPECT_NEAR(f.z.imag(), 0.2, 1e-12);
  EXPECT_NEAR(f.coherence, 0.9, 1e-12);
  EXPECT_DOUBLE_EQ(f.agreement, 1.0);
  EXPECT_EQ(f.contributors, 3u);
}

TEST(MeshSync, OppositeNodesDisagree) {
  std::vector<NodePhase> n{{{0.0, 0.0}, 1.0, 1.0}, {{1.0, 0.0}, 0.5, 1.0}};
  auto f = mesh_figures(n);
  EXPECT_NEAR(f.z.real(), 0.5, 1e-12);
  EXPECT_NEAR(f.coherence, 0.75, 1e-12);
  EXPECT_NEAR(f.agreement, 0.0, 1e-12);  // rms distance 0.5 -> 1 - 2*0.5
}

TEST(MeshSync, WeightsShiftTheMean) {
  std::vector<NodePhase> n{{{0.0, 0.0}, 0.0, 3.0}, {{1.0, 0.0}, 1.0, 1.0}, {{9.0, 9.0}, 1.0, 0.0}};
  auto f = mesh_figures(n);
  EXPECT_NEAR(f.z.real(), 0.25, 1e-12);
  EXPECT_NEAR(f.coherence, 0.25, 1e-12);
  EXPECT_EQ(f.contributors, 2u);  // zero weight does not count
  double rms = std::sqrt((3 * 0.25 * 0.25 + 0.75 * 0.75) / 4);
  EXPECT_NEAR(f.agreement, 1 - 2 * rms, 1e-12);
}

TEST(MeshSync, NoWeightNoFigures) {
  std::vector<NodePhase> none;
  auto f = mesh_figures(none);
  EXPECT_EQ(f.contributors, 0u);
  EXPECT_DOUBLE_EQ(f.coherence, 0.0);
}

TEST(MeshSync, WeightDecaysWithAge) {
  EXPECT_DOUBLE_EQ(sync_weight(2.0, 0.0, 15.0), 2.0);
  EXPECT_NEAR(sync_weight(1.0, 15.0, 15.0), std::exp(-1.0), 1e-12);
  EXPECT_DOUBLE_EQ(sync_weight(1.0, -5.0, 15.0), 1.0);  // future stamps count as fresh
  EXPECT_DOUBLE_EQ(sync_weight(0.0, 0.0, 15.0), 0.0);
}

TEST(MeshSync, UnifiedHysteresis) {
  Hysteresis h(0.75, 0.70);
  EXPECT_FALSE(h.update(0.74));
  EXPECT_FALSE(h.on());
  EXPECT_TRUE(h.update(0.75));
  EXPECT_TRUE(h.on());
  EXPECT_FALSE(h.update(0.71));  // between thresholds: stays on
  EXPECT_TRUE(h.on());
  EXPECT_TRUE(h.update(0.69));
  EXPECT_FALSE(h.on());
  EXPECT_FALSE(h.update(0.72));  // between thresholds: stays off
  EXPECT_FALSE(h.on());
}

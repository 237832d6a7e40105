#include <gtest/gtest.h>

#include "gateway/registry.h"

using namespace kairos;
using namespace kairos::gw;

namespace {

kairos_v1_NodeBirth birth(std::uint32_t hb_ms, kairos_v1_DeviceClass cls = kairos_v1_DeviceClass_CLASS_A) {
  kairos_v1_NodeBirth b = kairos_v1_NodeBirth_init_zero;
  std::snprintf(b.cluster, sizeof b.cluster, "c1");
  std::snprintf(b.board, sizeof b.board, "pi-4-b");
  b.device_class = cls;
  b.heartbeat_period_ms = hb_ms;
  std::snprintf(b.capabilities[0], sizeof b.capabilities[0], "audio");
  std::snprintf(b.capabilities[1], sizeof b.capabilities[1], "gpio");
  b.capabilities_count = 2;
  return b;
}

kairos_v1_PhaseReport phase(float re, float c) {
  kairos_v1_PhaseReport p = kairos_v1_PhaseReport_init_zero;
  p.valid = true;
  p.has_node_z = true;
  p.node_z.re = re;
  p.node_c = c;
  return p;
}

constexpr std::int64_t kSec = 1'000'000;

}  // namespace

TEST(Registry, BirthRegistersOnline) {
  Registry r;
  auto& n = r.on_birth("n1", "c1", 5, birth(1000), 10 * kSec, 5 * kSec);
  EXPECT_TRUE(n.online);
  EXPECT_EQ(n.status, kairos_v1_NodeStatus_COMPLIANT);
  EXPECT_EQ(n.capabilities, "audio,gpio");
  EXPECT_EQ(n.hb_period_us, 1 * kSec);
  EXPECT_EQ(r.online_count(), 1u);
  // no period in the birth: the gateway default
  EXPECT_EQ(r.on_birth("n2", "c1", 6, birth(0), 10 * kSec, 5 * kSec).hb_period_us, 5 * kSec);
}

TEST(Registry, ThreeMissedHeartbeatsExpire) {
  Registry r;
  r.on_birth("n1", "c1", 5, birth(1000), 0, 5 * kSec);
  kairos_v1_Heartbeat hb = kairos_v1_Heartbeat_init_zero;
  hb.status = kairos_v1_NodeStatus_VARIANCE_WARNING;
  r.on_heartbeat("n1", hb, 2 * kSec);
  EXPECT_EQ(r.find("n1")->status, kairos_v1_NodeStatus_VARIANCE_WARNING);
  EXPECT_TRUE(r.expire(5 * kSec, 3).empty());  // exactly 3 periods: still online
  auto gone = r.expire(5 * kSec + 1, 3);
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0], "n1");
  EXPECT_EQ(r.find("n1")->status, kairos_v1_NodeStatus_OFFLINE);
  EXPECT_TRUE(r.expire(100 * kSec, 3).empty());  // reported once
  r.on_heartbeat("n1", hb, 101 * kSec);
  EXPECT_TRUE(r.find("n1")->online);
}

TEST(Registry, GraceRestartsLiveness) {
  Registry r;
  r.on_birth("n1", "c1", 5, birth(1000), 0, 5 * kSec);
  r.grace(10 * kSec);
  EXPECT_TRUE(r.expire(12 * kSec, 3).empty());
  EXPECT_EQ(r.expire(14 * kSec, 3).size(), 1u);
}

TEST(Registry, StateOfflineAndBack) {
  Registry r;
  r.on_birth("n1", "c1", 5, birth(1000), 0, 5 * kSec);
  r.on_phase("n1", phase(0.5f, 1.0f), 1);
  EXPECT_TRUE(r.on_state("n1", false, 2));
  EXPECT_FALSE(r.find("n1")->phase_valid);
  EXPECT_FALSE(r.on_state("n1", false, 3));
  EXPECT_TRUE(r.on_state("n1", true, 4));
  EXPECT_FALSE(r.on_state("nobody", true, 4));
}

TEST(Registry, SyncInputsWeighByClassAndAge) {
  Registry r;
  r.on_birth("a", "c1", 1, birth(1000, kairos_v1_DeviceClass_CLASS_A), 0, kSec);
  r.on_birth("f", "c1", 2, birth(1000, kairos_v1_DeviceClass_CLASS_F), 0, kSec);
  r.on_birth("x", "c1", 3, birth(1000), 0, kSec);
  r.on_phase("a", phase(0.2f, 1.0f), 10 * kSec);
  r.on_phase("f", phase(0.8f, 0.5f), 10 * kSec);
  // "x" never reported a phase: it does not count
  std::array<double, 6> w{2, 1, 1, 1, 1, 0.5};
  auto in = r.sync_inputs(10 * kSec, 15.0, w);
  ASSERT_EQ(in.size(), 2u);
  EXPECT_DOUBLE_EQ(in[0].weight, 2.0);
  EXPECT_DOUBLE_EQ(in[1].weight, 0.5);
  auto later = r.sync_inputs(25 * kSec, 15.0, w);
  EXPECT_NEAR(later[0].weight, 2.0 * std::exp(-1.0), 1e-12);
  r.on_state("a", false, 26 * kSec);
  EXPECT_EQ(r.sync_inputs(26 * kSec, 15.0, w).size(), 1u);
}

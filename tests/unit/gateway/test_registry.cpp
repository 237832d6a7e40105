#include <gtest/gtest.h>

#include "gateway/registry/registry.h"

#include <cmath>
#include <random>
#include <set>

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
  EXPECT_TRUE(r.expire(5 * kSec).empty());  // exactly 3 periods: still online
  auto gone = r.expire(5 * kSec + 1);
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_EQ(gone[0], "n1");
  EXPECT_EQ(r.find("n1")->status, kairos_v1_NodeStatus_OFFLINE);
  EXPECT_TRUE(r.expire(100 * kSec).empty());  // reported once
  r.on_heartbeat("n1", hb, 101 * kSec);
  EXPECT_TRUE(r.find("n1")->online);
}

TEST(Registry, GraceRestartsLiveness) {
  Registry r;
  r.on_birth("n1", "c1", 5, birth(1000), 0, 5 * kSec);
  r.grace(10 * kSec);
  EXPECT_TRUE(r.expire(12 * kSec).empty());
  EXPECT_EQ(r.expire(14 * kSec).size(), 1u);
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
  std::array<double, 6> w{2, 1, 1, 1, 1, 0.5};
  Registry r(RegistrySettings{3, 15.0, w});
  r.on_birth("a", "c1", 1, birth(1000, kairos_v1_DeviceClass_CLASS_A), 0, kSec);
  r.on_birth("f", "c1", 2, birth(1000, kairos_v1_DeviceClass_CLASS_F), 0, kSec);
  r.on_birth("x", "c1", 3, birth(1000), 0, kSec);
  r.on_phase("a", phase(0.2f, 1.0f), 10 * kSec);
  r.on_phase("f", phase(0.8f, 0.5f), 10 * kSec);
  // "x" never reported a phase: it does not count
  auto in = r.sync_inputs(10 * kSec);
  ASSERT_EQ(in.size(), 2u);
  EXPECT_DOUBLE_EQ(in[0].weight, 2.0);
  EXPECT_DOUBLE_EQ(in[1].weight, 0.5);
  auto later = r.sync_inputs(25 * kSec);
  EXPECT_NEAR(later[0].weight, 2.0 * std::exp(-1.0), 1e-12);
  r.on_state("a", false, 26 * kSec);
  EXPECT_EQ(r.sync_inputs(26 * kSec).size(), 1u);
}

TEST(Registry, TheOnlineCountFollowsEveryChange) {
  Registry r;
  r.on_birth("a", "c1", 1, birth(1000), 0, kSec);
  r.on_birth("b", "c1", 2, birth(1000), 0, kSec);
  r.on_birth("a", "c1", 3, birth(1000), kSec, kSec);  // a new session of an online node
  EXPECT_EQ(r.online_count(), 2u);
  r.on_state("a", false, 2 * kSec);
  EXPECT_EQ(r.online_count(), 1u);
  kairos_v1_Heartbeat hb = kairos_v1_Heartbeat_init_zero;
  hb.status = kairos_v1_NodeStatus_COMPLIANT;
  r.on_heartbeat("a", hb, 2 * kSec);
  EXPECT_EQ(r.online_count(), 2u);
  EXPECT_EQ(r.expire(10 * kSec).size(), 2u);
  EXPECT_EQ(r.online_count(), 0u);
  NodeEntry restored;
  restored.id = "c";
  restored.online = true;
  restored.last_hb_us = 10 * kSec;
  r.restore(restored);
  EXPECT_EQ(r.online_count(), 1u);
}

TEST(Registry, AShorterPeriodFromANewBirthExpiresOnTheNewPeriod) {
  Registry r;
  r.on_birth("n1", "c1", 1, birth(10'000), 0, kSec);  // due at 30 s
  r.on_birth("n1", "c1", 2, birth(1000), 0, kSec);    // now due at 3 s
  EXPECT_TRUE(r.expire(3 * kSec).empty());
  EXPECT_EQ(r.expire(3 * kSec + 1).size(), 1u);
}

TEST(Registry, AHeartbeatingNodeStaysOnlineThroughManyExpiries) {
  Registry r;
  r.on_birth("n1", "c1", 1, birth(1000), 0, kSec);
  r.on_birth("quiet", "c1", 2, birth(1000), 0, kSec);
  kairos_v1_Heartbeat hb = kairos_v1_Heartbeat_init_zero;
  hb.status = kairos_v1_NodeStatus_COMPLIANT;
  std::vector<std::string> gone;
  for (std::int64_t t = kSec; t <= 60 * kSec; t += kSec) {
    r.on_heartbeat("n1", hb, t);
    for (auto& id : r.expire(t + kSec / 2)) gone.push_back(id);
  }
  EXPECT_EQ(gone, std::vector<std::string>{"quiet"});
  EXPECT_TRUE(r.find("n1")->online);
}

TEST(Registry, PingsComeDueByTheirOwnTimeAndSkipQuarantinedNodesUntilHealed) {
  Registry r;
  auto& a = r.on_birth("a", "c1", 1, birth(1000), 0, kSec);
  auto& b = r.on_birth("b", "c1", 2, birth(1000), 0, kSec);
  // Both due at once when they come online.
  std::set<std::string> due;
  while (auto* n = r.ping_due(0)) {
    due.insert(n->id);
    r.ping_at(*n, n->id == "a" ? 10 * kSec : 2 * kSec);
  }
  EXPECT_EQ(due, (std::set<std::string>{"a", "b"}));
  EXPECT_EQ(r.ping_due(kSec), nullptr);
  auto* n = r.ping_due(2 * kSec);
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->id, "b");
  r.set_quarantined(b, true, "test");
  r.ping_at(b, 3 * kSec);
  EXPECT_EQ(r.ping_due(5 * kSec), nullptr);  // quarantined: not pinged
  r.set_quarantined(b, false, "");
  n = r.ping_due(5 * kSec);
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->id, "b");
  EXPECT_EQ(r.ping_due(9 * kSec), nullptr);
  EXPECT_EQ(r.ping_due(10 * kSec), &a);
}

// The figures kept as sums against the node-by-node computation, over a
// random history of births, phases, states, quarantines and expiries (long
// enough to move the sums' base several times).
TEST(Registry, FiguresFromSumsAreTheNodeByNodeFigures) {
  std::array<double, 6> w{2, 1.5, 1, 1, 0.5, 0};
  Registry r(RegistrySettings{3, 15.0, w});
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  kairos_v1_Heartbeat hb = kairos_v1_Heartbeat_init_zero;
  std::int64_t now = 0;
  std::size_t checks = 0;
  for (int step = 0; step < 20'000; ++step) {
    now += static_cast<std::int64_t>(unit(rng) * 80'000);
    const std::string id = "n" + std::to_string(rng() % 40);
    const double x = unit(rng);
    if (x < 0.05) {
      r.on_birth(id, "c1", rng(), birth(1000, static_cast<kairos_v1_DeviceClass>(1 + rng() % 6)), now, kSec);
    } else if (x < 0.75) {
      double angle = unit(rng) * 6.283;
      auto p = phase(static_cast<float>(std::cos(angle)), static_cast<float>(unit(rng)));
      p.node_z.im = static_cast<float>(std::sin(angle));
      r.on_phase(id, p, now);
    } else if (x < 0.85) {
      hb.status = unit(rng) < 0.1 ? kairos_v1_NodeStatus_QUARANTINED : kairos_v1_NodeStatus_COMPLIANT;
      r.on_heartbeat(id, hb, now);
    } else if (x < 0.9) {
      r.on_state(id, unit(rng) < 0.5, now);
    } else if (x < 0.95) {
      if (auto* n = r.find(id)) r.set_quarantined(*n, !n->quarantined, "test");
    } else {
      r.expire(now);
    }
    if (step % 97 == 0) {
      auto sums = r.figures(now);
      auto ref = mesh_figures(r.sync_inputs(now));
      ASSERT_EQ(sums.contributors, ref.contributors) << "step " << step;
      EXPECT_NEAR(sums.z.real(), ref.z.real(), 1e-9) << "step " << step;
      EXPECT_NEAR(sums.z.imag(), ref.z.imag(), 1e-9) << "step " << step;
      EXPECT_NEAR(sums.coherence, ref.coherence, 1e-9) << "step " << step;
      EXPECT_NEAR(sums.agreement, ref.agreement, 1e-6) << "step " << step;
      checks += ref.contributors > 0;
    }
  }
  EXPECT_GT(now, 10 * 60 * kSec);  // the base moved many times
  EXPECT_GT(checks, 100u);
}

TEST(NodeDeadlines, AnEarlierDeadlineSupersedesALaterOne) {
  struct N {
    int id = 0;
    std::int64_t slot = 0;
  };
  NodeDeadlines<N> d(&N::slot);
  N a{1}, b{2};
  d.at(a, 50);
  d.at(b, 30);
  d.at(a, 10);  // earlier: supersedes 50
  d.at(b, 40);  // later: 30 stands
  EXPECT_EQ(d.due(9), nullptr);
  EXPECT_EQ(d.due(100), &a);
  EXPECT_EQ(d.due(100), &b);
  EXPECT_EQ(d.due(100), nullptr);  // a's entry at 50 was superseded
}

TEST(Registry, ContextChangesNameOnlyTheClustersWhereSomethingChanged) {
  Registry r;
  r.on_birth("a", "c1", 1, birth(1000), 0, kSec);
  r.on_birth("b", "c2", 2, birth(1000), 0, kSec);
  EXPECT_EQ(r.take_context_changes(), (std::vector<std::string>{"c1", "c2"}));
  EXPECT_TRUE(r.take_context_changes().empty());
  kairos_v1_Heartbeat hb = kairos_v1_Heartbeat_init_zero;
  hb.status = kairos_v1_NodeStatus_COMPLIANT;
  r.on_heartbeat("a", hb, kSec);  // nothing the context check looks at
  EXPECT_TRUE(r.take_context_changes().empty());
  r.on_state("b", false, kSec);
  EXPECT_EQ(r.take_context_changes(), std::vector<std::string>{"c2"});
  auto b1 = birth(1000);
  std::snprintf(b1.cluster, sizeof b1.cluster, "c3");
  r.on_birth("a", "c3", 3, b1, 2 * kSec, kSec);  // moved: both clusters
  EXPECT_EQ(r.take_context_changes(), (std::vector<std::string>{"c1", "c3"}));
  EXPECT_TRUE(r.members("c1").empty());
  ASSERT_EQ(r.members("c3").size(), 1u);
  EXPECT_EQ(r.members("c3")[0]->id, "a");
  EXPECT_EQ(r.cluster_count(), 2u);
}

TEST(Registry, ForgetRemovesAnOfflineNodeEverywhereAndRefusesAnOnlineOne) {
  Registry r;
  r.on_birth("a", "c1", 1, birth(1000), 0, kSec);
  r.on_birth("b", "c1", 2, birth(1000), 0, kSec);
  r.on_birth("c", "c2", 3, birth(1000), 0, kSec);
  r.ping_at(*r.find("a"), 50 * kSec);
  EXPECT_FALSE(r.forget("a"));  // online
  EXPECT_FALSE(r.forget("nobody"));
  EXPECT_TRUE(r.on_state("a", false, 2));
  EXPECT_TRUE(r.on_state("c", false, 2));
  EXPECT_TRUE(r.forget("a"));
  EXPECT_TRUE(r.forget("c"));
  EXPECT_EQ(r.find("a"), nullptr);
  EXPECT_EQ(r.nodes().size(), 1u);
  EXPECT_EQ(r.online_count(), 1u);
  ASSERT_EQ(r.members("c1").size(), 1u);
  EXPECT_EQ(r.members("c1")[0]->id, "b");
  EXPECT_EQ(r.cluster_count(), 1u);  // c2 had no one else
  // Its deadlines went with it: only b's come due (an entry of a's would be freed memory).
  std::vector<std::string> due;
  for (std::int64_t t = 0; t < 100 * kSec; t += kSec)
    for (auto& id : r.expire(t)) due.push_back(id);
  EXPECT_EQ(due, std::vector<std::string>{"b"});
  while (NodeEntry* n = r.ping_due(100 * kSec)) EXPECT_EQ(n->id, "b");
  // Back with a new birth: a node like any other.
  r.on_birth("a", "c1", 4, birth(1000), 101 * kSec, kSec);
  EXPECT_EQ(r.members("c1").size(), 2u);
  EXPECT_EQ(r.online_count(), 1u);
}

TEST(Registry, IdsAreInternedIntoATableWhoseSlotsAForgottenNodeFreesAndTheListStaysInIdOrder) {
  Registry r;
  const std::string long_id = "a-node-id-longer-than-any-short-string-buffer";
  for (const std::string id : {"n3", "n1", long_id.c_str(), "n2"}) r.on_birth(id, "c1", 1, birth(1000), 0, kSec);
  // Indexes in the order first heard; each index names its entry.
  EXPECT_EQ(r.find("n3")->index, 0u);
  EXPECT_EQ(r.find("n1")->index, 1u);
  EXPECT_EQ(r.find("n2")->index, 3u);
  for (const std::string id : {"n3", "n1", long_id.c_str(), "n2"}) EXPECT_EQ(r.at(r.find(id)->index), r.find(id)) << id;
  EXPECT_EQ(r.at(4), nullptr);
  auto ids = [&] {
    std::vector<std::string> out;
    for (const auto& [id, n] : r.nodes()) {
      EXPECT_EQ(id, n.id);
      out.push_back(id);
    }
    return out;
  };
  EXPECT_EQ(ids(), (std::vector<std::string>{long_id, "n1", "n2", "n3"}));
  EXPECT_EQ(r.nodes().upper_bound("n1")->first, "n2");
  EXPECT_EQ((*r.nodes().find("n3")).second.index, 0u);
  // Forgotten: its slot is empty, then the next new node's.
  ASSERT_TRUE(r.on_state("n1", false, 2));
  ASSERT_TRUE(r.forget("n1"));
  EXPECT_EQ(r.at(1), nullptr);
  r.on_birth("n0", "c1", 1, birth(1000), 3, kSec);
  EXPECT_EQ(r.find("n0")->index, 1u);
  EXPECT_EQ(ids(), (std::vector<std::string>{long_id, "n0", "n2", "n3"}));
  // A restored entry takes the slot and id it had: its lookups still hold.
  NodeEntry saved = *r.find(long_id);
  saved.index = 99;  // whatever the database says, the table's index stands
  saved.firmware = "9.9";
  r.restore(saved);
  ASSERT_NE(r.find(long_id), nullptr);
  EXPECT_EQ(r.find(long_id)->firmware, "9.9");
  EXPECT_EQ(r.find(long_id)->index, 2u);
  EXPECT_EQ(ids(), (std::vector<std::string>{long_id, "n0", "n2", "n3"}));
  EXPECT_EQ(r.nodes().size(), 4u);
}

TEST(Registry, AQuarantineRestoredForANodeNotYetKnownHoldsWhenItIsHeard) {
  Registry r;
  r.restore_quarantine("n9", "by operator ann");
  EXPECT_EQ(r.find("n9"), nullptr);  // no entry made for it meanwhile
  auto& n = r.on_birth("n9", "c1", 5, birth(1000), 0, 5 * kSec);
  EXPECT_TRUE(n.quarantined);
  EXPECT_EQ(n.quarantine_reason, "by operator ann");
  EXPECT_EQ(n.shown_status(), kairos_v1_NodeStatus_QUARANTINED);
  // A known node: at once.
  r.on_birth("n1", "c1", 5, birth(1000), 0, 5 * kSec);
  r.restore_quarantine("n1", "breach");
  EXPECT_TRUE(r.find("n1")->quarantined);
}

TEST(Registry, TheLeadCoversTheMeasuredTailOnceThereAreSamplesEnough) {
  Registry r;
  auto& n = r.on_birth("n1", "c1", 1, birth(1000), kSec, 5 * kSec);
  // Clock samples: a 10 ms round trip, 1 ms jitter-free.
  for (std::int64_t i = 0; i < 8; ++i)
    n.clock.add({i * kSec, i * kSec + 5'000, i * kSec + 5'000, i * kSec + 10'000});
  const double before = n.impedance(10 * kSec).lead_ms;
  EXPECT_FALSE(n.delay_tail_us(0.999));
  // Frames from the node: a few slow ones among fast. Both directions count until the inbound sketch fills.
  for (int i = 0; i < 15; ++i) n.one_way.add(i == 7 ? 180'000 : 6'000);
  EXPECT_FALSE(n.delay_tail_us(0.999));
  n.inbound.add(5'000);
  ASSERT_TRUE(n.delay_tail_us(0.999));
  EXPECT_NEAR(*n.delay_tail_us(0.999), 180'000, 18'000);
  const auto imp = n.impedance(10 * kSec);
  EXPECT_NEAR(imp.lead_ms, 180 + imp.processing_est_ms + 2, 18.5);
  EXPECT_GT(imp.lead_ms, before);
  // The inbound sketch alone once it holds enough: the stall seen on the way out no longer counts.
  for (int i = 0; i < 40; ++i) n.inbound.add(5'000 + 100 * i);
  EXPECT_LT(*n.delay_tail_us(0.999), 10'000);
  // A lower quantile asks for less.
  for (int i = 0; i < 10; ++i) n.inbound.add(60'000);
  EXPECT_GT(*n.delay_tail_us(0.999), 55'000);
  EXPECT_LT(*n.delay_tail_us(0.5), 10'000);
}

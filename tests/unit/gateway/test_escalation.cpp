// Escalation and the outbox (docs/DESIGN.md 5.6, 5.7) without a broker, on a
// real SQLite file: conflicts are throttled and on disk before their alert
// leaves, modes follow the share of active nodes and refuse what they must,
// an EMERGENCY writes a snapshot and halts automation until confirmed,
// context divergence and duplicate identities are caught, and a database
// that cannot be written holds back the answers that wait for it.
#include <gtest/gtest.h>

#include <stdexcept>

#include "common/core/frame.h"
#include "gateway/escalation/escalation.h"
#include "tests/unit/scratch.h"
#include "tests/unit/gateway/births.h"

using namespace kairos;
using namespace kairos::gw;

namespace {

constexpr std::int64_t kSec = 1'000'000;

// A birth whose context hash is 32 bytes of hash.
kairos_v1_NodeBirth with_config(const std::string& cluster, std::uint8_t hash) {
  return test::birth(cluster, "", kairos_v1_DeviceClass_CLASS_UNSPECIFIED, hash);
}

class EscalationTest : public ::testing::Test {
 protected:
  EscalationTest() {
    config_.mesh = "m";
    config_.sectors = {{"s1", {"c1", "c2"}}};
    outbox_.set_publish([this](const std::string& topic, const Bytes& frame, bool) {
      // Whatever is published, the conflicts before it are on disk already.
      published_.push_back({topic, store_.conflict_count()});
      (void)frame;
    });
  }
  void nodes(const std::string& cluster, int n, std::uint8_t hash = 1) {
    for (int i = 0; i < n; ++i)
      registry_.on_birth(cluster + "-" + std::to_string(i), cluster, 1, with_config(cluster, hash), 0, kSec);
  }
  test::ScratchDir dir_{"escalation"};
  GatewayConfig config_;
  Store store_{dir_.file("gateway.db")};
  std::vector<std::string> failures_;
  Outbox outbox_{store_, "gateway.db", [this](const std::string& why) { failures_.push_back(why); }};
  Registry registry_;
  std::vector<std::string> snapshots_;
  Escalation escalation_{config_, registry_, outbox_,
                         {[](const std::string&, Envelope&) { return Bytes{1, 2, 3}; },
                          [this](const std::string& kind, const std::string& scope, const std::string&) {
                            snapshots_.push_back(kind + ":" + scope);
                            return std::uint64_t{7};
                          }}};
  struct Published {
    std::string topic;
    std::uint64_t conflicts_on_disk;
  };
  std::vector<Published> published_;
};

}  // namespace

TEST(Modes, FollowTheShareOfActiveNodes) {
  EXPECT_EQ(mode_for(1.0), kairos_v1_MeshMode_FULL);
  EXPECT_EQ(mode_for(0.95), kairos_v1_MeshMode_FULL);
  EXPECT_EQ(mode_for(0.949), kairos_v1_MeshMode_DEGRADED_LIGHT);
  EXPECT_EQ(mode_for(0.80), kairos_v1_MeshMode_DEGRADED_LIGHT);
  EXPECT_EQ(mode_for(0.79), kairos_v1_MeshMode_DEGRADED_MODERATE);
  EXPECT_EQ(mode_for(0.60), kairos_v1_MeshMode_DEGRADED_MODERATE);
  EXPECT_EQ(mode_for(0.59), kairos_v1_MeshMode_DEGRADED_SEVERE);
  EXPECT_EQ(mode_for(0.30), kairos_v1_MeshMode_DEGRADED_SEVERE);
  EXPECT_EQ(mode_for(0.29), kairos_v1_MeshMode_EMERGENCY);
}

TEST_F(EscalationTest, AConflictIsThrottledPerNodeAndTypeAndOnDiskBeforeItsAlert) {
  nodes("c1", 1);
  escalation_.conflict("TEMPORAL_PARADOX", 4, "c1-0", "seq regression", 1 * kSec);
  escalation_.conflict("TEMPORAL_PARADOX", 4, "c1-0", "again", 5 * kSec);        // within 10 s: dropped
  escalation_.conflict("CONTEXT_DIVERGENCE", 2, "c1-0", "other type", 5 * kSec);  // another type: kept
  escalation_.conflict("TEMPORAL_PARADOX", 4, "c1-0", "not throttled", 6 * kSec, false);
  EXPECT_EQ(store_.conflict_count(), 0u) << "nothing is written before the commit";
  EXPECT_TRUE(published_.empty()) << "nor is an alert published";
  outbox_.commit(6 * kSec);
  EXPECT_EQ(store_.conflict_count(), 3u);
  ASSERT_EQ(published_.size(), 2u);  // the two priority-4 conflicts alert
  EXPECT_EQ(published_[0].topic, alert_topic("m"));
  EXPECT_EQ(published_[0].conflicts_on_disk, 3u);
  EXPECT_EQ(escalation_.alerts(), 2u);
  escalation_.conflict("TEMPORAL_PARADOX", 4, "c1-0", "too soon", 12 * kSec);  // 6 s after the last one logged
  escalation_.conflict("TEMPORAL_PARADOX", 4, "c1-0", "later", 17 * kSec);     // 11 s after it
  outbox_.commit(17 * kSec);
  EXPECT_EQ(store_.conflict_count(), 4u);
  auto rows = store_.conflicts(10);
  EXPECT_EQ(rows.front().suggested, suggestion("TEMPORAL_PARADOX"));
}

TEST_F(EscalationTest, QuarantineIsKeptOnceAndTheRegistryRefusesTheNode) {
  nodes("c1", 1);
  escalation_.quarantine("c1-0", "HASH_MISMATCH");
  escalation_.quarantine("c1-0", "HASH_MISMATCH");  // already: nothing more
  escalation_.quarantine("nobody", "x");
  escalation_.keep_data("c1-0", "sequence regression", Bytes{9, 9});
  EXPECT_TRUE(registry_.find("c1-0")->quarantined);
  outbox_.commit(1 * kSec);
  auto q = store_.quarantined();
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(q.at("c1-0"), "HASH_MISMATCH");
}

TEST_F(EscalationTest, ModesFollowTheRegistryOnceSettledAndRefuseWhatTheyMust) {
  nodes("c1", 10);
  EXPECT_FALSE(escalation_.judge(4, 10, false)) << "not settled: nodes restored from disk look offline";
  EXPECT_EQ(escalation_.mode(), kairos_v1_MeshMode_FULL);
  EXPECT_TRUE(escalation_.judge(5, 10, true));
  EXPECT_EQ(escalation_.mode(), kairos_v1_MeshMode_DEGRADED_SEVERE);
  EXPECT_NE(escalation_.mode_refusal(true, 5, false).find("needs --confirm"), std::string::npos);
  EXPECT_EQ(escalation_.mode_refusal(true, 5, true), "");
  EXPECT_NE(escalation_.mode_refusal(false, 1001, true).find("no scatter beyond 1000"), std::string::npos);
  EXPECT_EQ(escalation_.mode_refusal(false, 1000, false), "");
  EXPECT_FALSE(escalation_.judge(5, 10, true)) << "no change, nothing said";
  EXPECT_TRUE(snapshots_.empty());
}

TEST_F(EscalationTest, AnEmergencyWritesASnapshotAlertsAndHaltsAutomationUntilConfirmed) {
  nodes("c1", 10);
  EXPECT_TRUE(escalation_.judge(2, 10, true));
  EXPECT_EQ(escalation_.mode(), kairos_v1_MeshMode_EMERGENCY);
  EXPECT_EQ(snapshots_, std::vector<std::string>{"emergency:all"});
  EXPECT_TRUE(escalation_.automation_halted());
  EXPECT_NE(escalation_.mode_refusal(false, 1, false).find("EMERGENCY"), std::string::npos);
  outbox_.commit(1 * kSec);
  ASSERT_EQ(published_.size(), 1u);
  escalation_.confirmed_in_emergency();
  EXPECT_FALSE(escalation_.automation_halted());
  // Back above 30 % and down again: the operator's word does not carry over.
  EXPECT_TRUE(escalation_.judge(5, 10, true));
  EXPECT_TRUE(escalation_.judge(1, 10, true));
  EXPECT_TRUE(escalation_.automation_halted());
  EXPECT_EQ(snapshots_.size(), 2u);
}

TEST_F(EscalationTest, InDegradedModesTargetsBehindAnOpenBreakerAreLeftOut) {
  nodes("c1", 4);
  nodes("c2", 4);
  nodes("c3", 4);
  std::vector<std::string> ids{"c1-0", "c2-0", "c3-0"};
  for (int i = 0; i < 20; ++i) escalation_.breakers().failure("c2", 1 * kSec);
  ASSERT_FALSE(escalation_.breakers().closed("c2"));
  auto all = ids;
  escalation_.healthy_only(all);
  EXPECT_EQ(all.size(), 3u) << "in FULL mode nothing is left out here";
  escalation_.judge(7, 10, true);  // DEGRADED_MODERATE
  escalation_.healthy_only(ids);
  EXPECT_EQ(ids, (std::vector<std::string>{"c1-0", "c3-0"}));
}

TEST_F(EscalationTest, ADivergentContextIsLoggedOnceForItsHash) {
  nodes("c1", 3, 1);
  registry_.on_birth("c1-odd", "c1", 1, with_config("c1", 2), 0, kSec);
  nodes("c2", 1, 1);  // three configs among three nodes: no strict majority, no one diverges
  registry_.on_birth("c2-odd", "c2", 1, with_config("c2", 2), 0, kSec);
  registry_.on_birth("c2-third", "c2", 1, with_config("c2", 3), 0, kSec);
  escalation_.check_contexts();
  escalation_.check_contexts();  // nothing changed since
  outbox_.commit(1 * kSec);
  auto rows = store_.conflicts(10);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].type, "CONTEXT_DIVERGENCE");
  EXPECT_EQ(rows[0].node, "c1-odd");
  EXPECT_EQ(rows[0].priority, 2);
  // Born again with the same divergent config: not logged again.
  registry_.on_birth("c1-odd", "c1", 2, with_config("c1", 2), 2 * kSec, kSec);
  escalation_.check_contexts();
  outbox_.commit(2 * kSec);
  EXPECT_EQ(store_.conflict_count(), 1u);
}

TEST_F(EscalationTest, FramesOfAnOlderSessionKeepComingFromALiveNodeMeanTwoDevices) {
  nodes("c1", 1);
  NodeEntry* n = registry_.find("c1-0");
  n->last_seen_us = 10 * kSec;
  escalation_.duplicate_identity("c1-0", 0x55, 10 * kSec);
  escalation_.duplicate_identity("c1-0", 0x55, 20 * kSec);
  outbox_.commit(20 * kSec);
  EXPECT_EQ(store_.conflict_count(), 0u) << "two now and then: a Will, a frame across a restart";
  escalation_.duplicate_identity("c1-0", 0x55, 30 * kSec);
  outbox_.commit(30 * kSec);
  auto rows = store_.conflicts(10);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].type, "DUPLICATE_IDENTITY");
  EXPECT_EQ(rows[0].priority, 3);
  // A node silent for more than a minute is not live: nothing said.
  n->last_seen_us = 30 * kSec;
  for (int i = 0; i < 5; ++i) escalation_.duplicate_identity("c1-0", 0x56, 100 * kSec + i);
  outbox_.commit(101 * kSec);
  EXPECT_EQ(store_.conflict_count(), 1u);
}

namespace {

// A module whose writes fail until told otherwise.
struct Flaky : Writer {
  bool fail = true;
  int pending_writes = 1;
  int written_total = 0;
  bool pending() const override { return pending_writes > 0; }
  void write(Store&) override {
    if (fail) throw std::runtime_error("disk I/O error");
  }
  void written() override {
    written_total += pending_writes;
    pending_writes = 0;
  }
};

}  // namespace

TEST_F(EscalationTest, WhileTheDatabaseFailsTheAnswersWaitAndTheWritesAreKept) {
  Flaky flaky;
  outbox_.add(flaky);
  nodes("c1", 1);
  escalation_.conflict("TEMPORAL_PARADOX", 4, "c1-0", "x", 1 * kSec);
  int answered = 0;
  outbox_.after([&] { ++answered; });
  outbox_.commit(1 * kSec);
  EXPECT_EQ(failures_, std::vector<std::string>{"disk I/O error"});
  EXPECT_EQ(outbox_.error(), "disk I/O error");
  EXPECT_EQ(answered, 0);
  EXPECT_TRUE(published_.empty());
  EXPECT_EQ(store_.conflict_count(), 0u) << "rolled back: the conflict is not half written";
  EXPECT_TRUE(outbox_.paused(5 * kSec));
  outbox_.commit(5 * kSec);  // paused: not even tried
  EXPECT_EQ(failures_.size(), 1u);
  outbox_.commit(6 * kSec + 1);  // tried again, fails again: said once
  EXPECT_EQ(failures_.size(), 1u);
  flaky.fail = false;
  outbox_.commit(12 * kSec);
  EXPECT_EQ(outbox_.error(), "");
  EXPECT_EQ(answered, 1);
  EXPECT_EQ(flaky.written_total, 1);
  EXPECT_EQ(store_.conflict_count(), 1u);
  ASSERT_EQ(published_.size(), 1u);
  EXPECT_EQ(published_[0].conflicts_on_disk, 1u);
}

// How long joining nodes wait for their clock samples (docs/DESIGN.md 5.1),
// kept on each change: SyncWaits alone, and the registry that feeds it.
#include <gtest/gtest.h>

#include "gateway/registry/registry.h"
#include "tests/unit/gateway/births.h"

using namespace kairos;
using namespace kairos::gw;

namespace {

constexpr std::int64_t kSec = 1'000'000;

// n samples of a 10 ms round trip into node's filter, one a second from t_us.
void sample(NodeEntry& node, std::size_t n, std::int64_t t_us) {
  for (std::size_t i = 0; i < n; ++i, t_us += kSec) node.clock.add({t_us, t_us + 5'000, t_us + 5'000, t_us + 10'000});
}

}  // namespace

TEST(SyncWaits, CountsEndedWaitsByTheirLengthAndListsWhoStillWaits) {
  SyncWaits w;
  int a, b, c, d;
  w.start(&a, 0);
  w.start(&b, 10 * kSec);
  w.start(&c, 20 * kSec);
  w.start(&d, 30 * kSec);
  w.start(&a, 25 * kSec);  // already waiting: its wait began at 0
  w.synced(&a, 40 * kSec + 500'000);  // 40.5 s
  w.synced(&b, 140 * kSec);           // 130 s: over the goal
  w.stop(&c);                         // went offline: not a synced wait
  w.synced(&c, 50 * kSec);            // no longer waiting: nothing
  auto v = w.view(60 * kSec);
  EXPECT_EQ(v.synced, 2u);
  EXPECT_EQ(v.within_goal, 1u);
  EXPECT_DOUBLE_EQ(v.max_s, 130.0);
  EXPECT_DOUBLE_EQ(v.p50_s, 41.0);  // the upper edge of [40, 41)
  EXPECT_DOUBLE_EQ(v.p95_s, 130.0) << "its bucket's edge is 131, but no wait was longer than 130";
  EXPECT_EQ(v.waiting, 1u);
  EXPECT_DOUBLE_EQ(v.longest_waiting_s, 30.0);
  EXPECT_TRUE(w.waiting(&d));
  EXPECT_FALSE(w.waiting(&a));
}

TEST(SyncWaits, TheRegistryStartsAWaitWhenANodeComesOnlineShortOfSamples) {
  Registry r;
  NodeEntry& n = r.on_birth("n1", "c1", 1, test::birth(), 10 * kSec, 5 * kSec);
  EXPECT_EQ(r.sync_waits(10 * kSec).waiting, 1u);
  // Samples short of 8 end nothing; the 8th ends the wait.
  sample(n, 7, 11 * kSec);
  r.clock_sampled(n, 18 * kSec);
  EXPECT_EQ(r.sync_waits(18 * kSec).waiting, 1u);
  sample(n, 1, 19 * kSec);
  r.clock_sampled(n, 19 * kSec);
  auto v = r.sync_waits(19 * kSec);
  EXPECT_EQ(v.waiting, 0u);
  EXPECT_EQ(v.synced, 1u);
  EXPECT_DOUBLE_EQ(v.max_s, 9.0);
  // Offline and back with its samples: no new wait.
  ASSERT_TRUE(r.on_state(n, false, 30 * kSec));
  ASSERT_TRUE(r.on_state(n, true, 40 * kSec));
  EXPECT_EQ(r.sync_waits(40 * kSec).waiting, 0u);
}

TEST(SyncWaits, OfflineAndQuarantinedNodesAreNotPingedSoTheyDoNotWait) {
  Registry r;
  NodeEntry& a = r.on_birth("a", "c1", 1, test::birth(), 0, 5 * kSec);
  NodeEntry& b = r.on_birth("b", "c1", 1, test::birth(), 0, 5 * kSec);
  r.on_birth("c", "c1", 1, test::birth(), 0, 5 * kSec);
  EXPECT_EQ(r.sync_waits(kSec).waiting, 3u);
  ASSERT_TRUE(r.on_state(a, false, kSec));
  r.set_quarantined(b, true, "test");
  EXPECT_EQ(r.sync_waits(2 * kSec).waiting, 1u);
  // Healed: it waits again, from its last frame.
  b.last_seen_us = 3 * kSec;
  r.set_quarantined(b, false, "");
  auto v = r.sync_waits(5 * kSec);
  EXPECT_EQ(v.waiting, 2u);
  EXPECT_DOUBLE_EQ(v.longest_waiting_s, 5.0);  // c, since its birth at 0
  // Forgotten (offline first): gone from the waits.
  ASSERT_TRUE(r.on_state(b, false, 6 * kSec));
  ASSERT_TRUE(r.forget("b"));
  EXPECT_EQ(r.sync_waits(6 * kSec).waiting, 1u);
  EXPECT_EQ(r.sync_waits(6 * kSec).synced, 0u);
}

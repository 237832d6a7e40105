// The gateway's SQLite file (docs/DESIGN.md 5.7), on a real file: what it
// keeps survives a reopen, and the rules it enforces hold.
#include <gtest/gtest.h>

#include <filesystem>
#include <unistd.h>

#include "gateway/store/store.h"

using namespace kairos;
using namespace kairos::gw;

namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("kairos-store-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path() const { return (dir_ / "gateway.db").string(); }
  std::filesystem::path dir_;
};

StoredNode node(const std::string& id, const std::string& cluster, std::uint64_t session) {
  StoredNode n;
  n.id = id;
  n.cluster = cluster;
  n.board = "pi-zero-w";
  n.device_class = 3;
  n.firmware = "0.1.0";
  n.context_hash = Bytes(32, 0xab);
  n.capabilities = "in:temperature,out:led";
  n.session = session;
  n.online = true;
  n.last_seen_wall_us = 1'700'000'000'000'000;
  return n;
}

StoredConflict conflict(const std::string& type, int priority, const std::string& node, std::int64_t at) {
  StoredConflict c;
  c.type = type;
  c.priority = priority;
  c.node = node;
  c.detail = "detail of " + type;
  c.at_wall_us = at;
  c.suggested = "what to do";
  return c;
}

}  // namespace

TEST_F(StoreTest, NodesAndSessionsSurviveAReopenAndAnUpsertReplaces) {
  {
    Store s(path());
    s.upsert_node(node("n2", "c1", 5));
    s.upsert_node(node("n1", "c1", 7));
    s.upsert_node(node("n1", "c2", 9));  // born again, elsewhere
    s.save_session({"n1", 9, 120}, 1000);
    s.save_session({"n1", 9, 150}, 1000);  // the same session, further on
  }
  Store s(path());
  auto nodes = s.load_nodes();
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_EQ(nodes[0].id, "n1");  // by id
  EXPECT_EQ(nodes[0].cluster, "c2");
  EXPECT_EQ(nodes[0].session, 9u);
  EXPECT_EQ(nodes[0].context_hash, Bytes(32, 0xab));
  EXPECT_EQ(nodes[0].capabilities, "in:temperature,out:led");
  EXPECT_EQ(nodes[1].id, "n2");
  auto sessions = s.load_sessions();
  ASSERT_EQ(sessions.size(), 1u);
  EXPECT_EQ(sessions[0].session, 9u);
  EXPECT_EQ(sessions[0].high_water, 150u);
}

TEST_F(StoreTest, TheGatewaysSessionOnlyRisesEvenWhenTheClockGoesBack) {
  std::uint64_t first, second, third;
  {
    Store s(path());
    first = s.next_gateway_session(1'000'000);
    second = s.next_gateway_session(500'000);  // the clock stepped back
  }
  Store s(path());
  third = s.next_gateway_session(0);
  EXPECT_GE(first, 1'000'000u);
  EXPECT_GT(second, first);
  EXPECT_GT(third, second);  // across a reopen too
}

TEST_F(StoreTest, ARequestIsTakenOnceUntilItsWindowIsForgotten) {
  {
    Store s(path());
    EXPECT_TRUE(s.remember_request("ctl-1", 1, 1, 100));
    EXPECT_FALSE(s.remember_request("ctl-1", 1, 1, 100));  // a replay
    EXPECT_TRUE(s.remember_request("ctl-1", 1, 2, 200));
    EXPECT_TRUE(s.remember_request("ctl-2", 1, 1, 100));  // another client, same numbers
  }
  Store s(path());
  EXPECT_FALSE(s.remember_request("ctl-1", 1, 1, 100));  // still a replay after a restart
  s.forget_requests(150);
  EXPECT_TRUE(s.remember_request("ctl-1", 1, 1, 100));  // forgotten: older than the window
  EXPECT_FALSE(s.remember_request("ctl-1", 1, 2, 200));  // not forgotten
}

TEST_F(StoreTest, EveryConflictOpensATaskResolvedOnceHighestPriorityFirst) {
  Store s(path());
  s.append_conflict(conflict("CONTEXT_DIVERGENCE", 2, "n1", 10));
  s.append_conflict(conflict("HASH_MISMATCH", 4, "n2", 20));
  s.append_conflict(conflict("TEMPORAL_PARADOX", 4, "n2", 30));
  EXPECT_EQ(s.conflict_count(), 3u);
  auto open = s.open_tasks(10);
  ASSERT_EQ(open.size(), 3u);
  EXPECT_EQ(open[0].type, "HASH_MISMATCH");  // priority 4, older first
  EXPECT_EQ(open[1].type, "TEMPORAL_PARADOX");
  EXPECT_EQ(open[2].type, "CONTEXT_DIVERGENCE");
  EXPECT_EQ(open[0].task_state, "open");
  EXPECT_TRUE(s.resolve_task(open[2].task, "pushed the config", 40, "alice"));
  EXPECT_FALSE(s.resolve_task(open[2].task, "again", 41, "bob"));  // once
  EXPECT_EQ(s.resolve_node("n2", {"HASH_MISMATCH"}, "healed", 50, "bob"), 1);
  auto left = s.open_tasks(10);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].type, "TEMPORAL_PARADOX");
  EXPECT_EQ(s.open_task_count(), 1u);
  auto all = s.conflicts(10);
  ASSERT_EQ(all.size(), 3u);  // the log keeps every conflict
  EXPECT_EQ(all[0].type, "CONTEXT_DIVERGENCE");  // oldest first
  EXPECT_EQ(all[0].resolution, "pushed the config");
  EXPECT_EQ(all[0].resolved_by, "alice");
  EXPECT_EQ(s.conflicts_since(25), 1u);
}

TEST_F(StoreTest, ANodeIsQuarantinedWhileItsNewestQuarantineRowSaysSo) {
  {
    Store s(path());
    s.append_quarantine("n1", "quarantine", "HASH_MISMATCH", {}, 10);
    s.append_quarantine("n2", "quarantine", "sequence regression", {}, 11);
    s.append_quarantine("n2", "data", "outvoted result", Bytes{1, 2, 3}, 12);  // not a change of state
    s.append_quarantine("n1", "heal", "operator heal", {}, 20, "alice");
  }
  Store s(path());
  auto q = s.quarantined();
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(q.at("n2"), "sequence regression");
}

TEST_F(StoreTest, ARolledBackTransactionLeavesNothing) {
  Store s(path());
  s.begin();
  s.upsert_node(node("n1", "c1", 1));
  s.append_conflict(conflict("HASH_MISMATCH", 4, "n1", 10));
  s.rollback();
  EXPECT_TRUE(s.load_nodes().empty());
  EXPECT_EQ(s.conflict_count(), 0u);
  s.begin();
  s.upsert_node(node("n1", "c1", 1));
  s.commit();
  EXPECT_EQ(s.load_nodes().size(), 1u);
}

// The rotate-key verb and the control RPC's own verbs at the gateway
// (docs/PROTOCOL.md, Key rotation and Control RPC; docs/DESIGN.md 5.6, 5.8)
// without a broker, on a real SQLite file and real key files: a rotation is
// refused for a node that could not confirm it, ended by the node's refusal,
// its confirmation (the first frame under the new key, seen by ingest) or
// its deadline, and its key sent again; the nodes verb pages by cursor or
// offset under its filters; resolve and heal close what escalation opened.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>

#include <sqlite3.h>

#include "common/core/keywrap.h"
#include "gateway/rpc/rotations.h"
#include "gateway/rpc/verbs.h"
#include "tests/unit/gateway/gateway_rig.h"

using namespace kairos;
using namespace kairos::gw;

using kairos::test::key_of;

namespace {

constexpr std::int64_t kSec = 1'000'000;

struct Sent {
  std::string node;
  std::uint64_t id;
  std::uint32_t ttl_ms;
  kairos_v1_Command cmd;
};

// A gateway whose commands to the nodes are recorded; n1 has its key.
class Commands : public ::testing::Test {
 protected:
  Commands() { rig_.node_key("n1", n1_.key); }
  std::uint64_t send(const NodeEntry& n, std::uint32_t ttl_ms, const std::function<void(kairos_v1_Command&)>& fill) {
    Sent s{n.id, ++next_id_, ttl_ms, kairos_v1_Command_init_zero};
    s.cmd.command_id = s.id;
    fill(s.cmd);
    sent_.push_back(s);
    return s.id;
  }
  test::Rig rig_{"rotations"};
  test::FakeNode n1_{"n1", key_of(0x11)};
  std::uint64_t next_id_ = 0;
  std::vector<Sent> sent_;
  const SendCommand send_ = [this](const NodeEntry& n, std::uint32_t ttl_ms,
                                   const std::function<void(kairos_v1_Command&)>& fill) {
    return send(n, ttl_ms, fill);
  };
};

class RotationsTest : public Commands {
 protected:
  RotationsTest() {
    rig_.on_rotated = [this](const std::string& id) { rotations_.confirmed(id); };
    rig_.feed(n1_.birth(), 1 * kSec);
  }
  void rotate(const std::string& node, std::uint64_t request_id, std::uint32_t timeout_ms = 0) {
    kairos_v1_RotateKeyRequest r = kairos_v1_RotateKeyRequest_init_zero;
    set_string(r.node, node);
    r.timeout_ms = timeout_ms;
    rotations_.verb(to_, request_id, r);
  }
  // The new key as the node unwraps it from its rekey command.
  static Key unwrapped(const Sent& s, const Key& current) {
    const auto& rk = s.cmd.action.rekey;
    auto k = unwrap_key(rekey_kek(current, s.node, rk.generation), ByteView(rk.wrapped_key.bytes, rk.wrapped_key.size));
    EXPECT_TRUE(k) << "the rekey command's key does not unwrap under the node's current key";
    return k ? *k : Key{};
  }
  static kairos_v1_Ack ack(std::uint64_t command_id, int state, const char* detail = "") {
    kairos_v1_Ack a = kairos_v1_Ack_init_zero;
    a.command_id = command_id;
    a.state = state;
    set_string(a.detail, detail);
    return a;
  }
  std::vector<kairos_v1_ControlResponse> answers_;
  std::vector<ReplyTo> answered_to_;
  Rotations rotations_{rig_.keys(), rig_.registry(),
                       {send_, [this](const ReplyTo& to, kairos_v1_ControlResponse& r) {
                          answers_.push_back(r);
                          answered_to_.push_back(to);
                        }}};
  const ReplyTo to_{ctl_resp_topic("m", "ctl-1"), {1, 2}, "ana"};
};

}  // namespace

TEST_F(RotationsTest, ARotationIsRefusedForANodeThatCouldNotConfirmIt) {
  rig_.node_key("n2", key_of(0x12));
  rig_.node_key("n3", key_of(0x13));
  test::FakeNode n2("n2", key_of(0x12));
  test::FakeNode n3("n3", key_of(0x13));
  rig_.feed(n2.birth(), 1 * kSec);
  rig_.feed(n3.birth(), 1 * kSec);
  rig_.registry().on_state("n2", false, 2 * kSec);
  rig_.feed(test::FakeNode("n3", key_of(0x99)).heartbeat(), 2 * kSec);  // a forged frame quarantines n3
  ASSERT_TRUE(rig_.registry().find("n3")->quarantined);
  struct Case {
    const char* node;
    std::uint32_t timeout_ms;
    const char* says;
  };
  const Case cases[] = {
      {"ghost", 0, "rotate-key: no node 'ghost' (kairosctl nodes lists them)"},
      {"n2", 0, "rotate-key: n2 is offline"},
      {"n3", 0, "rotate-key: n3 is quarantined and obeys only heal"},
      {"n1", 600'001, "rotate-key: the timeout is at most 600000 ms"},
  };
  for (const auto& c : cases) {
    answers_.clear();
    rotate(c.node, 5, c.timeout_ms);
    ASSERT_EQ(answers_.size(), 1u) << c.node;
    EXPECT_FALSE(answers_[0].ok);
    EXPECT_EQ(answers_[0].request_id, 5u);
    EXPECT_EQ(std::string(answers_[0].error).rfind(c.says, 0), 0u) << answers_[0].error;
  }
  EXPECT_TRUE(sent_.empty());
  EXPECT_FALSE(std::filesystem::exists(rig_.keys().path("n1", ".key.next"))) << "no key made for a refused rotation";
}

TEST_F(RotationsTest, ARefusedAckEndsTheRotationWithItsAnswer) {
  rotate("n1", 7);
  ASSERT_EQ(sent_.size(), 1u);
  const Sent rekey = sent_[0];
  EXPECT_EQ(rekey.node, "n1");
  EXPECT_EQ(rekey.cmd.which_action, kairos_v1_Command_rekey_tag);
  EXPECT_EQ(rekey.cmd.action.rekey.generation, 1u);
  EXPECT_EQ(rekey.cmd.action.rekey.wrapped_key.size, 40u);
  EXPECT_EQ(rekey.ttl_ms, 15'000u) << "the default timeout";
  EXPECT_TRUE(std::filesystem::exists(rig_.keys().path("n1", ".key.next"))) << "kept before it was sent";
  EXPECT_TRUE(answers_.empty()) << "answered when it ends";

  rotate("n1", 8);
  ASSERT_EQ(answers_.size(), 1u);
  EXPECT_NE(std::string(answers_[0].error).find("already waiting"), std::string::npos) << answers_[0].error;
  EXPECT_EQ(sent_.size(), 1u);

  EXPECT_FALSE(rotations_.on_ack("n1", ack(999, -1))) << "another command's";
  EXPECT_FALSE(rotations_.on_ack("n2", ack(rekey.id, -1))) << "another node's";
  EXPECT_TRUE(rotations_.on_ack("n1", ack(rekey.id, 1))) << "READY under the old key: not switched, it waits";
  EXPECT_EQ(answers_.size(), 1u);
  EXPECT_TRUE(rotations_.on_ack("n1", ack(rekey.id, -1, "cannot write its key")));
  ASSERT_EQ(answers_.size(), 2u);
  const auto& a = answers_[1];
  EXPECT_EQ(a.request_id, 7u);
  EXPECT_EQ(answered_to_[1].by, "ana");
  ASSERT_EQ(a.which_reply, kairos_v1_ControlResponse_rotate_key_tag);
  EXPECT_FALSE(a.reply.rotate_key.rotated);
  EXPECT_EQ(a.reply.rotate_key.generation, 0u);
  EXPECT_EQ(std::string(a.reply.rotate_key.detail), "the node refused the new key: cannot write its key");
  EXPECT_FALSE(rotations_.on_ack("n1", ack(rekey.id, -1))) << "ended: the ack is nobody's now";
  EXPECT_EQ(answers_.size(), 2u);
}

TEST_F(RotationsTest, TheNodesFirstFrameUnderTheNewKeyConfirmsIt) {
  rotate("n1", 9);
  ASSERT_EQ(sent_.size(), 1u);
  const Key old = n1_.key;
  n1_.key = unwrapped(sent_[0], old);
  rig_.feed(n1_.heartbeat(), 2 * kSec);
  EXPECT_EQ(rig_.rotated, std::vector<std::string>{"n1"});
  ASSERT_EQ(answers_.size(), 1u);
  const auto& o = answers_[0].reply.rotate_key;
  EXPECT_TRUE(answers_[0].ok);
  EXPECT_EQ(answers_[0].request_id, 9u);
  EXPECT_TRUE(o.rotated);
  EXPECT_EQ(std::string(o.node), "n1");
  EXPECT_EQ(o.generation, 1u);
  EXPECT_FALSE(o.resent);
  EXPECT_EQ(rig_.ingest().drops().total(), 0u);

  // A later frame under the old key: refused and raised, but no breach.
  test::FakeNode copy("n1", old);
  copy.seq = n1_.seq;
  rig_.feed(copy.heartbeat(), 3 * kSec);
  EXPECT_EQ(rig_.drops(DropReason::bad_mac), 1u);
  rig_.outbox().commit(3 * kSec);
  auto conflicts = rig_.store().conflicts(10);
  ASSERT_EQ(conflicts.size(), 1u);
  EXPECT_EQ(conflicts[0].type, "RETIRED_KEY");
  EXPECT_FALSE(rig_.registry().find("n1")->quarantined);
  EXPECT_EQ(answers_.size(), 1u);
}

TEST_F(RotationsTest, ARotationNotConfirmedInTimeIsAbandonedAndItsKeySentAgain) {
  rotate("n1", 10, 600'000);
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0].ttl_ms, 600'000u);
  rotations_.service(mono_us());  // ten minutes before its deadline
  EXPECT_TRUE(answers_.empty());
  rotations_.service(mono_us() + 601 * kSec);
  ASSERT_EQ(answers_.size(), 1u);
  EXPECT_EQ(answers_[0].request_id, 10u);
  EXPECT_FALSE(answers_[0].reply.rotate_key.rotated);
  EXPECT_EQ(answers_[0].reply.rotate_key.generation, 0u);
  const std::string detail = answers_[0].reply.rotate_key.detail;
  EXPECT_NE(detail.find("no confirmation within 600000 ms"), std::string::npos) << detail;
  const NodeKeys* keys = rig_.keys().find("n1", 0);
  ASSERT_TRUE(keys && keys->pending) << "the new key stays pending";
  EXPECT_EQ(keys->pending->generation, 1u);
  rotations_.service(mono_us() + 700 * kSec);
  EXPECT_EQ(answers_.size(), 1u) << "answered once";

  // Run again: the same key goes out, and the node's frame under it completes the rotation.
  rotate("n1", 11);
  ASSERT_EQ(sent_.size(), 2u);
  EXPECT_EQ(sent_[1].cmd.action.rekey.generation, 1u);
  EXPECT_TRUE(std::equal(sent_[0].cmd.action.rekey.wrapped_key.bytes, sent_[0].cmd.action.rekey.wrapped_key.bytes + 40,
                         sent_[1].cmd.action.rekey.wrapped_key.bytes));
  n1_.key = unwrapped(sent_[1], n1_.key);
  rig_.feed(n1_.heartbeat(), 2 * kSec);
  ASSERT_EQ(answers_.size(), 2u);
  EXPECT_EQ(answers_[1].request_id, 11u);
  EXPECT_TRUE(answers_[1].reply.rotate_key.rotated);
  EXPECT_TRUE(answers_[1].reply.rotate_key.resent);
  EXPECT_EQ(answers_[1].reply.rotate_key.generation, 1u);
}

namespace {

std::vector<std::string> ids(const kairos_v1_NodeList& l) {
  std::vector<std::string> out;
  for (pb_size_t i = 0; i < l.nodes_count; ++i) out.emplace_back(l.nodes[i].id);
  return out;
}

// One page of the nodes verb (a NodeList is 38 nodes: not on the stack).
std::unique_ptr<kairos_v1_NodeList> page(const Registry& registry, const kairos_v1_NodesRequest& q) {
  auto l = std::make_unique<kairos_v1_NodeList>();
  *l = kairos_v1_NodeList_init_zero;
  fill_nodes(registry, q, *l, 5 * kSec);
  return l;
}

}  // namespace

TEST(NodesVerb, PagesByCursorOrOffsetUnderItsFiltersWithTheirTotals) {
  // c1: n01, n02 (offline), n03, n04; c2: n05 (offline), n06, n07.
  Registry registry;
  for (const char* id : {"n01", "n02", "n03", "n04"}) registry.on_birth(id, "c1", 1, test::birth("c1"), 0, kSec);
  for (const char* id : {"n05", "n06", "n07"}) registry.on_birth(id, "c2", 1, test::birth("c2"), 0, kSec);
  registry.on_state("n02", false, 1 * kSec);
  registry.on_state("n05", false, 1 * kSec);
  using Ids = std::vector<std::string>;
  struct Case {
    const char* what;
    const char* cluster;
    const char* state;
    const char* after;
    const char* id;
    std::uint32_t offset, limit;
    std::uint32_t total, page_offset;
    Ids page;
  };
  const Case cases[] = {
      {"first page", "", "", "", "", 0, 3, 7, 0, {"n01", "n02", "n03"}},
      {"after a cursor", "", "", "n03", "", 0, 3, 7, 0, {"n04", "n05", "n06"}},
      {"last page", "", "", "n06", "", 0, 3, 7, 0, {"n07"}},
      {"past the end", "", "", "n07", "", 0, 3, 7, 0, {}},
      {"a cursor between ids (a node gone)", "", "", "n035", "", 0, 2, 7, 0, {"n04", "n05"}},
      {"an offset", "", "", "", "", 5, 0, 7, 5, {"n06", "n07"}},
      {"a cursor wins over an offset", "", "", "n01", "", 5, 2, 7, 0, {"n02", "n03"}},
      {"online", "", "online", "", "", 0, 0, 5, 0, {"n01", "n03", "n04", "n06", "n07"}},
      {"offline", "", "offline", "", "", 0, 0, 2, 0, {"n02", "n05"}},
      {"an offset counts matching nodes", "", "online", "", "", 2, 2, 5, 2, {"n04", "n06"}},
      {"a cluster", "c2", "", "", "", 0, 0, 3, 0, {"n05", "n06", "n07"}},
      {"a cluster, online", "c2", "online", "", "", 0, 0, 2, 0, {"n06", "n07"}},
      {"a cluster, online, after a cursor", "c1", "online", "n01", "", 0, 0, 3, 0, {"n03", "n04"}},
      {"an unknown cluster", "c9", "", "", "", 0, 0, 0, 0, {}},
      {"one node", "", "", "", "n03", 0, 0, 1, 0, {"n03"}},
      {"one node, not matching", "", "online", "", "n02", 0, 0, 0, 0, {}},
      {"an unknown node", "", "", "", "n99", 0, 0, 0, 0, {}},
  };
  for (const auto& c : cases) {
    kairos_v1_NodesRequest q = kairos_v1_NodesRequest_init_zero;
    set_string(q.cluster, c.cluster);
    set_string(q.state, c.state);
    set_string(q.after, c.after);
    set_string(q.id, c.id);
    q.offset = c.offset;
    q.limit = c.limit;
    auto l = page(registry, q);
    EXPECT_EQ(ids(*l), c.page) << c.what;
    EXPECT_EQ(l->total, c.total) << c.what;
    EXPECT_EQ(l->offset, c.page_offset) << c.what;
  }
  kairos_v1_NodesRequest q = kairos_v1_NodesRequest_init_zero;
  set_string(q.state, "offline");
  auto l = page(registry, q);
  ASSERT_EQ(l->nodes_count, 2u);
  EXPECT_EQ(l->nodes[0].status, kairos_v1_NodeStatus_OFFLINE);
  EXPECT_FALSE(l->nodes[0].online);
  EXPECT_EQ(std::string(l->nodes[1].cluster), "c2");
}

TEST(NodesVerb, APageHoldsAtMostThirtyEightNodes) {
  Registry registry;
  for (int i = 0; i < 45; ++i) {
    char id[8];
    std::snprintf(id, sizeof id, "n%02d", i);
    registry.on_birth(id, "c1", 1, test::birth("c1"), 0, kSec);
  }
  kairos_v1_NodesRequest q = kairos_v1_NodesRequest_init_zero;
  q.limit = 100;
  auto first = page(registry, q);
  EXPECT_EQ(first->nodes_count, 38u);
  EXPECT_EQ(first->total, 45u);
  set_string(q.after, first->nodes[37].id);
  auto rest = page(registry, q);
  EXPECT_EQ(ids(*rest), (std::vector<std::string>{"n38", "n39", "n40", "n41", "n42", "n43", "n44"}));
}

using VerbsTest = Commands;

TEST_F(VerbsTest, ResolveClosesAnOpenTaskOnceAndSaysWhenThereIsNone) {
  rig_.feed(n1_.birth(), 1 * kSec);
  rig_.escalation().conflict("CAPABILITY_MISMATCH", 1, "n1", "refused job:echo", 1 * kSec);
  rig_.outbox().commit(1 * kSec);
  auto tasks = rig_.store().open_tasks(10);
  ASSERT_EQ(tasks.size(), 1u);
  kairos_v1_ResolveRequest q = kairos_v1_ResolveRequest_init_zero;
  q.task = tasks[0].task + 100;
  auto resp = new_response(3);
  EXPECT_FALSE(resolve(rig_.outbox(), q, "ana", *resp));
  EXPECT_FALSE(resp->ok);
  EXPECT_EQ(std::string(resp->error),
            "no open resolution task " + std::to_string(q.task) + " (kairosctl conflicts --queue lists them)");
  EXPECT_EQ(rig_.store().open_task_count(), 1u);

  q.task = tasks[0].task;
  set_string(q.note, "handler removed");
  resp = new_response(4);
  EXPECT_TRUE(resolve(rig_.outbox(), q, "ana", *resp));
  EXPECT_TRUE(resp->ok);
  ASSERT_EQ(resp->which_reply, kairos_v1_ControlResponse_conflicts_tag);
  EXPECT_EQ(resp->reply.conflicts.open_tasks, 0u);
  EXPECT_EQ(resp->reply.conflicts.total, 1u);
  auto c = rig_.store().conflicts(10);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].task_state, "resolved");
  EXPECT_EQ(c[0].resolution, "operator: handler removed");
  EXPECT_EQ(c[0].resolved_by, "ana");
  resp = new_response(5);
  EXPECT_FALSE(resolve(rig_.outbox(), q, "bob", *resp)) << "closed already";
  EXPECT_EQ(rig_.store().conflicts(10)[0].resolved_by, "ana");
}

TEST_F(VerbsTest, HealLiftsTheQuarantineClosesItsTasksAndSendsTheHealCommand) {
  rig_.feed(n1_.birth(), 1 * kSec);
  rig_.feed(test::FakeNode("n1", key_of(0x99)).heartbeat(5), 2 * kSec);  // a forged frame: HASH_MISMATCH
  rig_.escalation().conflict("CAPABILITY_MISMATCH", 1, "n1", "refused job:echo", 2 * kSec);  // not heal's to close
  rig_.outbox().commit(2 * kSec);
  ASSERT_TRUE(rig_.registry().find("n1")->quarantined);
  ASSERT_EQ(rig_.store().open_task_count(), 2u);

  kairos_v1_HealRequest req = kairos_v1_HealRequest_init_zero;
  set_string(req.node, "n1");
  auto resp = new_response(6);
  heal(rig_.registry(), rig_.outbox(), send_, req, "ana", *resp);
  EXPECT_TRUE(resp->ok);
  ASSERT_EQ(resp->which_reply, kairos_v1_ControlResponse_heal_tag);
  const auto& h = resp->reply.heal;
  EXPECT_EQ(std::string(h.node), "n1");
  EXPECT_TRUE(h.was_quarantined);
  EXPECT_NE(std::string(h.reason).find("HASH_MISMATCH"), std::string::npos) << h.reason;
  EXPECT_TRUE(h.sent);
  EXPECT_FALSE(rig_.registry().find("n1")->quarantined);
  EXPECT_TRUE(rig_.store().quarantined().empty()) << "the heal is on disk: a restart does not quarantine it again";
  auto open = rig_.store().open_tasks(10);
  ASSERT_EQ(open.size(), 1u);
  EXPECT_EQ(open[0].type, "CAPABILITY_MISMATCH");
  for (const auto& c : rig_.store().conflicts(10)) {
    if (c.type == "HASH_MISMATCH") {
      EXPECT_EQ(c.resolved_by, "ana");
    }
  }
  ASSERT_EQ(sent_.size(), 1u);
  EXPECT_EQ(sent_[0].node, "n1");
  EXPECT_EQ(sent_[0].cmd.which_action, kairos_v1_Command_heal_tag);
  EXPECT_TRUE(sent_[0].cmd.action.heal);

  // No node by that name: said, nothing sent.
  set_string(req.node, "ghost");
  resp = new_response(7);
  heal(rig_.registry(), rig_.outbox(), send_, req, "ana", *resp);
  EXPECT_FALSE(resp->ok);
  EXPECT_EQ(std::string(resp->error), "no node 'ghost' (kairosctl nodes lists them)");
  EXPECT_EQ(sent_.size(), 1u);

  // A node whose command could not be sent (no key): healed here, and the answer says so.
  set_string(req.node, "n1");
  resp = new_response(8);
  const SendCommand no_key = [](const NodeEntry&, std::uint32_t, const std::function<void(kairos_v1_Command&)>&) {
    return std::uint64_t{0};
  };
  heal(rig_.registry(), rig_.outbox(), no_key, req, "ana", *resp);
  EXPECT_TRUE(resp->ok);
  EXPECT_FALSE(resp->reply.heal.was_quarantined);
  EXPECT_FALSE(resp->reply.heal.sent);
}

// The database refuses the heal's write (here a trigger put in by another
// connection): the heal is refused with why, nothing changes and nothing is
// sent, and the gateway goes on; once the database takes writes, it heals.
TEST_F(VerbsTest, HealThatCannotBeWrittenChangesNothing) {
  rig_.feed(n1_.birth(), 1 * kSec);
  rig_.feed(test::FakeNode("n1", key_of(0x99)).heartbeat(5), 2 * kSec);  // a forged frame: quarantined
  rig_.outbox().commit(2 * kSec);
  ASSERT_TRUE(rig_.registry().find("n1")->quarantined);
  auto exec = [&](const char* sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(rig_.config.database.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
  };
  exec("CREATE TRIGGER refuse BEFORE INSERT ON quarantine BEGIN SELECT RAISE(ABORT, 'disk full'); END;");

  kairos_v1_HealRequest req = kairos_v1_HealRequest_init_zero;
  set_string(req.node, "n1");
  auto resp = new_response(9);
  heal(rig_.registry(), rig_.outbox(), send_, req, "ana", *resp);
  EXPECT_FALSE(resp->ok);
  EXPECT_NE(std::string(resp->error).find("cannot write its database (step: disk full)"), std::string::npos) << resp->error;
  EXPECT_TRUE(rig_.registry().find("n1")->quarantined);
  EXPECT_EQ(rig_.store().quarantined().size(), 1u);
  EXPECT_TRUE(sent_.empty());
  EXPECT_EQ(rig_.storage_failures.size(), 1u);

  exec("DROP TRIGGER refuse;");
  resp = new_response(10);
  heal(rig_.registry(), rig_.outbox(), send_, req, "ana", *resp);
  EXPECT_TRUE(resp->ok) << resp->error;
  EXPECT_FALSE(rig_.registry().find("n1")->quarantined);
  EXPECT_EQ(sent_.size(), 1u);
}

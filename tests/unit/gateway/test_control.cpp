// The control RPC at the gateway (docs/DESIGN.md 5.7, 5.8; docs/PROTOCOL.md,
// Operators) without a broker, on a real SQLite file and real key files: a
// request is taken under the key of the operator its topic names and handed
// to its verb as that operator; a replay, one stamped too far from now, one
// answered elsewhere than its client's topic, or one of a revoked operator
// is refused, the replay also after a restart; and while the database cannot
// be written only the verbs that read are run.
#include <gtest/gtest.h>

#include <algorithm>

#include "gateway/rpc/operator_store.h"
#include "tests/unit/gateway/gateway_rig.h"

using namespace kairos;
using namespace kairos::gw;

using kairos::test::key_of;

namespace {

constexpr std::int64_t kSec = 1'000'000;

void status(kairos_v1_ControlRequest& r) { r.which_verb = kairos_v1_ControlRequest_status_tag; }

void heal_n1(kairos_v1_ControlRequest& r) {
  r.which_verb = kairos_v1_ControlRequest_heal_tag;
  set_string(r.verb.heal.node, "n1");
}

void operators(kairos_v1_ControlRequest& r, kairos_v1_OperatorsAction action, const char* name) {
  r.which_verb = kairos_v1_ControlRequest_operators_tag;
  r.verb.operators.action = action;
  set_string(r.verb.operators.name, name);
  r.verb.operators.confirm = true;
}

class ControlTest : public ::testing::Test {
 protected:
  ControlTest() {
    rig_.operator_key("ana", ana_.key);
    rig_.operator_key("bob", bob_.key);
    verbs();
  }
  // The gateway's table for two of its verbs: status only reads, heal changes something.
  void verbs() {
    rig_.control().on(kairos_v1_ControlRequest_status_tag, [this](const Control::Request& r) {
      ran_.push_back({"status", r.to, r.req.request_id, rig_.prepared});
    }, true);
    rig_.control().on(kairos_v1_ControlRequest_heal_tag, [this](const Control::Request& r) {
      ran_.push_back({"heal", r.to, r.req.request_id, rig_.prepared});
    });
  }
  void take(const Inbound& m, std::int64_t now_us) { rig_.control().request(m, now_us); }
  std::uint64_t requests_of(const std::string& name) {
    auto ops = load_operators(rig_.store());
    auto it = std::find_if(ops.begin(), ops.end(), [&](const OperatorRecord& o) { return o.name == name; });
    return it == ops.end() ? 0 : it->requests;
  }
  struct Ran {
    std::string verb;
    ReplyTo to;
    std::uint64_t request_id;
    int prepared;  // the prepare port's calls so far
  };
  test::Rig rig_{"control"};
  test::FakeConsole ana_{"ana", key_of(0x0a), "ctl-1"};
  test::FakeConsole bob_{"bob", key_of(0x0b), "ctl-2"};
  std::vector<Ran> ran_;
};

}  // namespace

TEST_F(ControlTest, AnOperatorsRequestReachesItsVerbAsThatOperator) {
  const Inbound m = ana_.request(status);
  take(m, 1 * kSec);
  ASSERT_EQ(ran_.size(), 1u);
  EXPECT_EQ(ran_[0].verb, "status");
  EXPECT_EQ(ran_[0].to.by, "ana");
  EXPECT_EQ(ran_[0].to.topic, ctl_resp_topic("m", "ctl-1"));
  EXPECT_EQ(ran_[0].to.correlation, m.correlation);
  EXPECT_EQ(ran_[0].request_id, 1u);
  EXPECT_EQ(ran_[0].prepared, 1) << "the mesh is brought up to date before the verb runs";
  EXPECT_EQ(rig_.ingest().accepted(), 1u);
  EXPECT_EQ(requests_of("ana"), 1u) << "counted in the operator's record, on disk";
  EXPECT_TRUE(operator_actions(rig_.store(), "", 0, 10).empty()) << "a read leaves no audit line";

  take(ana_.request(heal_n1), 2 * kSec);
  ASSERT_EQ(ran_.size(), 2u);
  EXPECT_EQ(ran_[1].verb, "heal");
  auto audit = operator_actions(rig_.store(), "", 0, 10);
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0].name, "ana");
  EXPECT_EQ(audit[0].verb, "heal");
  EXPECT_EQ(audit[0].detail, "n1");

  // The shared operator.key on the legacy _ctl/req speaks as "operator".
  test::FakeConsole shared("operator", rig_.shared, "ctl-3");
  take(shared.request(status), 3 * kSec);
  ASSERT_EQ(ran_.size(), 3u);
  EXPECT_EQ(ran_[2].to.by, "operator");

  // Ana's key on bob's topic fails its MAC; a name without a key file is nobody.
  test::FakeConsole impostor("bob", ana_.key, "ctl-4");
  take(impostor.request(status), 4 * kSec);
  EXPECT_EQ(rig_.drops(DropReason::bad_mac), 1u);
  test::FakeConsole carol("carol", key_of(0x0c), "ctl-5");
  take(carol.request(status), 5 * kSec);
  EXPECT_EQ(rig_.drops(DropReason::unknown_sender), 1u);
  EXPECT_EQ(ran_.size(), 3u);
  EXPECT_TRUE(rig_.answers.empty()) << "the verbs answer, and nobody else does";
}

TEST_F(ControlTest, ARequestRunsOnceEvenAcrossARestart) {
  const Inbound m = ana_.request(heal_n1);
  take(m, 1 * kSec);
  ASSERT_EQ(ran_.size(), 1u);
  take(m, 2 * kSec);
  EXPECT_EQ(rig_.drops(DropReason::replay), 1u);
  EXPECT_EQ(ran_.size(), 1u);

  rig_.restart();  // a new Control over the same database file
  verbs();
  take(m, 3 * kSec);
  EXPECT_EQ(rig_.drops(DropReason::replay), 1u) << "remembered on disk, not in memory";
  EXPECT_EQ(ran_.size(), 1u);
  take(ana_.request(heal_n1), 4 * kSec);  // the client's next request
  ASSERT_EQ(ran_.size(), 2u);
  EXPECT_EQ(ran_[1].to.by, "ana");
}

TEST_F(ControlTest, ARequestStampedTooFarFromNowIsRefused) {
  // ctl_max_age_s is 60: either way.
  take(ana_.request(status, wall_us() - 61 * kSec), 1 * kSec);
  take(ana_.request(status, wall_us() + 61 * kSec), 2 * kSec);
  EXPECT_EQ(rig_.drops(DropReason::replay), 2u);
  EXPECT_TRUE(ran_.empty());
  EXPECT_TRUE(rig_.answers.empty());
  take(ana_.request(status, wall_us() - 30 * kSec), 3 * kSec);  // 30 s of room for a slow machine
  EXPECT_EQ(ran_.size(), 1u);
}

TEST_F(ControlTest, AnAnswerGoesOnlyToTheClientsOwnTopicAndAClientSpeaksForOneOperator) {
  Inbound m = ana_.request(status);
  m.response_topic = ctl_resp_topic("m", "ctl-9");  // someone else's
  take(m, 1 * kSec);
  EXPECT_EQ(rig_.drops(DropReason::sender_mismatch), 1u);
  EXPECT_TRUE(ran_.empty());
  take(ana_.request(status), 2 * kSec);
  ASSERT_EQ(ran_.size(), 1u);
  // Bob, with his own key, from ana's client (whose answers are signed with ana's key).
  test::FakeConsole bob_as_ana("bob", bob_.key, "ctl-1");
  take(bob_as_ana.request(status), 3 * kSec);
  EXPECT_EQ(rig_.drops(DropReason::sender_mismatch), 2u);
  EXPECT_EQ(ran_.size(), 1u);
}

TEST_F(ControlTest, AVerbTheGatewayDoesNotHaveIsAnsweredWithAnError) {
  take(ana_.request([](kairos_v1_ControlRequest& r) { r.which_verb = kairos_v1_ControlRequest_schedule_tag; }),
       1 * kSec);
  ASSERT_EQ(rig_.answers.size(), 1u);
  const auto& a = rig_.answers[0];
  EXPECT_FALSE(a.resp.ok);
  EXPECT_EQ(a.resp.request_id, 1u);
  EXPECT_NE(std::string(a.resp.error).find("unknown verb"), std::string::npos) << a.resp.error;
  EXPECT_EQ(a.to.by, "ana");
  EXPECT_EQ(rig_.prepared, 0);
  EXPECT_TRUE(ran_.empty());
}

TEST_F(ControlTest, ARevokedOperatorIsToldWhyAFewTimesASecondAlsoAfterARestart) {
  take(ana_.request(
           [](kairos_v1_ControlRequest& r) { operators(r, kairos_v1_OperatorsAction_OPERATORS_REVOKE, "bob"); }),
       1 * kSec);
  ASSERT_EQ(rig_.answers.size(), 1u);
  const auto& done = rig_.answers[0].resp;
  ASSERT_TRUE(done.ok) << done.error;
  const auto& list = done.reply.operators;
  auto* bob = std::find_if(list.operators, list.operators + list.operators_count,
                           [](const kairos_v1_OperatorInfo& o) { return std::string(o.name) == "bob"; });
  ASSERT_NE(bob, list.operators + list.operators_count);
  EXPECT_EQ(std::string(bob->state), "revoked");
  EXPECT_EQ(std::string(bob->changed_by), "ana");
  EXPECT_EQ(rig_.published, std::vector<std::string>{alert_topic("m")}) << "every operator hears of it";
  auto audit = operator_actions(rig_.store(), "", 0, 10);
  ASSERT_FALSE(audit.empty());
  EXPECT_EQ(audit[0].name, "ana");
  EXPECT_EQ(audit[0].verb, "revoke");
  EXPECT_EQ(audit[0].detail, "bob");

  rig_.answers.clear();
  for (int i = 0; i < 7; ++i) take(bob_.request(status), 2 * kSec);
  EXPECT_EQ(rig_.drops(DropReason::revoked), 7u);
  EXPECT_TRUE(ran_.empty());
  ASSERT_EQ(rig_.answers.size(), 5u) << "a burst of five answers, then one a second";
  for (const auto& a : rig_.answers) {
    EXPECT_FALSE(a.resp.ok);
    EXPECT_NE(std::string(a.resp.error).find("operator bob is revoked (by ana)"), std::string::npos) << a.resp.error;
    EXPECT_NE(std::string(a.resp.error).find("kairosctl operators restore bob --confirm"), std::string::npos);
    EXPECT_EQ(a.to.by, "bob");
    EXPECT_EQ(a.to.topic, ctl_resp_topic("m", "ctl-2"));
  }
  take(bob_.request(status), 3 * kSec);
  EXPECT_EQ(rig_.answers.size(), 6u);

  rig_.restart();  // the revocation comes back from the database
  verbs();
  take(bob_.request(status), 10 * kSec);
  EXPECT_EQ(rig_.drops(DropReason::revoked), 1u);
  EXPECT_EQ(rig_.answers.size(), 7u);
  EXPECT_TRUE(ran_.empty());
  take(ana_.request(status), 11 * kSec);
  EXPECT_EQ(ran_.size(), 1u);
}

TEST_F(ControlTest, WhileTheDatabaseCannotBeWrittenOnlyVerbsThatReadAreRun) {
  test::FailingWriter disk;
  rig_.break_storage(disk);
  ASSERT_EQ(rig_.outbox().error(), "disk I/O error");

  take(ana_.request(status), 1 * kSec);
  ASSERT_EQ(ran_.size(), 1u);
  EXPECT_EQ(ran_[0].verb, "status");
  EXPECT_TRUE(rig_.answers.empty());

  take(ana_.request(heal_n1), 2 * kSec);
  EXPECT_EQ(ran_.size(), 1u) << "a change that cannot be recorded is not made";
  // The operators verb is the control's own, and records who asked: refused too.
  take(ana_.request([](kairos_v1_ControlRequest& r) { operators(r, kairos_v1_OperatorsAction_OPERATORS_LIST, ""); }),
       3 * kSec);
  ASSERT_EQ(rig_.answers.size(), 2u);
  for (const auto& a : rig_.answers) {
    EXPECT_FALSE(a.resp.ok);
    EXPECT_NE(std::string(a.resp.error).find("cannot write its database (disk I/O error)"), std::string::npos)
        << a.resp.error;
    EXPECT_EQ(a.to.by, "ana");
  }
  EXPECT_EQ(rig_.answers[0].resp.request_id, 2u);
  EXPECT_TRUE(operator_actions(rig_.store(), "", 0, 10).empty());

  rig_.mend_storage(disk);
  take(ana_.request(heal_n1), 4 * kSec);
  ASSERT_EQ(ran_.size(), 2u);
  EXPECT_EQ(ran_[1].verb, "heal");
  EXPECT_EQ(operator_actions(rig_.store(), "ana", 0, 10).size(), 1u);
}

// The schedule and jobs modules at the gateway (docs/DESIGN.md 5.4, 5.5, 5.8)
// without a broker: target selectors, the schedule verb's refusals, a
// schedule and a gathered freeze run to their answers against simulated
// acks, and jobs dispatched, refused, answered only once on disk, and held
// while the mesh is not ready or automation is halted. Real SQLite file.
#include <gtest/gtest.h>

#include <map>

#include "common/io/clock.h"
#include "gateway/jobs/desk.h"
#include "gateway/schedule/schedules.h"
#include "tests/unit/scratch.h"
#include "tests/unit/gateway/births.h"

using namespace kairos;
using namespace kairos::gw;

namespace {

constexpr std::int64_t kSec = 1'000'000;

struct Sent {
  std::string node;
  std::uint64_t id;
  kairos_v1_Command cmd;
};

class Desks : public ::testing::Test {
 protected:
  Desks() {
    outbox_.set_publish([](const std::string&, const Bytes&, bool) {});
    // c1: n1 (class A), n2 (class C); c2: n3 (class A, offline)
    registry_.on_birth("n1", "c1", 1, test::birth("c1", "job:echo", kairos_v1_DeviceClass_CLASS_A), mono_us(), kSec);
    registry_.on_birth("n2", "c1", 1, test::birth("c1", "job:echo", kairos_v1_DeviceClass_CLASS_C), mono_us(), kSec);
    registry_.on_birth("n3", "c2", 1, test::birth("c2", "job:other", kairos_v1_DeviceClass_CLASS_A), mono_us(), kSec);
    registry_.on_state(*registry_.find("n3"), false, mono_us());
  }
  std::uint64_t send(const NodeEntry& n, const std::function<void(kairos_v1_Command&)>& fill) {
    Sent s{n.id, ++next_id_, kairos_v1_Command_init_zero};
    s.cmd.command_id = s.id;
    fill(s.cmd);
    sent_.push_back(s);
    return s.id;
  }
  // The node's clock is the gateway's; it received the command rtt/2 after it left.
  void synced(const std::string& id) {
    NodeEntry* n = registry_.find(id);
    const std::int64_t t1 = wall_us();
    for (int i = 0; i < 8; ++i) n->clock.add({t1, t1 + 1000, t1 + 1100, t1 + 2100});
  }
  test::ScratchDir dir_{"desks"};
  GatewayConfig config_;
  Store store_{dir_.file("gateway.db")};
  Outbox outbox_{store_, "gateway.db", [](const std::string&) {}};
  Registry registry_;
  Escalation escalation_{config_, registry_, outbox_,
                         {[](const std::string&, Envelope&) { return Bytes{}; },
                          [this](const std::string& kind, const std::string&, const std::string& by) {
                            snapshots_.push_back(kind + " by " + by);
                            return std::uint64_t{snapshots_.size()};
                          }}};
  std::vector<std::string> snapshots_;
  std::uint64_t next_id_ = 0;
  std::vector<Sent> sent_;
  std::vector<kairos_v1_ControlResponse> answers_;
  bool ready_ = true;
  std::vector<std::uint64_t> finished_;
  Schedules schedules_{config_, registry_, escalation_,
                       {[this](const NodeEntry& n, std::uint32_t, const std::function<void(kairos_v1_Command&)>& fill) {
                          return send(n, fill);
                        },
                        [this](const ReplyTo&, kairos_v1_ControlResponse& r) { answers_.push_back(r); },
                        [this](const std::string& kind, const std::string& scope, const std::string& by) {
                          snapshots_.push_back(kind + " " + scope + " by " + by);
                          return std::uint64_t{snapshots_.size()};
                        },
                        {}}};
  JobDesk jobs_{config_, registry_, escalation_, outbox_,
                {[this](const NodeEntry& n, std::uint32_t, const std::function<void(kairos_v1_Command&)>& fill) {
                   return send(n, fill);
                 },
                 [this](const ReplyTo&, kairos_v1_ControlResponse& r) { answers_.push_back(r); },
                 [this] { return ready_; },
                 [this](const Job& job) { finished_.push_back(job.id); }}};
  const ReplyTo to_{"kairos/v1/m/_ctl/resp/c", {1, 2}, "alice"};
};

}  // namespace

TEST_F(Desks, SelectorsNameOnlineNodesByClusterOrClassAndNamedNodesEvenOffline) {
  std::string error;
  EXPECT_EQ(select_targets(registry_, "all", error), (std::vector<std::string>{"n1", "n2"}));
  EXPECT_EQ(select_targets(registry_, "cluster:c1", error), (std::vector<std::string>{"n1", "n2"}));
  EXPECT_EQ(select_targets(registry_, "class:A", error), (std::vector<std::string>{"n1"}));
  EXPECT_EQ(error, "");
  EXPECT_EQ(select_targets(registry_, "n3,n1,ghost", error), (std::vector<std::string>{"n3", "n1", "ghost"}));
  EXPECT_TRUE(select_targets(registry_, "cluster:c2", error).empty());
  EXPECT_EQ(error, "no online node matches 'cluster:c2'");
  error.clear();
  EXPECT_TRUE(select_targets(registry_, "n1,bad/id", error).empty());
  EXPECT_EQ(error, "'bad/id' is not a node id");
}

TEST_F(Desks, AScheduleThatCannotBeRunIsRefusedWithWhy) {
  auto req = [] {
    kairos_v1_ScheduleRequest r = kairos_v1_ScheduleRequest_init_zero;
    r.has_command = true;
    r.command.which_action = kairos_v1_Command_notice_tag;
    std::snprintf(r.targets, sizeof r.targets, "all");
    r.in_ms = 500;
    return r;
  };
  auto refused = [&](kairos_v1_ScheduleRequest r) {
    answers_.clear();
    schedules_.schedule(to_, 7, r);
    EXPECT_EQ(answers_.size(), 1u);
    EXPECT_FALSE(answers_.empty() || answers_[0].ok);
    EXPECT_EQ(answers_.empty() ? 0 : answers_[0].request_id, 7u);
    return answers_.empty() ? std::string() : std::string(answers_[0].error);
  };
  auto r = req();
  r.has_command = false;
  EXPECT_EQ(refused(r), "schedule: no command");
  r = req();
  r.command.which_action = kairos_v1_Command_ping_tag;
  EXPECT_EQ(refused(r), "schedule: ping is the gateway's own (clock sync)");
  r = req();
  r.in_ms = 0;
  r.at_us = wall_us() - 2 * kSec;
  EXPECT_NE(refused(r).find("in the past"), std::string::npos);
  r = req();
  r.in_ms = 3'700'000;
  EXPECT_EQ(refused(r), "schedule: T is more than an hour ahead");
  r = req();
  r.ready_quorum = 1.5f;
  EXPECT_EQ(refused(r), "schedule: quorum thresholds lie in 0..1");
  r = req();
  std::snprintf(r.strategy, sizeof r.strategy, "fastest");
  EXPECT_NE(refused(r).find("unknown strategy 'fastest'"), std::string::npos);
  escalation_.judge(1, 10, true);  // EMERGENCY
  EXPECT_NE(refused(req()).find("EMERGENCY"), std::string::npos);
  EXPECT_TRUE(sent_.empty());
}

TEST_F(Desks, AScheduleLandsAtTAndIsAnsweredWithItsHits) {
  synced("n1");
  synced("n2");
  kairos_v1_ScheduleRequest r = kairos_v1_ScheduleRequest_init_zero;
  r.has_command = true;
  r.command.which_action = kairos_v1_Command_notice_tag;
  std::snprintf(r.targets, sizeof r.targets, "cluster:c1");
  r.in_ms = 1000;  // room for a slow machine (qemu) to send before T
  schedules_.schedule(to_, 9, r);
  // Sent ahead of T by each node's lead, both with the same execute_at.
  const std::int64_t until = mono_us() + 5 * kSec;
  while (sent_.size() < 2 && mono_us() < until) schedules_.service(wall_us());
  ASSERT_EQ(sent_.size(), 2u);
  const std::int64_t at = sent_[0].cmd.execute_at_us;
  EXPECT_EQ(sent_[1].cmd.execute_at_us, at);
  EXPECT_GT(at, wall_us());
  for (const auto& s : sent_) {
    kairos_v1_Ack a = kairos_v1_Ack_init_zero;
    a.command_id = s.id;
    a.state = 1;
    a.received_at_us = at - 100'000;
    a.executed_at_us = at + 2'000;  // 2 ms late: a hit within +-10 ms
    EXPECT_TRUE(schedules_.on_ack(s.node, a, at + 5'000));
  }
  while (answers_.empty() && mono_us() < until + 10 * kSec) schedules_.service(wall_us());
  ASSERT_EQ(answers_.size(), 1u);
  const auto& o = answers_[0].reply.schedule;
  EXPECT_TRUE(answers_[0].ok);
  EXPECT_EQ(answers_[0].request_id, 9u);
  EXPECT_EQ(o.targets, 2u);
  EXPECT_EQ(o.hits, 2u);
  EXPECT_NEAR(o.error_mean_ms, 2.0, 0.01);
  EXPECT_NE(schedules_.last_cascade().find("2 of 2 within +-10 ms"), std::string::npos) << schedules_.last_cascade();
}

TEST_F(Desks, AFreezeWritesItsSnapshotFirstAndGathersTheAcks) {
  kairos_v1_Command action = kairos_v1_Command_init_zero;
  action.which_action = kairos_v1_Command_freeze_tag;
  action.action.freeze = true;
  escalation_.judge(1, 10, true);  // EMERGENCY: a freeze is the brake, always allowed
  snapshots_.clear();
  schedules_.command(to_, 11, Schedules::Verb::freeze, "all", action, true, 1000, false);
  EXPECT_EQ(snapshots_, std::vector<std::string>{"freeze all by alice"});
  const std::int64_t until = mono_us() + 5 * kSec;
  while (sent_.size() < 2 && mono_us() < until) schedules_.service(wall_us());
  ASSERT_EQ(sent_.size(), 2u);
  kairos_v1_Ack a = kairos_v1_Ack_init_zero;
  a.command_id = sent_[0].id;
  a.state = 1;
  a.received_at_us = a.executed_at_us = wall_us();
  schedules_.on_ack(sent_[0].node, a, wall_us());  // the other never answers
  while (answers_.empty() && mono_us() < until + 10 * kSec) schedules_.service(wall_us());
  ASSERT_EQ(answers_.size(), 1u);
  const auto& c = answers_[0].reply.command;
  EXPECT_TRUE(c.gathered);
  EXPECT_EQ(c.targets, 2u);
  EXPECT_EQ(c.ready, 1u);
  EXPECT_EQ(c.snapshot_id, 1u);
  ASSERT_EQ(c.not_ready_count, 1u);
  EXPECT_EQ(std::string(c.not_ready[0]), sent_[1].node);
}

TEST_F(Desks, AJobGoesToACapableNodeAndItsAnswerLeavesOnlyOnceOnDisk) {
  kairos_v1_DelegateRequest d = kairos_v1_DelegateRequest_init_zero;
  std::snprintf(d.handler, sizeof d.handler, "echo");
  d.wait = true;
  ready_ = false;
  jobs_.delegate(to_, 21, d);
  EXPECT_TRUE(sent_.empty()) << "not ready: no candidate is a guess yet";
  ready_ = true;
  jobs_.service();
  ASSERT_EQ(sent_.size(), 1u);
  const Sent s = sent_[0];
  EXPECT_EQ(s.cmd.which_action, kairos_v1_Command_job_tag);
  EXPECT_TRUE(s.node == "n1" || s.node == "n2");
  kairos_v1_JobResult r = kairos_v1_JobResult_init_zero;
  r.job_id = s.cmd.action.job.job_id;
  r.attempt = s.cmd.action.job.attempt;
  r.status = kairos_v1_JobStatus_JOB_OK;
  r.output.size = 2;
  r.output.bytes[0] = 'h';
  r.output.bytes[1] = 'i';
  jobs_.on_result(s.node, r);
  EXPECT_EQ(finished_, std::vector<std::uint64_t>{r.job_id});
  EXPECT_TRUE(answers_.empty()) << "the answer waits for the commit";
  outbox_.commit(mono_us());
  ASSERT_EQ(answers_.size(), 1u);
  EXPECT_EQ(answers_[0].request_id, 21u);
  EXPECT_EQ(std::string(answers_[0].reply.job.state), "DONE");
  auto stored = JobStore(store_).load_one(r.job_id);
  ASSERT_TRUE(stored);
  EXPECT_EQ(stored->spec.asked_by, "alice");
  EXPECT_TRUE(stored->final());
}

TEST_F(Desks, ARefusedJobIsACapabilityMismatchAndHaltedAutomationHoldsDispatch) {
  escalation_.judge(1, 10, true);  // EMERGENCY
  JobSpec spec;
  spec.handler = "echo";
  spec.retries = 0;
  const std::uint64_t id = jobs_.submit(spec).id;
  jobs_.service();
  EXPECT_TRUE(sent_.empty()) << "automation halted";
  escalation_.confirmed_in_emergency();
  jobs_.service();
  ASSERT_EQ(sent_.size(), 1u);
  kairos_v1_Ack a = kairos_v1_Ack_init_zero;
  a.command_id = sent_[0].id;
  a.state = -1;
  std::snprintf(a.detail, sizeof a.detail, "no handler echo");
  EXPECT_TRUE(jobs_.on_ack("someone-else", a));  // the command is a job's, but not that node's
  outbox_.commit(mono_us());
  EXPECT_EQ(store_.conflict_count(), 0u) << "another node's ack of a copy changes nothing";
  EXPECT_TRUE(jobs_.on_ack(sent_[0].node, a));
  outbox_.commit(mono_us());
  auto rows = store_.conflicts(10);
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows.back().type, "CAPABILITY_MISMATCH");
  EXPECT_EQ(rows.back().node, sent_[0].node);
  (void)id;
}

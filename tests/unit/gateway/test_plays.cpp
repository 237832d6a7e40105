// The Ball at the gateway (docs/DESIGN.md 6) without a broker, on a real SQLite
// file: a hut is stored before it is answered, its genesis is delivered to
// the people and asked of the node peers as a `ball` job after the commit,
// a node's answer appends to the lineage, refusals are on record, a signed
// head the lineage does not reach breaks the play, and a restart replays
// what is stored.
#include <gtest/gtest.h>

#include "common/core/topic.h"
#include "common/io/clock.h"
#include "gateway/ball/plays.h"
#include "tests/unit/scratch.h"
#include "tests/unit/gateway/births.h"

using namespace kairos;
using namespace kairos::gw;

namespace {

struct Sent {
  std::string node;
  kairos_v1_Command cmd;
};

// The modules a play needs, over one database file; a second Mesh on the
// same file is the gateway after a restart.
struct Mesh {
  explicit Mesh(const std::string& db) : store(db) {
    config.mesh = "m";
    outbox.set_publish([this](const std::string& topic, const Bytes&, bool) { published.push_back(topic); });
    registry.on_birth("n1", "c1", 1, test::birth("c1", "job:ball"), mono_us(), 1'000'000);
    registry.on_birth("n2", "c1", 1, test::birth("c1", "job:other"), mono_us(), 1'000'000);
  }
  GatewayConfig config;
  Store store;
  Outbox outbox{store, "gateway.db", [](const std::string&) {}};
  Registry registry;
  Escalation escalation{config, registry, outbox,
                        {[](const std::string&, Envelope&) { return Bytes{}; },
                         [](const std::string&, const std::string&, const std::string&) { return std::uint64_t{0}; }}};
  std::vector<Sent> sent;
  std::vector<kairos_v1_ControlResponse> answers;
  std::vector<std::string> published;
  JobDesk jobs{config, registry, escalation, outbox,
               {[this](const NodeEntry& n, std::uint32_t, const std::function<void(kairos_v1_Command&)>& fill) {
                  Sent s{n.id, kairos_v1_Command_init_zero};
                  s.cmd.command_id = sent.size() + 1;
                  fill(s.cmd);
                  sent.push_back(s);
                  return s.cmd.command_id;
                },
                [](const ReplyTo&, kairos_v1_ControlResponse&) {}, [] { return true; },
                [this](const Job& job) { plays.job_finished(job); }}};
  Plays plays{config, registry, escalation, outbox, jobs,
              {[](const std::string&, Envelope&) { return Bytes{7}; },
               [this](const ReplyTo&, kairos_v1_ControlResponse& r) { answers.push_back(r); }, [] { return true; }}};
  const ReplyTo to{"resp", {}, "alice"};

  kairos_v1_BallRequest hut(std::vector<std::string> peers) {
    kairos_v1_BallRequest r = kairos_v1_BallRequest_init_zero;
    r.verb = kairos_v1_BallVerb_BALL_HUT;
    std::snprintf(r.session, sizeof r.session, "s1");
    for (const auto& p : peers) std::snprintf(r.peers[r.peers_count++], sizeof r.peers[0], "%s", p.c_str());
    std::snprintf(r.objectives[r.objectives_count++], sizeof r.objectives[0], "ship it");
    return r;
  }
  // The node's ball job answered with output.
  void node_answers(const Sent& s, const std::string& output) {
    kairos_v1_JobResult r = kairos_v1_JobResult_init_zero;
    r.job_id = s.cmd.action.job.job_id;
    r.attempt = s.cmd.action.job.attempt;
    r.status = kairos_v1_JobStatus_JOB_OK;
    r.output.size = static_cast<pb_size_t>(output.size());
    std::copy(output.begin(), output.end(), r.output.bytes);
    jobs.on_result(s.node, r);
    outbox.commit(mono_us());
  }
};

class PlaysTest : public ::testing::Test {
 protected:
  test::ScratchDir dir_{"plays"};
};

}  // namespace

TEST_F(PlaysTest, AHutIsStoredThenAnsweredDeliveredToPeopleAndAskedOfNodes) {
  Mesh m(dir_.file("gateway.db"));
  m.plays.verb(m.to, 3, m.hut({"n1", "alice"}));  // n1 holds the Ball
  ASSERT_EQ(m.answers.size(), 1u);
  EXPECT_TRUE(m.answers[0].ok) << m.answers[0].error;
  EXPECT_EQ(std::string(m.answers[0].reply.ball.play.holder), "n1");
  const std::string ball_id = m.answers[0].reply.ball.play.ball_id;
  // On disk before the answer: the play and its genesis, asked by alice.
  auto entries = m.store.ball_entries(ball_id, 0, 10);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].kind, "genesis");
  EXPECT_EQ(entries[0].asked_by, "alice");
  // The head published retained, the genesis delivered to alice; n1 asked as a ball job.
  EXPECT_NE(std::find(m.published.begin(), m.published.end(), ball_head_topic("m", "s1")), m.published.end());
  EXPECT_NE(std::find(m.published.begin(), m.published.end(), ball_to_topic("m", "s1", "alice")), m.published.end());
  ASSERT_EQ(m.sent.size(), 1u);
  EXPECT_EQ(m.sent[0].node, "n1");
  EXPECT_EQ(std::string(m.sent[0].cmd.action.job.handler), "ball");
  const std::string payload(m.sent[0].cmd.action.job.payload.bytes,
                            m.sent[0].cmd.action.job.payload.bytes + m.sent[0].cmd.action.job.payload.size);
  EXPECT_NE(payload.find("session=s1\nball=" + ball_id + "\nyou=n1\nholder=n1\npeople=alice\nentry=0\n"),
            std::string::npos)
      << payload;
  // The node makes its move and hands the Ball on: appended to the lineage.
  m.node_answers(m.sent[0], "MM: first move\n->alice");
  entries = m.store.ball_entries(ball_id, 0, 10);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[1].kind, "entry");
  EXPECT_EQ(entries[1].author, "n1");
  EXPECT_EQ(entries[1].asked_by, "") << "a node's answer, not an operator's request";
  EXPECT_EQ(m.store.conflict_count(), 0u);
}

TEST_F(PlaysTest, ANodeThatCannotAnswerIsRefusedAndAWrongAnswerIsOnRecord) {
  Mesh m(dir_.file("gateway.db"));
  m.plays.verb(m.to, 3, m.hut({"alice", "n2"}));
  ASSERT_EQ(m.answers.size(), 1u);
  EXPECT_FALSE(m.answers[0].ok);
  EXPECT_NE(std::string(m.answers[0].error).find("does not advertise job:ball"), std::string::npos);
  m.answers.clear();
  m.plays.verb(m.to, 4, m.hut({"alice", "n1"}));
  ASSERT_EQ(m.sent.size(), 1u);
  m.node_answers(m.sent[0], "whatever I like\n");
  auto rows = m.store.conflicts(10);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].type, "BALL_REFUSAL");
  EXPECT_EQ(rows[0].node, "n1");
}

TEST_F(PlaysTest, AHeadTheLineageDoesNotReachBreaksThePlayAndARestartReplaysIt) {
  std::string ball_id;
  {
    Mesh m(dir_.file("gateway.db"));
    m.plays.verb(m.to, 3, m.hut({"alice", "bob"}));
    ball_id = m.answers.at(0).reply.ball.play.ball_id;
    kairos_v1_BallHead h = kairos_v1_BallHead_init_zero;
    std::snprintf(h.session, sizeof h.session, "s1");
    std::snprintf(h.ball_id, sizeof h.ball_id, "%s", ball_id.c_str());
    h.seq = 0;
    h.hash.size = 32;
    const auto genesis = m.store.ball_entries(ball_id, 0, 1).at(0);
    std::copy(genesis.hash.begin(), genesis.hash.end(), h.hash.bytes);
    m.plays.on_head(h);  // our own head: matches
    m.outbox.commit(mono_us());
    EXPECT_EQ(m.store.conflict_count(), 0u);
    h.seq = 5;  // signed further than the stored lineage: entries were removed
    m.plays.on_head(h);
    m.outbox.commit(mono_us());
    auto rows = m.store.conflicts(10);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].type, "BALL_LINEAGE_BROKEN");
    // A broken play takes no input.
    kairos_v1_BallRequest say = kairos_v1_BallRequest_init_zero;
    say.verb = kairos_v1_BallVerb_BALL_SAY;
    std::snprintf(say.session, sizeof say.session, "s1");
    std::snprintf(say.as, sizeof say.as, "alice");
    std::snprintf(say.text, sizeof say.text, "MM: go");
    m.answers.clear();
    m.plays.verb(m.to, 5, say);
    ASSERT_EQ(m.answers.size(), 1u);
    EXPECT_NE(std::string(m.answers[0].error).find("is broken"), std::string::npos);
  }
  // After a restart the stored lineage replays (it is whole): the play is live again.
  Mesh again(dir_.file("gateway.db"));
  again.plays.restore();
  EXPECT_EQ(again.plays.size(), 1u);
  kairos_v1_BallRequest say = kairos_v1_BallRequest_init_zero;
  say.verb = kairos_v1_BallVerb_BALL_SAY;
  std::snprintf(say.session, sizeof say.session, "s1");
  std::snprintf(say.as, sizeof say.as, "alice");
  std::snprintf(say.text, sizeof say.text, "MM: go\n->bob");
  again.plays.verb(again.to, 6, say);
  ASSERT_EQ(again.answers.size(), 1u);
  EXPECT_TRUE(again.answers[0].ok) << again.answers[0].error;
  EXPECT_EQ(again.store.ball_entries(ball_id, 0, 10).size(), 2u);
}

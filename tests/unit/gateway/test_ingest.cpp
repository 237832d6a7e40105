// Ingest at the gateway (docs/DESIGN.md 4, 5.1, 5.6) without a broker, on a
// real SQLite file: a frame that fails a known node's MAC is a breach, one
// that speaks for another node or repeats a seq is dropped and counted, a
// sequence far below the high water is a paradox, the broker's retained
// copies are no drops, acks and results go on through the ports, and the
// sessions written once a second keep refusing an old session's frames
// after a restart.
#include <gtest/gtest.h>

#include "tests/unit/gateway/gateway_rig.h"

using namespace kairos;
using namespace kairos::gw;

using kairos::test::key_of;

namespace {

constexpr std::int64_t kSec = 1'000'000;

class IngestTest : public ::testing::Test {
 protected:
  IngestTest() { rig_.node_key("n1", n1_.key); }
  std::uint64_t rows(const std::string& sql) {
    Stmt q(rig_.store().handle(), sql);
    return q.step() ? static_cast<std::uint64_t>(q.int64(0)) : 0;
  }
  test::Rig rig_{"ingest"};
  test::FakeNode n1_{"n1", key_of(0x11)};
};

}  // namespace

TEST_F(IngestTest, AFrameThatFailsAKnownNodesMacIsABreachThatQuarantinesIt) {
  rig_.feed(n1_.birth(), 1 * kSec);
  ASSERT_NE(rig_.registry().find("n1"), nullptr);
  test::FakeNode forger("n1", key_of(0x99));
  forger.seq = n1_.seq;
  rig_.feed(forger.heartbeat(), 2 * kSec);
  EXPECT_EQ(rig_.drops(DropReason::bad_mac), 1u);
  EXPECT_EQ(rig_.ingest().accepted(), 1u);
  EXPECT_TRUE(rig_.registry().find("n1")->quarantined);
  EXPECT_TRUE(rig_.published.empty()) << "the alert waits for its conflict to be on disk";
  rig_.outbox().commit(2 * kSec);
  auto conflicts = rig_.store().conflicts(10);
  ASSERT_EQ(conflicts.size(), 1u);
  EXPECT_EQ(conflicts[0].type, "HASH_MISMATCH");
  EXPECT_EQ(conflicts[0].priority, 4);
  EXPECT_EQ(conflicts[0].node, "n1");
  EXPECT_EQ(rig_.store().quarantined().count("n1"), 1u);
  EXPECT_EQ(rig_.published, std::vector<std::string>{alert_topic("m")});
  // A node the gateway has no key for is unknown, not in breach.
  test::FakeNode stranger("n9", key_of(0x22));
  rig_.feed(stranger.birth(), 3 * kSec);
  EXPECT_EQ(rig_.drops(DropReason::unknown_sender), 1u);
  rig_.outbox().commit(3 * kSec);
  EXPECT_EQ(rig_.store().conflict_count(), 1u);
  EXPECT_EQ(rig_.registry().find("n9"), nullptr);
}

TEST_F(IngestTest, AFrameThatSpeaksForAnotherNodeOrClusterIsDropped) {
  rig_.feed(n1_.birth(), 1 * kSec);
  // Signed with n1's own key, on n1's topic, but naming another sender.
  rig_.feed(n1_.frame(TopicKind::hb,
                      [](Envelope& e) {
                        set_string(e.sender, "n2");
                        e.which_message = kairos_v1_Envelope_heartbeat_tag;
                        e.message.heartbeat.status = kairos_v1_NodeStatus_COMPLIANT;
                      }),
            2 * kSec);
  EXPECT_EQ(rig_.drops(DropReason::sender_mismatch), 1u);
  // A birth on c1's topic naming cluster c2.
  rig_.feed(n1_.frame(TopicKind::birth,
                      [](Envelope& e) {
                        e.which_message = kairos_v1_Envelope_birth_tag;
                        e.message.birth = test::birth("c2");
                      }),
            3 * kSec);
  EXPECT_EQ(rig_.drops(DropReason::sender_mismatch), 2u);
  // A heartbeat where a birth belongs.
  rig_.feed(n1_.frame(TopicKind::birth,
                      [](Envelope& e) {
                        e.which_message = kairos_v1_Envelope_heartbeat_tag;
                        e.message.heartbeat.status = kairos_v1_NodeStatus_COMPLIANT;
                      }),
            4 * kSec);
  EXPECT_EQ(rig_.drops(DropReason::kind_mismatch), 1u);
  EXPECT_EQ(rig_.ingest().accepted(), 1u);
  EXPECT_EQ(rig_.registry().find("n2"), nullptr);
  EXPECT_EQ(rig_.registry().find("n1")->cluster, "c1");
  EXPECT_FALSE(rig_.registry().find("n1")->quarantined) << "a well signed frame is no breach";
}

TEST_F(IngestTest, AReplayIsDroppedAndASequenceFarBelowTheHighWaterIsAParadox) {
  rig_.feed(n1_.birth(), 1 * kSec);
  const Inbound hb = n1_.heartbeat();
  rig_.feed(hb, 2 * kSec);
  rig_.feed(hb, 3 * kSec);
  EXPECT_EQ(rig_.drops(DropReason::replay), 1u);
  EXPECT_EQ(rig_.ingest().accepted(), 2u);
  rig_.outbox().commit(3 * kSec);
  EXPECT_EQ(rig_.store().conflict_count(), 0u) << "a QoS 1 redelivery is no paradox";

  rig_.feed(n1_.heartbeat(200), 4 * kSec);
  rig_.feed(n1_.heartbeat(150), 5 * kSec);  // within the window of 64 and never seen: late, taken
  EXPECT_EQ(rig_.ingest().accepted(), 4u);
  rig_.feed(n1_.heartbeat(100), 6 * kSec);  // 100 below the high water of 200
  EXPECT_EQ(rig_.drops(DropReason::replay), 2u);
  EXPECT_EQ(rig_.ingest().accepted(), 4u);
  rig_.outbox().commit(6 * kSec);
  auto conflicts = rig_.store().conflicts(10);
  ASSERT_EQ(conflicts.size(), 1u);
  EXPECT_EQ(conflicts[0].type, "TEMPORAL_PARADOX");
  EXPECT_EQ(conflicts[0].priority, 4);
  EXPECT_NE(conflicts[0].detail.find("seq 100 after 200"), std::string::npos) << conflicts[0].detail;
  EXPECT_EQ(rows("SELECT COUNT(*) FROM quarantine WHERE node = 'n1' AND action = 'data'"), 1u)
      << "the frame is kept as evidence";
  EXPECT_FALSE(rig_.registry().find("n1")->quarantined) << "no CAT-1 breach: the node keeps working";
}

TEST_F(IngestTest, TheBrokersRetainedBirthOfTheCurrentSessionIsNoDrop) {
  Inbound birth = n1_.birth();
  rig_.feed(birth, 1 * kSec);
  ASSERT_EQ(rig_.ingest().accepted(), 1u);
  birth.retained = true;  // re-read at a resubscribe
  rig_.feed(birth, 2 * kSec);
  EXPECT_EQ(rig_.ingest().drops().total(), 0u);
  EXPECT_EQ(rig_.ingest().accepted(), 1u) << "already applied: the copy says nothing new";
  birth.retained = false;  // the same birth sent again live: a replay
  rig_.feed(birth, 3 * kSec);
  EXPECT_EQ(rig_.drops(DropReason::replay), 1u);

  // After a restart the broker's copy brings the node back, without a drop.
  ASSERT_TRUE(rig_.ingest().flush());
  rig_.restart();
  birth.retained = true;
  rig_.feed(birth, 10 * kSec);
  EXPECT_EQ(rig_.ingest().drops().total(), 0u);
  const NodeEntry* n = rig_.registry().find("n1");
  ASSERT_NE(n, nullptr);
  EXPECT_EQ(n->session, 100u);
  EXPECT_FALSE(n->heard) << "a retained copy is not the node speaking";
}

TEST_F(IngestTest, AcksAndResultsReachThePorts) {
  // Before its birth the node's session is unknown: nothing goes on.
  Inbound early = n1_.frame(TopicKind::ack, [](Envelope& e) {
    e.which_message = kairos_v1_Envelope_ack_tag;
    e.message.ack.command_id = 41;
  });
  rig_.feed(early, 1 * kSec);
  EXPECT_EQ(rig_.drops(DropReason::unknown_session), 1u);
  EXPECT_TRUE(rig_.acks.empty());

  rig_.feed(n1_.birth(), 2 * kSec);
  Inbound ack = n1_.frame(TopicKind::ack, [](Envelope& e) {
    e.which_message = kairos_v1_Envelope_ack_tag;
    e.message.ack.command_id = 42;
    e.message.ack.state = 1;
  });
  ack.received_mono_us = mono_us() - 2 * kSec;  // it waited 2 s in the link's queue
  const std::int64_t before = wall_us();
  rig_.feed(ack, 3 * kSec);
  const std::int64_t after = wall_us();
  ASSERT_EQ(rig_.acks.size(), 1u);
  EXPECT_EQ(rig_.acks[0].id, "n1");
  EXPECT_EQ(rig_.acks[0].ack.command_id, 42u);
  EXPECT_EQ(rig_.acks[0].ack.state, 1);
  // t4 is its arrival, not its turn in the loop (1 s of room for the clocks' steps).
  EXPECT_GE(rig_.acks[0].t4, before - 3 * kSec);
  EXPECT_LE(rig_.acks[0].t4, after - 1 * kSec);

  const Inbound result = n1_.frame(TopicKind::result, [](Envelope& e) {
    e.which_message = kairos_v1_Envelope_result_tag;
    e.message.result.job_id = 7;
    e.message.result.attempt = 1;
    e.message.result.status = kairos_v1_JobStatus_JOB_OK;
  });
  rig_.feed(result, 4 * kSec);
  ASSERT_EQ(rig_.results.size(), 1u);
  EXPECT_EQ(rig_.results[0].id, "n1");
  EXPECT_EQ(rig_.results[0].result.job_id, 7u);
  EXPECT_EQ(rig_.results[0].frame, result.payload) << "the signed frame, kept as evidence";
  rig_.feed(result, 5 * kSec);
  EXPECT_EQ(rig_.results.size(), 1u) << "a replayed result goes no further";
}

TEST_F(IngestTest, TheLinksDropsCountAsQueueFullOnlyForTheNewOnes) {
  rig_.ingest().link_dropped(0, 1 * kSec);
  EXPECT_EQ(rig_.drops(DropReason::queue_full), 0u);
  rig_.ingest().link_dropped(5, 2 * kSec);
  EXPECT_EQ(rig_.drops(DropReason::queue_full), 5u);
  rig_.ingest().link_dropped(5, 3 * kSec);
  EXPECT_EQ(rig_.drops(DropReason::queue_full), 5u);
  rig_.ingest().link_dropped(8, 4 * kSec);
  EXPECT_EQ(rig_.drops(DropReason::queue_full), 8u);
  rig_.ingest().link_dropped(3, 5 * kSec);  // a total can only grow: nothing new
  EXPECT_EQ(rig_.drops(DropReason::queue_full), 8u);
  EXPECT_EQ(rig_.ingest().drops().total(), 8u);
}

TEST_F(IngestTest, FlushWritesNodesSessionsAndEventsOnlyWhenSomethingChanged) {
  EXPECT_FALSE(rig_.ingest().flush()) << "nothing to write";
  rig_.feed(n1_.birth(), 1 * kSec);
  EXPECT_TRUE(rig_.store().load_nodes().empty()) << "written at the flush, not before";
  ASSERT_TRUE(rig_.ingest().flush());
  auto nodes = rig_.store().load_nodes();
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_EQ(nodes[0].id, "n1");
  EXPECT_EQ(nodes[0].cluster, "c1");
  EXPECT_EQ(nodes[0].session, 100u);
  EXPECT_TRUE(nodes[0].online);
  auto sessions = rig_.store().load_sessions();
  ASSERT_EQ(sessions.size(), 1u);
  EXPECT_EQ(sessions[0].sender, "n1");
  EXPECT_EQ(sessions[0].session, 100u);
  EXPECT_EQ(sessions[0].high_water, 1u);
  EXPECT_FALSE(rig_.ingest().flush()) << "written: nothing left";

  // Heartbeats advance the high water on disk every 10 s at most.
  rig_.feed(n1_.heartbeat(), 2 * kSec);
  EXPECT_FALSE(rig_.ingest().flush());
  rig_.feed(n1_.heartbeat(), 11 * kSec);
  EXPECT_TRUE(rig_.ingest().flush());
  EXPECT_EQ(rig_.store().load_sessions()[0].high_water, 3u);

  // An event is kept; while the database cannot be written it waits.
  test::FailingWriter disk;
  rig_.break_storage(disk);
  ASSERT_EQ(rig_.storage_failures.size(), 1u);
  rig_.feed(n1_.frame(TopicKind::event,
                      [](Envelope& e) {
                        e.which_message = kairos_v1_Envelope_event_tag;
                        e.message.event.kind = kairos_v1_EventKind_CAT2;
                        set_string(e.message.event.source, "temp");
                      }),
            12 * kSec);
  EXPECT_FALSE(rig_.ingest().flush());
  EXPECT_EQ(rows("SELECT COUNT(*) FROM events"), 0u);
  rig_.mend_storage(disk);
  ASSERT_EQ(rig_.outbox().error(), "");
  EXPECT_TRUE(rig_.ingest().flush());
  EXPECT_EQ(rows("SELECT COUNT(*) FROM events WHERE node = 'n1' AND source = 'temp'"), 1u);
  EXPECT_EQ(rig_.store().load_sessions()[0].high_water, 4u);
  EXPECT_EQ(rig_.registry().find("n1")->events, 1u);
}

TEST_F(IngestTest, SessionsRestoredAfterARestartKeepRefusingAnOldSession) {
  rig_.node_key("n2", key_of(0x12));
  rig_.feed(n1_.birth(), 1 * kSec);
  rig_.feed(n1_.heartbeat(), 2 * kSec);
  const Inbound captured = n1_.heartbeat();  // of session 100, never delivered
  n1_.restart(200);
  rig_.feed(n1_.birth(), 3 * kSec);
  rig_.feed(captured, 4 * kSec);
  EXPECT_EQ(rig_.drops(DropReason::stale_session), 1u);
  ASSERT_TRUE(rig_.ingest().flush());
  // A random session id of an older version (above 2^56) says nothing about order.
  rig_.store().save_session({"n2", std::uint64_t{1} << 60, 5}, wall_us());

  rig_.restart();
  rig_.feed(captured, 10 * kSec);
  EXPECT_EQ(rig_.drops(DropReason::stale_session), 1u) << "stale, however many restarts ago it was captured";
  EXPECT_EQ(rig_.drops(DropReason::unknown_session), 0u);
  rig_.feed(n1_.heartbeat(1), 11 * kSec);  // the birth's seq, on disk as the high water
  EXPECT_EQ(rig_.drops(DropReason::replay), 1u);
  rig_.feed(n1_.heartbeat(), 12 * kSec);
  EXPECT_EQ(rig_.ingest().accepted(), 1u);

  test::FakeNode n2("n2", key_of(0x12), 300);
  rig_.feed(n2.birth(), 13 * kSec);
  EXPECT_EQ(rig_.ingest().accepted(), 2u) << "not refused as older than 2^60";
  ASSERT_NE(rig_.registry().find("n2"), nullptr);
}

// The command intake shared by kairos-node and kairos-sim (docs/DESIGN.md 4, 5.4).
#include <gtest/gtest.h>

#include "common/core/topic.h"
#include "firmware/intake.h"
#include "tests/unit/scratch.h"
#include "tests/unit/keys.h"

using namespace kairos;
using namespace kairos::node;

using kairos::test::key_of;

namespace {


const std::string kTopic = "kairos/v1/m/c1/n1/cmd";
constexpr std::uint64_t kNodeSession = 42;

struct Gateway {
  Signer signer{"gw", 7};
  Key key = key_of(3);
  std::uint64_t to_session = kNodeSession;
  std::int64_t expires_at_us = 0;
  Bytes command(std::int64_t execute_at_us, std::uint32_t tolerance_ms = 0, bool ping = false) {
    auto env = make_envelope("", 0, 0, 0);
    env->which_message = kairos_v1_Envelope_command_tag;
    auto& c = env->message.command;
    c.command_id = 99;
    c.to_session = to_session;
    c.expires_at_us = expires_at_us;
    c.execute_at_us = execute_at_us;
    c.late_tolerance_ms = tolerance_ms;
    if (ping) {
      c.which_action = kairos_v1_Command_ping_tag;
      c.action.ping.t1_us = 1;
    } else {
      c.which_action = kairos_v1_Command_freeze_tag;
      c.action.freeze = true;
    }
    return signer.seal(kTopic, *env, key, 1'000);
  }
};

using Kind = CommandIntake::Result::Kind;

}  // namespace

TEST(Intake, RunsAnUnscheduledCommandAtOnce) {
  Gateway gw;
  CommandIntake in("n1", gw.key, kNodeSession);
  auto r = in.receive(kTopic, gw.command(0), 5'000, false);
  ASSERT_EQ(r.kind, Kind::run) << r.detail;
  EXPECT_EQ(r.env->message.command.command_id, 99u);
  EXPECT_EQ(in.held(), 0u);
}

TEST(Intake, HoldsAScheduledCommandUntilItsTime) {
  Gateway gw;
  CommandIntake in("n1", gw.key, kNodeSession);
  auto r = in.receive(kTopic, gw.command(50'000), 10'000, false);
  ASSERT_EQ(r.kind, Kind::held);
  EXPECT_EQ(in.next_due_us(), 50'000);
  EXPECT_EQ(in.take_due(49'999), nullptr);
  std::int64_t received = 0;
  auto due = in.take_due(50'000, &received);
  ASSERT_NE(due, nullptr);
  EXPECT_EQ(received, 10'000) << "when it arrived, for the READY ack";
  EXPECT_EQ(due->message.command.command_id, 99u);
  EXPECT_EQ(in.held(), 0u);
  EXPECT_EQ(in.next_due_us(), INT64_MAX);
}

TEST(Intake, RefusesACommandLaterThanItsTolerance) {
  Gateway gw;
  CommandIntake in("n1", gw.key, kNodeSession);
  // 5 ms tolerance: 4 ms late is held (run at once), 7.5 ms late is refused
  EXPECT_EQ(in.receive(kTopic, gw.command(100'000, 5), 104'000, false).kind, Kind::held);
  auto r = in.receive(kTopic, gw.command(100'000, 5), 107'500, false);
  ASSERT_EQ(r.kind, Kind::refused);
  EXPECT_EQ(r.detail, "late by 7.5 ms");
  // default tolerance: 20 ms
  EXPECT_EQ(in.receive(kTopic, gw.command(100'000), 119'000, false).kind, Kind::held);
  EXPECT_EQ(in.receive(kTopic, gw.command(100'000), 121'000, false).kind, Kind::refused);
}

TEST(Intake, PingsAreNeverHeld) {
  Gateway gw;
  CommandIntake in("n1", gw.key, kNodeSession);
  EXPECT_EQ(in.receive(kTopic, gw.command(10'000'000, 0, true), 1, false).kind, Kind::run);
}

TEST(Intake, QuarantinedNodeRefusesScheduledCommands) {
  Gateway gw;
  CommandIntake in("n1", gw.key, kNodeSession);
  auto r = in.receive(kTopic, gw.command(50'000), 10'000, true);
  EXPECT_EQ(r.kind, Kind::refused);
  EXPECT_NE(r.detail.find("quarantined"), std::string::npos);
  EXPECT_EQ(in.held(), 0u);
}

TEST(Intake, ABadMacIsABreachAReplayIsOnlyRefused) {
  Gateway gw;
  CommandIntake in("n1", gw.key, kNodeSession);
  auto frame = gw.command(0);
  ASSERT_EQ(in.receive(kTopic, frame, 1, false).kind, Kind::run);
  auto replay = in.receive(kTopic, frame, 2, false);
  EXPECT_EQ(replay.kind, Kind::dropped);
  EXPECT_FALSE(replay.breach) << "a replay must not let whoever replays quarantine the node";
  EXPECT_EQ(in.drops()[DropReason::replay], 1u);

  CommandIntake other("n1", key_of(4), kNodeSession);
  auto forged = other.receive(kTopic, gw.command(0), 1, false);
  EXPECT_EQ(forged.kind, Kind::dropped);
  EXPECT_EQ(forged.drop, DropReason::bad_mac);
  EXPECT_TRUE(forged.breach);
  EXPECT_EQ(other.drops().total(), 1u);
}

TEST(Intake, ACommandForAnEarlierStartOfTheNodeIsStaleNotABreach) {
  Gateway gw;
  gw.to_session = kNodeSession - 1;  // captured before the node restarted
  CommandIntake in("n1", gw.key, kNodeSession);
  auto r = in.receive(kTopic, gw.command(0), 1, false);
  EXPECT_EQ(r.kind, Kind::dropped);
  EXPECT_EQ(r.drop, DropReason::stale_session);
  EXPECT_FALSE(r.breach);
  gw.to_session = kNodeSession;  // the live gateway is obeyed
  EXPECT_EQ(in.receive(kTopic, gw.command(0), 2, false).kind, Kind::run);
}

TEST(Intake, AnEndedGatewaySessionIsRefusedAcrossANodeRestart) {
  kairos::test::ScratchDir dir("intake");
  Gateway old_gw, live_gw;
  live_gw.signer = Signer("gw", 9);
  {
    SessionFile sessions(dir.file("n1.session"));
    CommandIntake in("n1", live_gw.key, kNodeSession, &sessions);
    EXPECT_EQ(in.receive(kTopic, live_gw.command(0), 1, false).kind, Kind::run);
  }
  // The node restarts; the old gateway session's command, readdressed by
  // nobody, still names the new node session only if captured after it:
  // refused by the gateway session the node persisted.
  SessionFile sessions(dir.file("n1.session"));
  EXPECT_EQ(sessions.peer("gw"), 9u);
  CommandIntake in("n1", live_gw.key, kNodeSession, &sessions);
  auto r = in.receive(kTopic, old_gw.command(0), 1, false);
  EXPECT_EQ(r.drop, DropReason::stale_session);
  EXPECT_FALSE(r.breach);
  EXPECT_EQ(in.receive(kTopic, live_gw.command(0), 2, false).kind, Kind::run);
  EXPECT_EQ(in.receive(kTopic, live_gw.command(0), 3, false).kind, Kind::run) << "the live gateway stays obeyed";
}

TEST(Intake, AnExpiredCommandIsRefused) {
  Gateway gw;
  gw.expires_at_us = 5'000;
  CommandIntake in("n1", gw.key, kNodeSession);
  EXPECT_EQ(in.receive(kTopic, gw.command(0), 4'000, false).kind, Kind::run);
  auto r = in.receive(kTopic, gw.command(0), 6'000, false);
  EXPECT_EQ(r.kind, Kind::refused);
  EXPECT_NE(r.detail.find("expired"), std::string::npos) << r.detail;
}

TEST(SessionFile, TheBootCounterOnlyRisesAndSurvivesARestart) {
  kairos::test::ScratchDir dir("intake");
  std::uint64_t first = 0;
  {
    SessionFile f(dir.file("s"));
    first = f.next_session(1'000);
    EXPECT_EQ(first, 1'000u);
  }
  SessionFile f(dir.file("s"));
  EXPECT_EQ(f.next_session(10), first + 1) << "a clock set back does not lower it";
  EXPECT_EQ(f.next_session(5'000), 5'000u) << "a clock ahead raises it";
  SessionFile none("");
  EXPECT_EQ(none.next_session(77), 77u);
}

TEST(Intake, AckCarriesStateAndNodeTimes) {
  kairos_v1_Command cmd = kairos_v1_Command_init_zero;
  cmd.command_id = 5;
  auto env = make_ack(cmd, kAckConflict, "late by 3.0 ms", 10, 0);
  EXPECT_EQ(env->which_message, kairos_v1_Envelope_ack_tag);
  EXPECT_EQ(env->message.ack.command_id, 5u);
  EXPECT_EQ(env->message.ack.state, -1);
  EXPECT_STREQ(env->message.ack.detail, "late by 3.0 ms");
  EXPECT_EQ(env->message.ack.received_at_us, 10);
}

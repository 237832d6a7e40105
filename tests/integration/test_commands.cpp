// The commands a node obeys (docs/DESIGN.md 3.7) and its escalation (docs/DESIGN.md 3.6),
// sent as signed frames through a real Mosquitto.
#include <gtest/gtest.h>

#include "common/core/frame.h"
#include "common/core/topic.h"
#include "common/io/clock.h"
#include "tests/integration/harness.h"

using namespace kairos;
using namespace kairos::test;
using namespace std::chrono_literals;

namespace {

struct Commander {
  Mesh& mesh;
  Client& client;
  Key key;
  Signer signer{"operator-test", static_cast<std::uint64_t>(wall_us())};
  std::string topic;
  std::uint64_t next_id = 100;
  Bytes last;

  std::uint64_t send(const std::function<void(kairos_v1_Command&)>& fill, const Key* with = nullptr) {
    auto env = make_envelope("", 0, 0, 0);
    env->which_message = kairos_v1_Envelope_command_tag;
    env->message.command.command_id = ++next_id;
    env->message.command.to_session = mesh.node_session("n1");
    fill(env->message.command);
    last = signer.seal(topic, *env, with ? *with : key, wall_us());
    client.publish(topic, last);
    return next_id;
  }
  // The acks for command id, decoded and verified, in arrival order.
  std::vector<kairos_v1_Ack> acks(std::uint64_t id, const std::string& ack_topic) {
    std::vector<kairos_v1_Ack> out;
    for (const auto& env : client.frames(ack_topic, key, kairos_v1_Envelope_ack_tag))
      if (env->message.ack.command_id == id) out.push_back(env->message.ack);
    return out;
  }
  std::optional<kairos_v1_Ack> ack(std::uint64_t id, const std::string& ack_topic) {
    auto all = acks(id, ack_topic);
    return all.empty() ? std::nullopt : std::optional<kairos_v1_Ack>(all.front());
  }
};

}  // namespace

TEST(Commands, PingSetOutputFreezeQuarantineHealReload) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  mesh.start_gateway();
  const std::string out = dir.file("out.txt");
  auto write_config = [&](const std::string& extra) {
    dir.write("n1.toml", mesh.node_config("n1", "c1", "waveform = \"constant\"\noffset = 0.5\n", "heartbeat_period_s = 0.3\n" + extra) +
                             "\n[outputs.log]\nkind = \"text\"\nsource = \"local:main\"\nfile = \"" + out +
                             "\"\ninterval_s = 0.05\n");
  };
  write_config("");
  Process node({bin("kairos-node"), "--config", dir.file("n1.toml")}, dir.file("n1.log"));
  auto status = [&] {
    auto n = mesh.node_info("n1");
    return n ? n->status : kairos_v1_NodeStatus_STATUS_UNSPECIFIED;
  };
  ASSERT_TRUE(eventually([&] { return status() == kairos_v1_NodeStatus_COMPLIANT; })) << read_text(dir.file("n1.log"));
  const auto session = mesh.node_info("n1")->session_id;

  Client c(broker.uri());
  const auto ack_topic = node_topic(mesh.name(), "c1", "n1", TopicKind::ack);
  c.subscribe(ack_topic);
  Commander cmd{mesh, c, mesh.node_key("n1"), Signer("operator-test", static_cast<std::uint64_t>(wall_us())), node_topic(mesh.name(), "c1", "n1", TopicKind::cmd), 100, {}};
  auto wait_ack = [&](std::uint64_t id) {
    std::optional<kairos_v1_Ack> a;
    c.wait_for([&](const auto&) { return (a = cmd.ack(id, ack_topic)).has_value(); }, 20s);
    return a;
  };
  // The state of the ack to a command; -2 when no ack came.
  auto state_of = [&](std::uint64_t id) {
    auto a = wait_ack(id);
    return a ? a->state : -2;
  };

  // ping: READY with the receive and reply times of the node's clock
  auto before = wall_us();
  auto id = cmd.send([](auto& k) {
    k.which_action = kairos_v1_Command_ping_tag;
    k.action.ping.t1_us = 1;
  });
  auto a = wait_ack(id);
  ASSERT_TRUE(a) << read_text(dir.file("n1.log"));
  EXPECT_EQ(a->state, 1);
  EXPECT_GE(a->received_at_us, before - 5'000'000);
  EXPECT_GE(a->executed_at_us, a->received_at_us);

  // set_output overrides the output's source
  id = cmd.send([](auto& k) {
    k.which_action = kairos_v1_Command_set_output_tag;
    std::snprintf(k.action.set_output.output, sizeof k.action.set_output.output, "log");
    k.action.set_output.has_z = true;
    k.action.set_output.z.re = 0.125f;
    k.action.set_output.z.im = 0.5f;
    k.action.set_output.c = 0.75f;
    k.action.set_output.hold_ms = 60'000;
  });
  ASSERT_EQ(wait_ack(id)->state, 1);
  EXPECT_TRUE(eventually([&] { return read_text(out).find("log re=0.1250 im=0.5000 c=0.7500") != std::string::npos; }));

  // an output that does not exist: CONFLICT, and no quarantine when not mandatory
  id = cmd.send([](auto& k) {
    k.which_action = kairos_v1_Command_set_output_tag;
    std::snprintf(k.action.set_output.output, sizeof k.action.set_output.output, "siren");
  });
  a = wait_ack(id);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->state, -1);
  EXPECT_NE(std::string(a->detail).find("no output 'siren'"), std::string::npos);

  // freeze / thaw
  ASSERT_EQ(state_of(cmd.send([](auto& k) { k.which_action = kairos_v1_Command_freeze_tag; k.action.freeze = true; })), 1) << read_text(dir.file("n1.log"));
  EXPECT_TRUE(eventually([&] { return status() == kairos_v1_NodeStatus_FROZEN; }));
  ASSERT_EQ(state_of(cmd.send([](auto& k) { k.which_action = kairos_v1_Command_thaw_tag; k.action.thaw = true; })), 1) << read_text(dir.file("n1.log"));
  EXPECT_TRUE(eventually([&] { return status() == kairos_v1_NodeStatus_COMPLIANT; }));

  // a command with a bad MAC: CAT-1, quarantined, commands refused but heal
  Key wrong = cmd.key;
  wrong.bytes[5] ^= 0x40;
  cmd.send([](auto& k) { k.which_action = kairos_v1_Command_thaw_tag; k.action.thaw = true; }, &wrong);
  EXPECT_TRUE(eventually([&] { return status() == kairos_v1_NodeStatus_QUARANTINED; })) << read_text(dir.file("n1.log"));
  a = wait_ack(cmd.send([](auto& k) { k.which_action = kairos_v1_Command_rebirth_tag; k.action.rebirth = true; }));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->state, -1);
  EXPECT_NE(std::string(a->detail).find("quarantined"), std::string::npos);
  ASSERT_EQ(state_of(cmd.send([](auto& k) { k.which_action = kairos_v1_Command_heal_tag; k.action.heal = true; })), 1) << read_text(dir.file("n1.log"));
  EXPECT_TRUE(eventually([&] { return status() == kairos_v1_NodeStatus_COMPLIANT; }));

  // a replayed command: refused and counted, but no breach, so that whoever
  // can replay frames cannot quarantine the node with them (docs/DESIGN.md 3.6)
  c.publish(cmd.topic, cmd.last);
  EXPECT_TRUE(eventually([&] { return read_text(dir.file("n1.log")).find(": replay (") != std::string::npos; }))
      << read_text(dir.file("n1.log"));
  ASSERT_EQ(state_of(cmd.send([](auto& k) { k.which_action = kairos_v1_Command_thaw_tag; k.action.thaw = true; })), 1)
      << "still obeyed\n" << read_text(dir.file("n1.log"));
  EXPECT_EQ(status(), kairos_v1_NodeStatus_COMPLIANT);

  // config_reload: a broken file is refused and the node keeps running as it
  // was. The change under the running node is a CAT-1 breach meanwhile.
  dir.write("n1.toml", read_text(dir.file("n1.toml")) + "\nbogus_key = 1\n");
  EXPECT_TRUE(eventually([&] {
    return read_text(dir.file("n1.log")).find("config changed under the running node") != std::string::npos;
  })) << read_text(dir.file("n1.log"));
  EXPECT_TRUE(eventually([&] { return status() == kairos_v1_NodeStatus_QUARANTINED; }));
  a = wait_ack(cmd.send([](auto& k) { k.which_action = kairos_v1_Command_config_reload_tag; k.action.config_reload = true; }));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->state, -1);
  EXPECT_NE(std::string(a->detail).find("bogus_key"), std::string::npos) << a->detail;
  EXPECT_TRUE(node.running());
  EXPECT_EQ(mesh.node_info("n1")->session_id, session);
  // a good one is taken: the node starts over on it (a new session)
  write_config("phase_period_s = 0.5\n");
  a = wait_ack(cmd.send([](auto& k) { k.which_action = kairos_v1_Command_config_reload_tag; k.action.config_reload = true; }));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->state, 1);
  EXPECT_TRUE(eventually([&] {
    auto n = mesh.node_info("n1");
    return n && n->session_id != session && n->online;
  }, 15s)) << read_text(dir.file("n1.log"));
  EXPECT_TRUE(node.running()) << "same process, started over";
  EXPECT_TRUE(eventually([&] { return status() == kairos_v1_NodeStatus_COMPLIANT; })) << "a fresh start, out of quarantine";
}

TEST(Commands, ScheduledCommandsAreHeldAndRunAtTheirTime) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  const std::string out = dir.file("out.txt");
  dir.write("n1.toml", mesh.node_config("n1", "c1", "waveform = \"constant\"\noffset = 0.5\n") +
                           "\n[outputs.log]\nkind = \"text\"\nsource = \"local:main\"\nfile = \"" + out +
                           "\"\ninterval_s = 0.05\n");
  Process node({bin("kairos-node"), "--config", dir.file("n1.toml")}, dir.file("n1.log"));
  Client c(broker.uri());
  const auto ack_topic = node_topic(mesh.name(), "c1", "n1", TopicKind::ack);
  c.subscribe(ack_topic);
  Commander cmd{mesh, c, mesh.node_key("n1"), Signer("operator-test", static_cast<std::uint64_t>(wall_us())),
                node_topic(mesh.name(), "c1", "n1", TopicKind::cmd), 100, {}};
  auto acks_of = [&](std::uint64_t id) { return cmd.acks(id, ack_topic); };
  // Wait until the node takes commands at all (a ping answers).
  std::uint64_t ping = 0;
  ASSERT_TRUE(eventually([&] {
    ping = cmd.send([](auto& k) { k.which_action = kairos_v1_Command_ping_tag; });
    return c.wait_for([&](const auto&) { return !acks_of(ping).empty(); }, 500ms);
  }, 15s)) << read_text(dir.file("n1.log"));

  // Due in 400 ms: TRANSIT at once, READY when it ran, at its time.
  const std::int64_t at = wall_us() + 400'000;
  auto id = cmd.send([&](auto& k) {
    k.execute_at_us = at;
    k.which_action = kairos_v1_Command_set_output_tag;
    std::snprintf(k.action.set_output.output, sizeof k.action.set_output.output, "log");
    k.action.set_output.has_z = true;
    k.action.set_output.z.re = 0.25f;
    k.action.set_output.c = 1.0f;
    k.action.set_output.hold_ms = 60'000;
  });
  ASSERT_TRUE(c.wait_for([&](const auto&) { return acks_of(id).size() >= 2; }, 10s)) << read_text(dir.file("n1.log"));
  auto acks = acks_of(id);
  EXPECT_EQ(acks[0].state, 0) << "held (TRANSIT)";
  EXPECT_EQ(acks[1].state, 1);
  // Same machine, same clock: executed at its time (a loaded 2-core machine
  // may wake late, never early).
  EXPECT_GE(acks[1].executed_at_us, at);
  EXPECT_LT(acks[1].executed_at_us - at, 50'000) << "executed " << (acks[1].executed_at_us - at) << " us after its time";
  RecordProperty("late_us", static_cast<int>(acks[1].executed_at_us - at));
  EXPECT_TRUE(eventually([&] { return read_text(out).find("log re=0.2500") != std::string::npos; }));

  // Already 100 ms late on arrival: not run, CONFLICT with the lateness.
  auto late = cmd.send([&](auto& k) {
    k.execute_at_us = wall_us() - 100'000;
    k.late_tolerance_ms = 20;
    k.which_action = kairos_v1_Command_thaw_tag;
    k.action.thaw = true;
  });
  ASSERT_TRUE(c.wait_for([&](const auto&) { return !acks_of(late).empty(); }, 10s));
  auto la = acks_of(late)[0];
  EXPECT_EQ(la.state, -1);
  EXPECT_NE(std::string(la.detail).find("late by 10"), std::string::npos) << la.detail;
  EXPECT_EQ(la.executed_at_us, 0);
}

// Broker restarts: nodes and gateway reconnect with backoff, resubscribe and
// re-announce themselves.
#include <gtest/gtest.h>

#include "common/core/frame.h"
#include "common/core/topic.h"
#include "tests/integration/harness.h"

using namespace kairos;
using namespace kairos::test;
using namespace std::chrono_literals;

static std::string seen_topics(const Client& c) {
  std::string s = "seen:";
  for (const auto& m : c.seen()) s += " " + m.topic;
  return s;
}

TEST(Reconnect, BrokerRestartIsSurvived) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  mesh.start_gateway();
  mesh.start_node("n1", "c1", "waveform = \"sine\"\n", "heartbeat_period_s = 0.5");
  ASSERT_TRUE(eventually([&] {
    auto n = mesh.node_info("n1");
    return n && n->online && n->phase_valid;
  })) << mesh.gateway().output();

  broker.kill();
  broker.start();  // same port, empty broker: no retained messages survive

  // The node reconnects and publishes its birth again; the gateway sees it.
  Client c(broker.uri());
  auto birth = node_topic(mesh.name(), "c1", "n1", TopicKind::birth);
  c.subscribe(birth);
  ASSERT_TRUE(c.wait_for_topic(birth, 20s)) << mesh.node("n1").output() << seen_topics(c);
  ASSERT_TRUE(eventually([&] {
    auto n = mesh.node_info("n1");
    return n && n->online;
  }, 20s)) << mesh.gateway().output();

  // The node resubscribed to its command topic: a signed rebirth command
  // makes it publish its birth once more.
  c.clear();
  auto cmd_topic = node_topic(mesh.name(), "c1", "n1", TopicKind::cmd);
  auto env = make_envelope("tester", 99, 1, 0);
  env->which_message = kairos_v1_Envelope_command_tag;
  env->message.command.command_id = 1;
  env->message.command.to_session = mesh.node_session("n1");
  env->message.command.which_action = kairos_v1_Command_rebirth_tag;
  env->message.command.action.rebirth = true;
  c.publish(cmd_topic, seal(cmd_topic, *env, mesh.node_key("n1")));
  EXPECT_TRUE(c.wait_for_topic(birth)) << mesh.node("n1").output();
}

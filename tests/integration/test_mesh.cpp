// Three real nodes and a real gateway through a real Mosquitto.
#include <gtest/gtest.h>
#include <signal.h>

#include <cmath>

#include "common/core/frame.h"
#include "common/core/topic.h"
#include "common/io/clock.h"
#include "tests/integration/harness.h"

using namespace kairos;
using namespace kairos::test;
using namespace std::chrono_literals;

namespace {

std::string constant(double v) { return "waveform = \"constant\"\noffset = " + std::to_string(v) + "\n"; }

bool online_with_phase(Mesh& mesh, std::initializer_list<const char*> ids) {
  auto nodes = mesh.nodes();
  for (const char* id : ids) {
    bool ok = false;
    for (const auto& n : nodes)
      if (std::string(n.id) == id && n.online && n.phase_valid) ok = true;
    if (!ok) return false;
  }
  return true;
}

bool is_offline(Mesh& mesh, const std::string& id) {
  auto n = mesh.node_info(id);
  return n && !n->online && n->status == kairos_v1_NodeStatus_OFFLINE;
}

// The newest verified _mesh/state seen by the client.
std::optional<kairos_v1_MeshState> latest_mesh_state(const Client& c, const Mesh& mesh) {
  auto all = c.frames(mesh_state_topic(mesh.name()), mesh.broadcast_key(), kairos_v1_Envelope_mesh_state_tag);
  if (all.empty()) return std::nullopt;
  return all.back()->message.mesh_state;
}

}  // namespace

TEST(Mesh, ThreeNodesRegisterAndTheMeshStateReflectsThem) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  mesh.start_gateway();
  // Long heartbeat periods: an OFFLINE seen in this test can only come from
  // the Will or the clean shutdown, never from missed heartbeats.
  const std::string slow = "heartbeat_period_s = 30\nphase_period_s = 0.2";
  mesh.start_node("low", "c1", constant(0.2), slow);
  mesh.start_node("mid", "c1", constant(0.5), slow);
  mesh.start_node("high", "c2", constant(0.8), slow);
  ASSERT_TRUE(eventually([&] { return online_with_phase(mesh, {"low", "mid", "high"}); }))
      << mesh.gateway().output();

  auto nodes = mesh.nodes();
  ASSERT_EQ(nodes.size(), 3u);
  for (const auto& n : nodes) {
    EXPECT_EQ(n.status, kairos_v1_NodeStatus_COMPLIANT) << n.id;
    EXPECT_FLOAT_EQ(n.c, 1.0f) << n.id;  // constants are fully coherent
    double expect = std::string(n.id) == "low" ? 0.2 : std::string(n.id) == "mid" ? 0.5 : 0.8;
    EXPECT_NEAR(n.z.re, expect, 1e-6) << n.id;
    EXPECT_EQ(n.context_hash.size, 32u);
  }

  Client watcher(broker.uri());
  watcher.subscribe(mesh_state_topic(mesh.name()));
  ASSERT_TRUE(watcher.wait_for([&](const auto&) {
    auto s = latest_mesh_state(watcher, mesh);
    return s && s->nodes_in_sync == 3;
  }, 10s));
  auto s = *latest_mesh_state(watcher, mesh);
  EXPECT_EQ(s.nodes_online, 3u);
  EXPECT_NEAR(s.z.re, 0.5, 0.03);  // weights differ a little with the phases' ages
  EXPECT_NEAR(s.coherence, 1.0, 1e-6);
  EXPECT_NEAR(s.agreement, 1 - 2 * std::sqrt(0.06), 0.03);
  EXPECT_TRUE(s.unified);
  EXPECT_EQ(s.mode, kairos_v1_MeshMode_FULL);

  // SIGKILL: the broker publishes the node's Will, the gateway marks it OFFLINE.
  mesh.node("high").signal(SIGKILL);
  ASSERT_TRUE(eventually([&] { return is_offline(mesh, "high"); }, 10s)) << mesh.gateway().output();
  watcher.clear();
  ASSERT_TRUE(watcher.wait_for([&](const auto&) {
    auto st = latest_mesh_state(watcher, mesh);
    return st && st->nodes_in_sync == 2;
  }, 10s));
  auto after = *latest_mesh_state(watcher, mesh);
  EXPECT_NEAR(after.z.re, 0.35, 0.03);
  EXPECT_NEAR(after.agreement, 0.7, 0.03);
  EXPECT_EQ(after.nodes_online, 2u);

  // SIGTERM: a clean shutdown publishes offline at once and exits 0.
  mesh.node("mid").signal(SIGTERM);
  auto st = mesh.node("mid").wait(10s);
  ASSERT_TRUE(st.has_value());
  EXPECT_EQ(*st, 0);
  ASSERT_TRUE(eventually([&] { return is_offline(mesh, "mid"); }, 5s));
  EXPECT_TRUE(mesh.node_info("low")->online);
}

TEST(Mesh, MissedHeartbeatsTurnANodeOffline) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  mesh.start_gateway();
  mesh.start_node("n1", "c1", constant(0.3), "heartbeat_period_s = 0.3");
  ASSERT_TRUE(eventually([&] { return online_with_phase(mesh, {"n1"}); }));
  // Frozen, the node keeps its TCP connection (keepalive 10 s, so no Will
  // for 15 s) but sends no heartbeat: OFFLINE after 3 missed periods.
  mesh.node("n1").signal(SIGSTOP);
  EXPECT_TRUE(eventually([&] { return is_offline(mesh, "n1"); }, 8s)) << mesh.gateway().output();
  mesh.node("n1").signal(SIGCONT);
  EXPECT_TRUE(eventually([&] {
    auto n = mesh.node_info("n1");
    return n && n->online;
  }, 8s));
}

TEST(Mesh, StaleWillOfAnEarlierSessionIsIgnored) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  mesh.start_gateway();
  Key key = mesh.node_key("n1");
  Client raw(broker.uri());
  // An old session's Will, delivered after the node's newer birth.
  auto old_state = [&](std::uint64_t session, std::uint64_t seq, bool online) {
    auto env = make_envelope("n1", session, seq, 0);
    env->which_message = kairos_v1_Envelope_state_tag;
    env->message.state.online = online;
    env->message.state.session_id = session;
    return seal(node_topic(mesh.name(), "c1", "n1", TopicKind::state), *env, key);
  };
  auto birth = [&](std::uint64_t session) {
    auto env = make_envelope("n1", session, 1, 0);
    env->which_message = kairos_v1_Envelope_birth_tag;
    set_string(env->message.birth.cluster, "c1");
    set_string(env->message.birth.board, "generic-linux");
    env->message.birth.device_class = kairos_v1_DeviceClass_CLASS_E;
    env->message.birth.heartbeat_period_ms = 60'000;
    return seal(node_topic(mesh.name(), "c1", "n1", TopicKind::birth), *env, key);
  };
  raw.publish(node_topic(mesh.name(), "c1", "n1", TopicKind::birth), birth(100));
  ASSERT_TRUE(eventually([&] { return mesh.node_info("n1").has_value(); }));
  raw.publish(node_topic(mesh.name(), "c1", "n1", TopicKind::birth), birth(200));  // the node rebooted
  ASSERT_TRUE(eventually([&] { return mesh.node_info("n1")->session_id == 200; }));
  raw.publish(node_topic(mesh.name(), "c1", "n1", TopicKind::state), old_state(100, 1ULL << 40, false));
  ASSERT_TRUE(eventually([&] { return mesh.drops("stale_session") == 1; }));
  EXPECT_TRUE(mesh.node_info("n1")->online);
  // the current session's Will does count
  raw.publish(node_topic(mesh.name(), "c1", "n1", TopicKind::state), old_state(200, 1ULL << 40, false));
  EXPECT_TRUE(eventually([&] { return !mesh.node_info("n1")->online; }));
}

TEST(Mesh, CleanShutdownAfterAFiredWillIsStillImmediate) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  mesh.start_gateway();
  mesh.start_node("n1", "c1", constant(0.4), "heartbeat_period_s = 30");
  ASSERT_TRUE(eventually([&] { return online_with_phase(mesh, {"n1"}); }));
  {
    // An impostor with the node's client id takes the session over: the
    // broker drops the node and publishes its Will.
    MqttOptions o;
    o.uri = broker.uri();
    o.client_id = mesh.name() + "-n1";
    MqttLink impostor(o);
    ASSERT_TRUE(eventually([&] {
      impostor.service(mono_us());
      impostor.wait(mono_us() + 20'000);
      return impostor.connected();
    }));
    ASSERT_TRUE(eventually([&] { return is_offline(mesh, "n1"); }, 10s)) << mesh.gateway().output();
  }
  // The node reconnects with a fresh Will; a clean stop is reported at once.
  ASSERT_TRUE(eventually([&] {
    auto n = mesh.node_info("n1");
    return n && n->online;
  }, 15s)) << mesh.node("n1").output();
  mesh.node("n1").signal(SIGTERM);
  ASSERT_EQ(mesh.node("n1").wait(10s).value_or(-1), 0);
  EXPECT_TRUE(eventually([&] { return is_offline(mesh, "n1"); }, 5s)) << mesh.gateway().output();
  EXPECT_EQ(mesh.drops("replay"), 0u);
}

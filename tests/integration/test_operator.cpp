// The operator's console (docs/DESIGN.md 5.8) and the degradation modes (docs/DESIGN.md 5.6):
// kairosctl against a real broker, gateway and kairos-sim nodes.
#include <gtest/gtest.h>
#include <signal.h>

#include "common/core/topic.h"
#include "tests/integration/harness.h"

using namespace kairos;
using namespace kairos::test;
using namespace std::chrono_literals;

namespace {

std::unique_ptr<Process> sim(const TempDir& dir, Mesh& mesh, const std::string& prefix, int nodes,
                             std::vector<std::string> more = {}) {
  more.insert(more.begin(), {"--nodes", std::to_string(nodes), "--prefix", prefix, "--classes", "A", "--phase-period-s",
                             "0", "--hb-period-s", "0.5"});
  return std::make_unique<Process>(mesh.sim_argv(more), dir.file(prefix + ".log"));
}

std::size_t online(Mesh& mesh) {
  auto s = mesh.status();
  return s ? s->nodes_online : 0;
}

std::string mode(Mesh& mesh) {
  auto s = mesh.status();
  return s ? std::string(to_string(s->mesh_state.mode)) : "";
}

std::string sha_hex(const std::string& s) {
  auto d = sha256(ByteView(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()));
  return to_hex(ByteView(d.data(), d.size()));
}

int count_rows(const std::string& db_path, const std::string& sql) {
  return std::stoi(query_db(db_path, sql).at(0).at(0));
}

}  // namespace

TEST(Operator, BroadcastAskFreezeThawModeAndTheStatusBox) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  mesh.start_gateway("[liveness]\nheartbeat_period_s = 0.5\n[sectors.north]\nclusters = [\"c1\"]\n"
                     "[sectors.south]\nclusters = [\"c2\"]\n");
  auto honest = sim(dir, mesh, "o", 6, {"--clusters", "2"});
  auto liar = sim(dir, mesh, "x", 1, {"--clusters", "1", "--fail", "lying=1"});
  ASSERT_TRUE(eventually([&] { return online(mesh) == 7; }, 30s)) << mesh.gateway().output();
  auto ctl = [&](const std::vector<std::string>& args) { return mesh.kairosctl(args); };

  auto r = ctl({"broadcast", "maintenance at noon", "--ack"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("broadcast: 7 of 7 nodes acknowledged READY"), std::string::npos) << r.output;
  r = ctl({"broadcast", "fire and forget"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("broadcast: sent to 7 of 7 nodes"), std::string::npos) << r.output;

  // Every node answers; identical answers are grouped, the odd one stands apart.
  r = ctl({"ask", "what is this", "--sample", "7", "--handler", "hash"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("7 asked, 7 answered"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("    6 x  " + sha_hex("what is this")), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("    1 x  lie:" + sha_hex("what is this") + "   (x-00001)"), std::string::npos) << r.output;
  r = ctl({"ask", "q", "--sample", "3", "--handler", "echo", "--json"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("\"asked\":3,\"answered\":3"), std::string::npos) << r.output;
  r = ctl({"ask", "q", "--handler", "transcode"});
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("no online node offers job:transcode"), std::string::npos) << r.output;

  // freeze: the snapshot first, then every node in scope to its safe state.
  r = ctl({"freeze", "cluster:c1"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("snapshot 1 written"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("freeze: 4 of 4 nodes acknowledged READY"), std::string::npos) << r.output;
  EXPECT_EQ(count_rows(dir.file("gateway.db"), "SELECT COUNT(*) FROM snapshots WHERE kind = 'freeze' AND scope = "
                                               "'cluster:c1' AND body LIKE '%\"id\":\"o-00001\"%'"),
            1);
  ASSERT_TRUE(eventually([&] {
    auto n = mesh.node_info("o-00001");
    return n && n->status == kairos_v1_NodeStatus_FROZEN;
  })) << "a frozen node says so in its heartbeats";
  auto other = mesh.node_info("o-00002");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, kairos_v1_NodeStatus_COMPLIANT) << "c2 is out of scope";
  r = ctl({"thaw", "--json"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("\"verb\":\"thaw\",\"targets\":7,\"sent\":7"), std::string::npos) << r.output;
  r = ctl({"freeze", "cluster:"});
  EXPECT_EQ(r.status, 2) << r.output;

  r = ctl({"status"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("| agents active     7 / 7"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("| sectors healthy   2 / 2"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("| mean impedance    "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("| conflicts (1 h)   0"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("| mode              FULL (100% active)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("| last cascade      none yet"), std::string::npos) << r.output;
  r = ctl({"mode"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("mode FULL: 7 of 7 nodes active (100%)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("restrictions: none"), std::string::npos) << r.output;
}

TEST(Operator, DegradationModesAreEnforced) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  mesh.start_gateway("[liveness]\nheartbeat_period_s = 0.5\n[clock]\nping_period_s = 0.5\nfast_ping_period_s = 0.2\n");
  auto a1 = sim(dir, mesh, "a1", 2);
  auto a2 = sim(dir, mesh, "a2", 2);
  auto b = sim(dir, mesh, "b", 2);
  auto c = sim(dir, mesh, "c", 4);
  ASSERT_TRUE(eventually([&] { return online(mesh) == 10; }, 30s)) << mesh.gateway().output();
  Client alerts(broker.uri());
  alerts.subscribe(alert_topic(mesh.name()));
  auto ctl = [&](const std::vector<std::string>& args) { return mesh.kairosctl(args); };

  c->signal(SIGKILL);  // 6 of 10 active
  ASSERT_TRUE(eventually([&] { return online(mesh) == 6 && mode(mesh) == "DEGRADED_MODERATE"; }, 20s)) << mode(mesh);
  auto r = ctl({"mode"});
  EXPECT_NE(r.output.find("no scatter beyond 1000 nodes"), std::string::npos) << r.output;

  b->signal(SIGKILL);  // 4 of 10
  ASSERT_TRUE(eventually([&] { return online(mesh) == 4 && mode(mesh) == "DEGRADED_SEVERE"; }, 20s)) << mode(mesh);
  ASSERT_TRUE(eventually([&] {
    for (auto& n : mesh.nodes())
      if (n.online && n.clock_samples < 2) return false;
    return true;
  }));
  r = ctl({"schedule", "thaw", "--in", "1500", "--targets", "all"});
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("DEGRADED_SEVERE (40% of nodes active): a mesh-wide operation needs --confirm"),
            std::string::npos)
      << r.output;
  r = ctl({"schedule", "thaw", "--in", "1500", "--targets", "all", "--confirm"});
  EXPECT_EQ(r.status, 0) << r.output;
  r = ctl({"broadcast", "hello", "--ack"});
  EXPECT_EQ(r.status, 1) << r.output;
  r = ctl({"broadcast", "hello", "--ack", "--targets", "a1-00001"});
  EXPECT_EQ(r.status, 0) << "not mesh-wide: allowed\n" << r.output;

  a2->signal(SIGKILL);  // 2 of 10: EMERGENCY
  ASSERT_TRUE(eventually([&] { return online(mesh) == 2 && mode(mesh) == "EMERGENCY"; }, 20s)) << mode(mesh);
  // Operators are alerted and the state is on disk.
  ASSERT_TRUE(alerts.wait_for([&](const std::vector<Inbound>&) {
    for (const auto& e : alerts.frames(alert_topic(mesh.name()), mesh.operator_key(), kairos_v1_Envelope_alert_tag))
      if (std::string(e->message.alert.type) == "EMERGENCY") return true;
    return false;
  }));
  EXPECT_TRUE(eventually([&] {
    return count_rows(dir.file("gateway.db"), "SELECT COUNT(*) FROM snapshots WHERE kind = 'emergency'") == 1;
  }));
  // Automation halted: work and commands need confirmation; freezing does not.
  r = ctl({"delegate", "echo", "--payload", "x"});
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("EMERGENCY (20% of nodes active): automation is halted; add --confirm"), std::string::npos)
      << r.output;
  r = ctl({"freeze"});
  EXPECT_EQ(r.status, 0) << r.output;
  r = ctl({"thaw"});
  EXPECT_EQ(r.status, 1) << r.output;
  r = ctl({"thaw", "--confirm"});
  EXPECT_EQ(r.status, 0) << r.output;
  r = ctl({"ask", "q", "--handler", "echo", "--sample", "2"});
  EXPECT_EQ(r.status, 1) << r.output;
  r = ctl({"ask", "q", "--handler", "echo", "--sample", "2", "--confirm"});
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("2 asked, 2 answered"), std::string::npos) << r.output;
  r = ctl({"delegate", "echo", "--payload", "x", "--confirm", "--wait"});
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find(": DONE"), std::string::npos) << r.output;

  // Nodes back: the mode follows.
  b = sim(dir, mesh, "b", 2);
  c = sim(dir, mesh, "c", 4);
  a2 = sim(dir, mesh, "a2", 2);
  ASSERT_TRUE(eventually([&] { return mode(mesh) == "FULL"; }, 30s)) << mode(mesh);
  r = ctl({"mode"});
  EXPECT_NE(r.output.find("restrictions: none"), std::string::npos) << r.output;
}

// The conversational console (docs/CONSOLE.md) against a live mesh: a real
// Mosquitto, the gateway and real nodes. kairosctl ask-mesh shows the verb
// it will run, asks before it changes the mesh, and routes around a node
// (quarantine) or a cluster (its breaker held OPEN), both kept across a
// gateway restart.
#include <gtest/gtest.h>

#include "tests/integration/harness.h"

using namespace kairos;
using namespace kairos::test;
using namespace std::chrono_literals;

namespace {

// kairosctl ask-mesh with `answer` on its standard input.
RunResult ask(const TempDir& dir, Mesh& mesh, const std::string& question, const std::string& answer,
              const std::vector<std::string>& more = {}) {
  std::string line = "printf '" + answer + "' | ";
  auto argv = mesh.kairosctl_argv({"ask-mesh", question});
  argv.insert(argv.end(), more.begin(), more.end());
  for (const auto& a : argv) {
    line += " '";
    for (char c : a) line += c == '\'' ? std::string("'\\''") : std::string(1, c);
    line += "'";
  }
  return run_command({"sh", "-c", line}, dir.path(), 60s);
}

}  // namespace

TEST(AskMesh, ShowsTheVerbAsksFirstAndRoutesAroundANodeAndACluster) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  mesh.start_gateway();
  mesh.start_node("n1", "east", "waveform = \"constant\"\noffset = 0.5\n", "heartbeat_period_s = 0.3\n");
  mesh.start_node("n2", "west", "waveform = \"constant\"\noffset = 0.5\n", "heartbeat_period_s = 0.3\n");
  ASSERT_TRUE(eventually([&] { return mesh.nodes().size() == 2; }, 20s));

  // A read runs at once, its verb shown.
  auto r = ask(dir, mesh, "what's happening in sector east?", "");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("kairosctl nodes --cluster east"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("n1"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("n2"), std::string::npos) << r.output;

  // An order: shown, asked; "n" runs nothing.
  r = ask(dir, mesh, "route around n1", "n\\n");
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("this changes the mesh: route around node n1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("kairosctl quarantine n1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("not run"), std::string::npos) << r.output;
  EXPECT_NE(mesh.node_info("n1")->status, kairos_v1_NodeStatus_QUARANTINED);
  // "y": quarantined, and the audit log says who.
  r = ask(dir, mesh, "route around n1", "y\\n");
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(mesh.node_info("n1")->status, kairos_v1_NodeStatus_QUARANTINED);
  // A cluster: its breaker held OPEN, without asking (--yes).
  r = ask(dir, mesh, "route around the west cluster", "", {"--yes"});
  ASSERT_EQ(r.status, 0) << r.output;
  auto breakers = mesh.kairosctl({"--json", "breakers"});
  EXPECT_NE(breakers.output.find("\"name\":\"west\",\"state\":\"OPEN\""), std::string::npos) << breakers.output;
  EXPECT_NE(breakers.output.find("\"held\":true"), std::string::npos) << breakers.output;
  // A schedule passes both by: n1 quarantined, n2 behind the held breaker.
  auto s = mesh.kairosctl({"--json", "schedule", "thaw", "--in", "1500"});
  EXPECT_NE(s.output.find("\"skipped\":2"), std::string::npos) << s.output;

  // Both kept across a gateway's crash (killed: no flush of the nodes' rows).
  mesh.stop_gateway();
  mesh.start_gateway();
  ASSERT_TRUE(eventually([&] {
    auto n = mesh.node_info("n1");
    return n && n->online;
  }, 20s));
  EXPECT_EQ(mesh.node_info("n1")->status, kairos_v1_NodeStatus_QUARANTINED) << mesh.gateway().output();
  breakers = mesh.kairosctl({"--json", "breakers"});
  EXPECT_NE(breakers.output.find("\"held\":true"), std::string::npos) << breakers.output;

  // And back.
  ASSERT_EQ(ask(dir, mesh, "stop routing around n1", "", {"--yes"}).status, 0);
  ASSERT_EQ(ask(dir, mesh, "bring cluster west back", "", {"--yes"}).status, 0);
  EXPECT_NE(mesh.node_info("n1")->status, kairos_v1_NodeStatus_QUARANTINED);
  breakers = mesh.kairosctl({"--json", "breakers"});
  EXPECT_EQ(breakers.output.find("\"held\":true"), std::string::npos) << breakers.output;
  auto log = mesh.kairosctl({"operators", "log"});
  EXPECT_NE(log.output.find("quarantine"), std::string::npos) << log.output;
  EXPECT_NE(log.output.find("hold west"), std::string::npos) << log.output;

  // Not understood: the closest verbs, exit 2.
  r = ask(dir, mesh, "show the brekers", "");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("not understood"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("breakers"), std::string::npos) << r.output;
}

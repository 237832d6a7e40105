// schedule(command, targets, T) end to end (SPEC 5.4) with real nodes: the
// gateway plans each send from the node's lead, the nodes hold the command
// until T on their own clocks, and kairosctl prints the gathered result.
#include <gtest/gtest.h>

#include "tests/integration/harness.h"

using namespace kairos;
using namespace kairos::test;
using namespace std::chrono_literals;

namespace {

RunResult ctl(Mesh& mesh, const Broker& broker, const TempDir& dir, std::vector<std::string> args) {
  std::vector<std::string> argv{bin("kairosctl"), "--broker", broker.uri(), "--mesh", mesh.name(), "--key",
                                mesh.keys_dir() + "/operator.key"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv, dir.path(), 60s);
}

void start_synced_mesh(Mesh& mesh, int nodes) {
  mesh.start_gateway("[clock]\nping_period_s = 0.3\nfast_ping_period_s = 0.1\n");
  for (int i = 0; i < nodes; ++i)
    mesh.start_node("n" + std::to_string(i), i % 2 ? "c2" : "c1",
                    "waveform = \"sine\"\n\n[outputs.text]\nkind = \"text\"\nsource = \"local:main\"\n",
                    "heartbeat_period_s = 0.5\n");
  for (int i = 0; i < nodes; ++i) {
    ASSERT_TRUE(eventually([&] {
      auto n = mesh.node_info("n" + std::to_string(i));
      return n && n->online && n->clock_samples >= 4 && n->processing_ms < 50;  // measured, not the class base
    }, 30s)) << mesh.gateway().output();
  }
}

}  // namespace

TEST(Schedule, CommandLandsOnEveryNodeAtT) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  start_synced_mesh(mesh, 3);
  auto r = ctl(mesh, broker, dir, {"--json", "schedule", "set_output", "--output", "text", "--value", "0,1,0.5",
                                   "--in", "800", "--targets", "all"});
  ASSERT_EQ(r.status, 0) << r.output << mesh.gateway().output();
  EXPECT_NE(r.output.find("\"verdict\":\"PROCEED\""), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"targets\":3,\"sent\":3,\"skipped\":0,\"ready\":3"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"hits\":3"), std::string::npos) << r.output;
  // Each node ran it once, held until T: TRANSIT then READY.
  for (int i = 0; i < 3; ++i) {
    auto& node = mesh.node("n" + std::to_string(i));
    EXPECT_TRUE(eventually([&] { return node.output().find("text re=0.0000 im=1.0000 c=0.5000") != std::string::npos; }))
        << "n" << i << " drove its output to the value:\n" << node.output();
  }
  // The human form, with the wave strategy (one wave per cluster).
  r = ctl(mesh, broker, dir, {"schedule", "freeze", "--in", "600", "--strategy", "wave"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("(wave)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("wave        cluster c1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("wave        cluster c2"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("3 of 3 within +-10 ms"), std::string::npos) << r.output;
}

TEST(Schedule, TargetsThatCannotMakeItAreSkippedWithWhatTheyWouldNeed) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  start_synced_mesh(mesh, 2);
  // 1 ms is shorter than any lead (the buffer alone is 2 ms).
  auto r = ctl(mesh, broker, dir, {"schedule", "thaw", "--in", "1", "--targets", "n0,n1,ghost"});
  EXPECT_EQ(r.status, 3) << r.output;
  EXPECT_NE(r.output.find(": RETRY"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("skipped 3"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("would need"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ghost                SKIP       unknown node"), std::string::npos) << r.output;
  // A refused request changes nothing and says why.
  r = ctl(mesh, broker, dir, {"schedule", "thaw", "--in", "100", "--targets", "cluster:nowhere"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("no online node matches 'cluster:nowhere'"), std::string::npos) << r.output;
}

TEST(Schedule, NaiveSendsAtOnceForComparison) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  start_synced_mesh(mesh, 2);
  auto r = ctl(mesh, broker, dir, {"--json", "schedule", "thaw", "--strategy", "naive", "--window", "500"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("\"strategy\":\"naive\""), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"ready\":2"), std::string::npos) << r.output;
}

TEST(Schedule, ConsoleArgumentErrorsExit2) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  for (auto args : std::vector<std::vector<std::string>>{
           {"schedule"},
           {"schedule", "dance", "--in", "10"},
           {"schedule", "freeze"},
           {"schedule", "freeze", "--in", "-5"},
           {"schedule", "freeze", "--at", "2001-01-01T00:00:00Z"},
           {"schedule", "freeze", "--at", "tomorrow"},
           {"schedule", "freeze", "--in", "10", "--strategy", "random"},
           {"schedule", "freeze", "--in", "10", "--quorum", "1.5"},
           {"schedule", "set_output", "--in", "10"}}) {
    auto r = ctl(mesh, broker, dir, args);
    EXPECT_EQ(r.status, 2) << r.output;
    EXPECT_NE(r.output.find("kairosctl: "), std::string::npos) << r.output;
  }
}

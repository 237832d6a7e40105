// schedule(command, targets, T) end to end (docs/DESIGN.md 5.4) with real nodes: the
// gateway plans each send from the node's lead, the nodes hold the command
// until T on their own clocks, and kairosctl prints the gathered result.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <sstream>

#include "tests/integration/harness.h"

using namespace kairos;
using namespace kairos::test;
using namespace std::chrono_literals;

namespace {

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
  auto r = mesh.kairosctl({"--json", "schedule", "set_output", "--output", "text", "--value", "0,1,0.5",
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
  r = mesh.kairosctl({"schedule", "freeze", "--in", "600", "--strategy", "wave"});
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
  auto r = mesh.kairosctl({"schedule", "thaw", "--in", "1", "--targets", "n0,n1,ghost"});
  EXPECT_EQ(r.status, 3) << r.output;
  EXPECT_NE(r.output.find(": RETRY"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("skipped 3"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("would need"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("ghost                SKIP       unknown node"), std::string::npos) << r.output;
  // A refused request changes nothing and says why.
  r = mesh.kairosctl({"schedule", "thaw", "--in", "100", "--targets", "cluster:nowhere"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("no online node matches 'cluster:nowhere'"), std::string::npos) << r.output;
}

TEST(Schedule, NaiveSendsAtOnceForComparison) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  start_synced_mesh(mesh, 2);
  auto r = mesh.kairosctl({"--json", "schedule", "thaw", "--strategy", "naive", "--window", "500"});
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
    auto r = mesh.kairosctl(args);
    EXPECT_EQ(r.status, 2) << r.output;
    EXPECT_NE(r.output.find("kairosctl: "), std::string::npos) << r.output;
  }
}

// ---- with kairos-sim: many nodes, class latencies, clock offsets, true time ----

namespace {

struct SimMesh {
  TempDir dir;
  Broker broker{dir};
  Mesh mesh{dir, broker};
  std::unique_ptr<Process> sim;
  std::string ledger = dir.file("ledger");

  void start(int nodes, const std::vector<std::string>& extra, double fast_ping_s = 0.25) {
    mesh.start_gateway("[clock]\nping_period_s = 1\nfast_ping_period_s = " + std::to_string(fast_ping_s) + "\n");
    std::vector<std::string> argv{bin("kairos-sim"), "--broker", broker.uri(), "--mesh", mesh.name(), "--keys-dir",
                                  mesh.keys_dir(), "--nodes", std::to_string(nodes), "--hb-period-s", "1",
                                  "--phase-period-s", "0", "--ledger", ledger, "--roster", dir.file("roster")};
    argv.insert(argv.end(), extra.begin(), extra.end());
    sim = std::make_unique<Process>(argv, dir.file("sim.log"));
  }
  // Every node online at the gateway with a settled clock filter.
  bool synced(std::size_t nodes) {
    return eventually([&] {
      auto list = mesh.nodes();
      return list.size() == nodes && std::all_of(list.begin(), list.end(), [](const kairos_v1_NodeInfo& n) {
               return n.online && n.clock_samples >= 8 && n.processing_ms < 50;
             });
    }, 120s);
  }
  RunResult ctl(std::vector<std::string> args) { return mesh.kairosctl(args); }
};

}  // namespace

TEST(Schedule, TwoHundredSimulatedNodesLandWithinTenMsOfTAndNaiveIsMeasuredBeside) {
  SimMesh m;
  // Classes A..E: 5, 20, 50, 100 and 200 ms one-way, 5 % exponential jitter,
  // each node's clock up to 3 s off.
  m.start(200, {"--classes", "A,B,C,D,E", "--jitter", "0.05", "--offset-max-ms", "3000", "--seed", "5"});
  ASSERT_TRUE(m.synced(200)) << m.mesh.gateway().output() << m.sim->output();

  // Compensated: every node's lead, T on its own clock.
  std::size_t from = line_count(m.ledger);
  auto r = m.ctl({"--json", "schedule", "thaw", "--in", "1500", "--window", "2000"});
  ASSERT_TRUE(r.status == 0 || r.status == 3) << r.output;
  const auto T = static_cast<std::int64_t>(json_number(r.output, "at_us"));
  auto execs = ledger_execs(m.ledger, from);
  std::vector<double> err;
  for (const auto& e : execs) err.push_back(std::abs(static_cast<double>(e.true_exec_us - T)) / 1000.0);
  std::sort(err.begin(), err.end());
  auto within = std::count_if(err.begin(), err.end(), [](double e) { return e <= 10.0; });
#ifdef KAIROS_SANITIZED
  // Instrumented processes under load can miss every lead: the flow was
  // exercised, precision is judged in the plain build.
  if (err.empty()) GTEST_SKIP() << "no target ran in time under the sanitizer: " << r.output.substr(0, 200);
#endif
  ASSERT_FALSE(err.empty()) << r.output;
  double p95 = err[std::min(err.size() - 1, err.size() * 95 / 100)];

  // Naive, in the same run: sent at once, run on receipt.
  from = line_count(m.ledger);
  auto rn = m.ctl({"--json", "schedule", "thaw", "--strategy", "naive", "--window", "2000"});
  ASSERT_TRUE(rn.status == 0 || rn.status == 3) << rn.output;
  auto naive = ledger_execs(m.ledger, from);
  ASSERT_GE(naive.size(), 190u) << rn.output;
  std::vector<std::int64_t> times;
  for (const auto& e : naive) times.push_back(e.true_exec_us);
  std::sort(times.begin(), times.end());
  const auto median = times[times.size() / 2];
  std::vector<double> nerr;
  for (auto t : times) nerr.push_back(std::abs(static_cast<double>(t - median)) / 1000.0);
  std::sort(nerr.begin(), nerr.end());
  auto nwithin = std::count_if(nerr.begin(), nerr.end(), [](double e) { return e <= 10.0; });
  double np95 = nerr[nerr.size() * 95 / 100];

  std::printf("compensated: %ld of 200 within +-10 ms of T (true time), p95 %.2f ms, max %.2f ms; gateway: %s\n",
              static_cast<long>(within), p95, err.back(), r.output.substr(0, 400).c_str());
  std::printf("naive:       %ld of 200 within +-10 ms of the median, p95 %.2f ms, max %.2f ms\n",
              static_cast<long>(nwithin), np95, nerr.back());
#ifndef KAIROS_SANITIZED  // instrumented processes: the flow is checked, precision in the plain build
  EXPECT_GE(within, 190) << "at least 95 % within +-10 ms of T\n" << r.output;
#endif
  EXPECT_EQ(json_number(r.output, "ready"), static_cast<double>(execs.size()));
  EXPECT_LT(nwithin, within);
  EXPECT_GT(np95, 5 * std::max(p95, 1.0)) << "naive spreads over the class latencies";

  // T too close for the slow classes: those are skipped, saying what they would need.
  auto rs = m.ctl({"--json", "schedule", "thaw", "--in", "120"});
  EXPECT_EQ(rs.status, 3) << rs.output;
  EXPECT_GE(json_number(rs.output, "skipped"), 40) << "class E (200 ms one-way) cannot make 120 ms\n" << rs.output;
  EXPECT_NE(rs.output.find("\"outcome\":\"SKIP\",\"would_need_ms\":"), std::string::npos) << rs.output;
}

TEST(Schedule, ANodeWhoseLatencyJumpsIsRecalibratedWithinAFewPings) {
  SimMesh m;
  // sim-00001 (class A, 5 ms) gets 400 ms more each way, 12 s after start.
  // Pinged once a second throughout, so that "a few pings" is countable.
  m.start(4, {"--classes", "A", "--jitter", "0.05", "--offset-max-ms", "2000", "--seed", "9", "--jump",
              "sim-00001:+400@14"}, 1.0);
  ASSERT_TRUE(m.synced(4)) << m.mesh.gateway().output() << m.sim->output();
  ASSERT_TRUE(eventually([&] { return m.sim->output().find("sim-00001: base latency now") != std::string::npos; }, 60s));
  // Sent right after the jump, on the old lead: it cannot land on time. Either it
  // arrives late (CONFLICT) or, if the shift was already seen, it is skipped.
  auto r = m.ctl({"--json", "schedule", "thaw", "--in", "300", "--targets", "sim-00001,sim-00002"});
  EXPECT_EQ(r.status, 3) << r.output;
  EXPECT_TRUE(r.output.find("\"node\":\"sim-00001\",\"outcome\":\"CONFLICT\"") != std::string::npos ||
              r.output.find("\"node\":\"sim-00001\",\"outcome\":\"SKIP\"") != std::string::npos)
      << r.output;
  // Recalibrated: the filter restarts on the new level after 3 pings there.
  std::optional<kairos_v1_NodeInfo> n;
  ASSERT_TRUE(eventually([&] {
    n = m.mesh.node_info("sim-00001");
    return n && n->clock_shifts >= 1 && n->rtt_ms > 700;
  }, 30s)) << m.mesh.gateway().output();
#ifndef KAIROS_SANITIZED  // instrumented processes ping late: how fast the shift is seen is judged in the plain build
  EXPECT_LE(n->clock_samples, 6u) << "seen within a few pings of the new level";
#endif
  EXPECT_GE(n->lead_ms, 400u);
  // And the next schedule lands on it.
  std::size_t from = line_count(m.ledger);
  r = m.ctl({"--json", "schedule", "thaw", "--in", "2000", "--targets", "sim-00001"});
  ASSERT_EQ(r.status, 0) << r.output;
  const auto T = static_cast<std::int64_t>(json_number(r.output, "at_us"));
  auto execs = ledger_execs(m.ledger, from);
  ASSERT_EQ(execs.size(), 1u);
  EXPECT_LE(std::abs(static_cast<double>(execs[0].true_exec_us - T)), 10'000.0);
}

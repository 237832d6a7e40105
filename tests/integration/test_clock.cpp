// Clock sync and impedance (docs/DESIGN.md 5.1, 5.2) through a real broker: the
// gateway pings each node, filters the samples and shows the model.
#include <gtest/gtest.h>

#include <cmath>

#include "tests/integration/harness.h"

using namespace kairos;
using namespace kairos::test;
using namespace std::chrono_literals;

TEST(Clock, GatewayPingsNodesAndShowsTheirImpedance) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  mesh.start_gateway("[clock]\nping_period_s = 0.3\nfast_ping_period_s = 0.1\n");
  mesh.start_node("n1", "c1", "waveform = \"sine\"\n", "heartbeat_period_s = 0.5");
  std::optional<kairos_v1_NodeInfo> n;
  ASSERT_TRUE(eventually([&] {
    n = mesh.node_info("n1");
    return n && n->clock_samples >= 8;
  }, 20s)) << mesh.gateway().output();
  // Same machine, same clock: the min-rtt offset is near zero. (With Nagle
  // on the client sockets, pongs waited for a delayed ACK: 20 ms off.)
  EXPECT_LT(std::abs(n->offset_ms), 5.0) << n->offset_ms;
  EXPECT_GT(n->rtt_ms, 0.0);
  EXPECT_GE(n->jitter_ms, 0.0);
  EXPECT_GE(n->reliability, 0.99f) << "every ping acknowledged";
  // class E (150 ms base) until the node's own processing time is known
  EXPECT_GT(n->impedance, 0u);
  EXPECT_EQ(n->impedance, static_cast<unsigned>(std::round(n->rtt_ms / 2 + n->processing_ms + 3 * n->jitter_ms + 2 +
                                                         n->calibration_ms)));
  EXPECT_GE(n->calibration_ms, 0.0f);
  EXPECT_FALSE(n->degraded);

  auto r = mesh.kairosctl({"node", "n1"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("clock         offset"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("impedance     "), std::string::npos) << r.output;
  r = mesh.kairosctl({"node", "nobody"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("no node 'nobody'"), std::string::npos) << r.output;
  // Its wait for 8 samples after joining, in the status: 8 pings 0.1 s
  // apart, so well under the 20 s this test waited.
  r = mesh.kairosctl({"status", "--json"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("\"clock_joins\":{\"synced\":1,\"within_2min\":1,"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"waiting\":0,"), std::string::npos) << r.output;
  r = mesh.kairosctl({"status"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("| clock sync        1 joined nodes synced (8 samples) in p50 "), std::string::npos) << r.output;
}

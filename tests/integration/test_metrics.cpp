// The Prometheus endpoint (docs/METRICS.md) on a live gateway: a scrape that
// Debian's promtool lints clean, a real Prometheus server scraping it on
// loopback, and a KPI queried back from that server with promtool.
#include <gtest/gtest.h>

#include <fstream>

#include "tests/integration/harness.h"

using namespace kairos;
using namespace kairos::test;
using namespace std::chrono_literals;

namespace {

// The value of the sample line that starts with `series ` in an exposition.
double sample(const std::string& text, const std::string& series) {
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

}  // namespace

TEST(Metrics, AScrapeLintsCleanAndPrometheusQueriesAKpiBack) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  const int port = free_port();
  mesh.start_gateway("[metrics]\nlisten = \"127.0.0.1:" + std::to_string(port) + "\"\n"
                     "[clock]\nping_period_s = 0.3\nfast_ping_period_s = 0.1\n");
  for (int i = 0; i < 2; ++i)
    mesh.start_node("n" + std::to_string(i), "c1", "waveform = \"sine\"\n", "heartbeat_period_s = 0.5\n");
  for (int i = 0; i < 2; ++i)
    ASSERT_TRUE(eventually([&] {
      auto n = mesh.node_info("n" + std::to_string(i));
      return n && n->online && n->clock_samples >= 4;
    }, 30s)) << mesh.gateway().output();
  // One operation for the KPIs: a schedule that lands.
  auto r = mesh.kairosctl({"--json", "schedule", "thaw", "--in", "800"});
  ASSERT_EQ(r.status, 0) << r.output;

  std::string text;
  ASSERT_TRUE(eventually([&] {
    auto scrape = http_request(port, "GET", "/metrics");
    text = scrape.body;
    return scrape.status == 200 && sample(scrape.body, "kairos_schedule_targets_total") == 2;
  })) << text << mesh.gateway().output();
  EXPECT_EQ(sample(text, "kairos_mesh_nodes_online"), 2) << text;
  EXPECT_EQ(sample(text, "kairos_nodes{state=\"COMPLIANT\"}") + sample(text, "kairos_nodes{state=\"PROCESSING\"}"), 2)
      << text;
  EXPECT_EQ(sample(text, "kairos_node_impedance_score_count"), 2) << text;
  EXPECT_GT(sample(text, "kairos_frames_accepted_total"), 0) << text;
  EXPECT_EQ(sample(text, "kairos_kpi{kpi=\"coordination_success_ratio\"}"), 1) << text;
  EXPECT_EQ(sample(text, "kairos_kpi{kpi=\"arrival_hit_ratio\"}"), 1) << text;
  EXPECT_EQ(sample(text, "kairos_mesh_mode{mode=\"FULL\"}"), 1) << text;
  EXPECT_GT(sample(text, "process_resident_memory_bytes"), 1e6) << text;
  // The same KPIs through the console: kpi, and status --json.
  r = mesh.kairosctl({"--json", "kpi"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(json_number(r.output, "arrival_hit_rate"), 1) << r.output;
  EXPECT_EQ(json_number(r.output, "scheduled_targets"), 2) << r.output;
  EXPECT_EQ(json_number(r.output, "operations_quorum"), 1) << r.output;
  r = mesh.kairosctl({"--json", "status"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("\"kpi\":{\"coordination_success\":1,"), std::string::npos) << r.output;
  r = mesh.kairosctl({"kpi"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("arrival-time hit rate   100.0 %"), std::string::npos) << r.output;
  // Anything else is refused, and says so.
  EXPECT_EQ(http_request(port, "GET", "/nothing").status, 404);
  EXPECT_EQ(http_request(port, "POST", "/metrics", "x").status, 405);

  // promtool's lint of the live page.
  {
    std::ofstream(dir.file("scrape.txt")) << text;
    auto lint = run_command({"sh", "-c", "promtool check metrics < " + dir.file("scrape.txt")}, dir.path());
    EXPECT_EQ(lint.status, 0) << lint.output;
  }

  // A real Prometheus scraping it every second; a KPI queried back from it.
  const int prom_port = free_port();
  {
    std::ofstream(dir.file("prometheus.yml"))
        << "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: kairos\n    static_configs:\n"
           "      - targets: ['127.0.0.1:" << port << "']\n";
  }
  Process prometheus({"/usr/bin/prometheus", "--config.file=" + dir.file("prometheus.yml"),
                      "--storage.tsdb.path=" + dir.file("tsdb"),
                      "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)},
                     dir.file("prometheus.log"));
  const std::string url = "http://127.0.0.1:" + std::to_string(prom_port);
  RunResult q;
  ASSERT_TRUE(eventually([&] {
    q = run_command({"promtool", "query", "instant", url, "kairos_kpi{kpi=\"arrival_hit_ratio\"}"}, dir.path());
    return q.status == 0 && q.output.find("=> 1 @") != std::string::npos;
  }, 60s)) << q.output << prometheus.output();
  EXPECT_NE(q.output.find("job=\"kairos\""), std::string::npos) << q.output;
  // The scrape was healthy from Prometheus's side too.
  q = run_command({"promtool", "query", "instant", url, "up{job=\"kairos\"}"}, dir.path());
  EXPECT_NE(q.output.find("=> 1 @"), std::string::npos) << q.output;
}

TEST(Metrics, AnAddressThatCannotBeHadStopsTheGatewayNamingIt) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  // The broker's own port is taken.
  dir.write("gateway.toml", mesh.gateway_config("[metrics]\nlisten = \"127.0.0.1:" + std::to_string(broker.port()) + "\"\n"));
  Process gw({bin("kairos-gateway"), "--config", dir.file("gateway.toml")}, dir.file("gateway.log"));
  auto status = gw.wait(20s);
  ASSERT_TRUE(status);
  EXPECT_EQ(*status, 1);
  EXPECT_NE(gw.output().find("cannot listen on 127.0.0.1:" + std::to_string(broker.port())), std::string::npos)
      << gw.output();
}

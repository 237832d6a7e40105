// What an attacker on the broker can do, against real processes: huge
// publishes (memory), replays across restarts (sessions), hostile strings
// (UTF-8, JSON, logs), a duplicated node id (docs/DESIGN.md 4).
#include <gtest/gtest.h>

#include <fstream>

#include "common/core/frame.h"
#include "common/core/topic.h"
#include "tests/integration/harness.h"

using namespace kairos;
using namespace kairos::test;
using namespace std::chrono_literals;

namespace {

// A field of /proc/<pid>/status in kB (VmRSS, VmHWM), -1 when unreadable.
long proc_kb(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.compare(0, field.size() + 1, field + ":") == 0) return std::stol(line.substr(field.size() + 1));
  return -1;
}

// The resident set of pid once it stops moving by more than 256 kB between
// two reads 200 ms apart (a daemon's steady state), in kB.
long settled_rss(pid_t pid) {
  long last = proc_kb(pid, "VmRSS");
  long now = last;
  eventually(
      [&] {
        now = proc_kb(pid, "VmRSS");
        bool steady = std::labs(now - last) < 256;
        last = now;
        return steady;
      },
      5s);
  return now;
}

}  // namespace

// 100 MB publishes on a node's report topic (the gateway's input) and on
// its command topic, through a broker that sets no packet limit: each
// daemon's memory is back within 5 MB of where it was.
TEST(Attacks, HugePublishesLeaveMemoryWhereItWas) {
  TempDir dir;
  Broker broker(dir, 0, /*limited=*/false);
  Mesh mesh(dir, broker);
  auto& gw = mesh.start_gateway();
  auto& node = mesh.start_node("n1", "c1", "waveform = \"sine\"\n");
  ASSERT_TRUE(eventually([&] {
    auto n = mesh.node_info("n1");
    return n && n->online;
  })) << gw.output();
  long gw_base = settled_rss(gw.pid()), node_base = settled_rss(node.pid());

  std::string big = dir.file("big.bin");
  {
    std::ofstream out(big, std::ios::binary);
    std::string chunk(1 << 20, '\x5a');
    for (int i = 0; i < 100; ++i) out << chunk;
  }
  auto pub = [&](const std::string& topic) {
    auto r = run_command({"mosquitto_pub", "-p", std::to_string(broker.port()), "-V", "mqttv5", "-q", "1", "-t", topic,
                          "-f", big},
                         dir.path(), 120s);
    ASSERT_EQ(r.status, 0) << r.output;
  };
  for (int i = 0; i < 3; ++i) pub(node_topic(mesh.name(), "c1", "n1", TopicKind::phase));
  for (int i = 0; i < 3; ++i) pub(node_topic(mesh.name(), "c1", "n1", TopicKind::cmd));

  // Both still work: the node answers a broadcast sent after the floods.
  auto r = mesh.kairosctl({"broadcast", "after the flood", "--ack"});
  EXPECT_NE(r.output.find("1 of 1 nodes acknowledged READY"), std::string::npos) << r.output << node.output();
  long gw_after = settled_rss(gw.pid()), node_after = settled_rss(node.pid());
  std::printf("gateway RSS %ld kB -> %ld kB (peak %ld kB); node %ld kB -> %ld kB (peak %ld kB)\n", gw_base, gw_after,
              proc_kb(gw.pid(), "VmHWM"), node_base, node_after, proc_kb(node.pid(), "VmHWM"));
  EXPECT_LT(gw_after, gw_base + 5 * 1024);
  EXPECT_LT(node_after, node_base + 5 * 1024);
  EXPECT_TRUE(gw.running());
  EXPECT_TRUE(node.running());
}

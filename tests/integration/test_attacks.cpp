// What an attacker on the broker can do, against real processes: huge
// publishes (memory), replays across restarts (sessions), hostile strings
// (UTF-8, JSON, logs), a duplicated node id (docs/DESIGN.md 4).
#include <gtest/gtest.h>

#include <fstream>

#include "common/core/frame.h"
#include "common/core/topic.h"
#include "common/io/clock.h"
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

namespace {

// A mesh with one node n1 and a spy that records every frame of the mesh,
// as an attacker with read access to the broker would.
struct Captures {
  TempDir dir;
  Broker broker{dir};
  Mesh mesh{dir, broker};
  Client spy{broker.uri()};
  Captures() { spy.subscribe(kTopicRoot.data() + mesh.name() + "/#"); }
  std::string topic(TopicKind kind) const { return node_topic(mesh.name(), "c1", "n1", kind); }

  std::uint64_t live_session() {
    auto n = mesh.node_info("n1");
    return n && n->online ? n->session_id : 0;
  }
  // Starts (or restarts) n1 and waits until the gateway has its new session online.
  std::uint64_t start_n1() {
    std::uint64_t before = live_session();
    mesh.start_node("n1", "c1", "waveform = \"sine\"\n", "heartbeat_period_s = 0.5");
    std::uint64_t now = 0;
    EXPECT_TRUE(eventually([&] { return (now = live_session()) != 0 && now != before; }))
        << mesh.gateway().output() << mesh.node("n1").output();
    return now;
  }
  // The first frame seen on topic that decodes with key to a message of type
  // which (and matches pred), waiting for it a bounded time.
  std::optional<Inbound> captured(const std::string& topic, const Key& key, pb_size_t which,
                                  const std::function<bool(const Envelope&)>& pred = {}) {
    std::optional<Inbound> found;
    spy.wait_for([&](const std::vector<Inbound>& seen) {
      for (const auto& m : seen) {
        if (m.topic != topic) continue;
        auto o = open(m.topic, m.payload, key);
        if (o && o.env->which_message == which && (!pred || pred(*o.env))) {
          found = m;
          return true;
        }
      }
      return false;
    });
    return found;
  }
  // Publishes a captured frame again, with its MQTT v5 response properties.
  void replay(const Inbound& m) {
    PublishProps props;
    props.response_topic = m.response_topic;
    props.correlation = m.correlation;
    spy.publish(m.topic, m.payload, 1, false, props);
  }
  int count_in_node_log(const std::string& what) {
    auto out = mesh.node("n1").output();
    int n = 0;
    for (auto at = out.find(what); at != std::string::npos; at = out.find(what, at + 1)) ++n;
    return n;
  }
};

}  // namespace

// A birth captured at the node's first start, replayed after it restarted
// three times: dropped as stale, and the live node stays online in its session.
TEST(Attacks, ABirthReplayedAfterRestartsLeavesTheLiveNodeOnline) {
  Captures c;
  c.mesh.start_gateway();
  c.start_n1();
  ASSERT_TRUE(c.spy.wait_for_topic(c.topic(TopicKind::birth)));
  auto birth = c.captured(c.topic(TopicKind::birth), c.mesh.node_key("n1"), kairos_v1_Envelope_birth_tag);
  ASSERT_TRUE(birth);
  std::uint64_t live = 0;
  for (int i = 0; i < 3; ++i) live = c.start_n1();
  auto stale_before = c.mesh.drops("stale_session");
  c.replay(*birth);
  ASSERT_TRUE(eventually([&] { return c.mesh.drops("stale_session") > stale_before; })) << c.mesh.gateway().output();
  // The node's next heartbeat is taken, in the same session.
  c.spy.clear();
  ASSERT_TRUE(c.spy.wait_for_topic(c.topic(TopicKind::hb)));
  auto hbs = c.mesh.drops("stale_session");
  EXPECT_TRUE(eventually([&] {
    auto n = c.mesh.node_info("n1");
    return n && n->online && n->session_id == live && n->last_seen_ms < 400;
  })) << c.mesh.gateway().output();
  EXPECT_EQ(c.mesh.drops("stale_session"), hbs) << "the live node's frames are not dropped";
}

// Commands captured (a freeze from a gateway session that has since ended)
// and replayed to the node after it restarted: refused as stale, and the
// node stays obedient to the live gateway.
TEST(Attacks, ACommandReplayedAfterRestartsIsRefusedAndTheNodeStaysObedient) {
  Captures c;
  c.mesh.start_gateway();
  c.start_n1();
  auto r = c.mesh.kairosctl({"freeze", "cluster:c1"});
  ASSERT_NE(r.output.find("1 of 1 nodes acknowledged READY"), std::string::npos) << r.output;
  r = c.mesh.kairosctl({"thaw"});
  ASSERT_NE(r.output.find("1 of 1 nodes acknowledged READY"), std::string::npos) << r.output;
  auto freeze = c.captured(c.topic(TopicKind::cmd), c.mesh.node_key("n1"), kairos_v1_Envelope_command_tag,
                           [](const Envelope& e) { return e.message.command.which_action == kairos_v1_Command_freeze_tag; });
  ASSERT_TRUE(freeze);

  // The same node session, the same gateway: a plain replay, refused, and
  // the node is not made to quarantine itself by it.
  c.replay(*freeze);
  ASSERT_TRUE(eventually([&] { return c.count_in_node_log(": replay (") >= 1; })) << c.mesh.node("n1").output();
  r = c.mesh.kairosctl({"broadcast", "after a replay", "--ack"});
  EXPECT_NE(r.output.find("1 of 1 nodes acknowledged READY"), std::string::npos) << r.output << c.mesh.node("n1").output();
  // Then the node restarts: the copy is for its earlier start.
  c.start_n1();
  c.replay(*freeze);
  // Then the gateway restarts too: the copy is also from an ended gateway session.
  c.mesh.stop_gateway();
  c.mesh.start_gateway();
  c.start_n1();
  c.replay(*freeze);
  EXPECT_TRUE(eventually([&] { return c.count_in_node_log("stale_session") >= 1; })) << c.mesh.node("n1").output();
  r = c.mesh.kairosctl({"broadcast", "still obeyed?", "--ack"});
  EXPECT_NE(r.output.find("1 of 1 nodes acknowledged READY"), std::string::npos) << r.output << c.mesh.node("n1").output();
  auto n = c.mesh.node_info("n1");
  ASSERT_TRUE(n);
  EXPECT_NE(n->status, kairos_v1_NodeStatus_FROZEN);
  EXPECT_NE(n->status, kairos_v1_NodeStatus_QUARANTINED);
  EXPECT_EQ(c.count_in_node_log("freeze"), 0) << "no replayed freeze ran after the thaw\n" << c.mesh.node("n1").output();
}

// An operator's request replayed after a gateway restart, and after 4,100
// other clients have spoken: refused both times, and run once only.
TEST(Attacks, AControlRequestReplayedAfterARestartOrManyClientsIsRefused) {
  Captures c;
  c.mesh.start_gateway();
  c.start_n1();
  auto r = c.mesh.kairosctl({"broadcast", "only once", "--ack"});
  ASSERT_NE(r.output.find("1 of 1 nodes acknowledged READY"), std::string::npos) << r.output;
  auto req = c.captured(ctl_req_topic(c.mesh.name()), c.mesh.operator_key(), kairos_v1_Envelope_ctl_request_tag,
                        [](const Envelope& e) { return e.message.ctl_request.which_verb == kairos_v1_ControlRequest_broadcast_tag; });
  ASSERT_TRUE(req);
  ASSERT_TRUE(eventually([&] { return c.count_in_node_log("only once") == 1; })) << c.mesh.node("n1").output();

  c.mesh.stop_gateway();
  c.mesh.start_gateway();
  auto replays = c.mesh.drops("replay");
  c.replay(*req);
  ASSERT_TRUE(eventually([&] { return c.mesh.drops("replay") == replays + 1; })) << c.mesh.gateway().output();

  // 4,100 other clients, each with one request of its own.
  const std::string resp_filter = kTopicRoot.data() + c.mesh.name() + "/_ctl/resp/#";
  Client answers(c.broker.uri());
  answers.subscribe(resp_filter);
  constexpr int kClients = 4100;
  for (int i = 0; i < kClients; ++i) {
    std::string client = "flood" + std::to_string(i);
    auto env = make_envelope(client, 1, 1, wall_us());
    env->which_message = kairos_v1_Envelope_ctl_request_tag;
    env->message.ctl_request.request_id = static_cast<std::uint64_t>(i + 1);
    env->message.ctl_request.which_verb = kairos_v1_ControlRequest_breakers_tag;
    PublishProps props;
    props.response_topic = ctl_resp_topic(c.mesh.name(), client);
    props.correlation = Bytes(8, 1);
    c.spy.publish(ctl_req_topic(c.mesh.name()), seal(ctl_req_topic(c.mesh.name()), *env, c.mesh.operator_key()), 1,
                  false, props);
  }
  ASSERT_TRUE(answers.wait_for([&](const std::vector<Inbound>& seen) { return seen.size() >= kClients; }, 120s))
      << answers.seen().size() << " answers";
  c.replay(*req);
  ASSERT_TRUE(eventually([&] { return c.mesh.drops("replay") == replays + 2; })) << c.mesh.gateway().output();
  r = c.mesh.kairosctl({"broadcast", "a fresh one", "--ack"});
  EXPECT_NE(r.output.find("1 of 1 nodes acknowledged READY"), std::string::npos) << r.output;
  EXPECT_EQ(c.count_in_node_log("only once"), 1) << c.mesh.node("n1").output();
}

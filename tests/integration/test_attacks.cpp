// What an attacker on the broker can do, against real processes: huge
// publishes (memory), replays across restarts (sessions), hostile strings
// (UTF-8, JSON, logs), a duplicated node id (docs/DESIGN.md 4).
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

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

// Whether node id comes online at the gateway within the usual bound.
bool online(Mesh& mesh, const std::string& id) {
  return eventually([&] {
    auto n = mesh.node_info(id);
    return n && n->online;
  });
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
  ASSERT_TRUE(online(mesh, "n1")) << gw.output();
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

namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at < text.size()) {
    auto end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    out.push_back(text.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

}  // namespace

// 2,000 frames from unknown senders, frames on 16 KB topics and 2,000
// garbage commands: every one is counted, but the logs get a bounded number
// of short lines, each saying how many like it were held back.
TEST(Attacks, JunkOnTheWireCannotFloodTheLogs) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  auto& gw = mesh.start_gateway();
  auto& node = mesh.start_node("n1", "c1", "waveform = \"sine\"\n");
  ASSERT_TRUE(online(mesh, "n1")) << gw.output();
  const auto gw_lines_before = lines_of(gw.output()).size();
  const auto node_lines_before = lines_of(node.output()).size();
  Client c(broker.uri());
  const auto start = std::chrono::steady_clock::now();
  constexpr int kGhosts = 2000, kLongTopics = 20;
  for (int i = 0; i < kGhosts; ++i)
    c.publish(node_topic(mesh.name(), "c1", "ghost" + std::to_string(i), TopicKind::birth), Bytes(40, 0x42));
  const std::string long_cluster(16'000, 'x');  // as long as a legal packet allows
  for (int i = 0; i < kLongTopics; ++i)
    c.publish(kTopicRoot.data() + mesh.name() + "/" + long_cluster + "/n1/birth", Bytes(40, 0x42));
  const auto cmd = node_topic(mesh.name(), "c1", "n1", TopicKind::cmd);
  for (int i = 0; i < kGhosts; ++i) c.publish(cmd, Bytes(30, static_cast<std::uint8_t>(i)));
  ASSERT_TRUE(eventually([&] {
    return mesh.drops("unknown_sender") >= kGhosts && mesh.drops("bad_topic") >= kLongTopics;
  }, 60s)) << mesh.drops("unknown_sender") << " " << mesh.drops("bad_topic");
  // The node has taken its junk when a command sent after it is answered.
  auto r = mesh.kairosctl({"broadcast", "after the junk", "--ack"});
  EXPECT_NE(r.output.find("1 of 1 nodes acknowledged READY"), std::string::npos) << r.output;
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  auto gw_lines = lines_of(gw.output());
  auto node_lines = lines_of(node.output());
  const std::size_t gw_new = gw_lines.size() - gw_lines_before, node_new = node_lines.size() - node_lines_before;
  std::printf("%.1f s: %zu gateway lines and %zu node lines for %d junk frames each\n", seconds, gw_new, node_new,
              kGhosts + kLongTopics);
  // The gateway: 20 at once then 5 a second for drops, 5 then 1 a second for
  // missing keys, and a few lines of its own (the broadcast).
  EXPECT_LE(gw_new, static_cast<std::size_t>(20 + 5 + 6 * seconds + 10)) << gw.output().substr(0, 4000);
  // The node: 5 at once then 1 a second, and the notice.
  EXPECT_LE(node_new, static_cast<std::size_t>(5 + 1 * seconds + 5)) << node.output().substr(0, 4000);
  std::size_t longest = 0;
  for (const auto& l : gw_lines) longest = std::max(longest, l.size());
  for (const auto& l : node_lines) longest = std::max(longest, l.size());
  EXPECT_LT(longest, 600u) << "a wire string is cut in a log line";
  // The next line that passes says how many were held back.
  EXPECT_TRUE(eventually([&] {
    c.publish(node_topic(mesh.name(), "c1", "late-ghost", TopicKind::birth), Bytes(40, 0x42));
    return gw.output().find("lines like it held back") != std::string::npos;
  }, 20s)) << gw.output().substr(0, 4000);
}

// A cloned card: two devices run node n1 with its key. The one whose
// connection is taken over waits minutes, not seconds, and the frames of the
// older session raise DUPLICATE_IDENTITY (priority 3, alert).
TEST(Attacks, TwoDevicesWithOneNodeIdAreADuplicateIdentity) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  auto& gw = mesh.start_gateway();
  Client alerts(broker.uri());
  alerts.subscribe(kTopicRoot.data() + mesh.name() + "/_alert");
  auto& first = mesh.start_node("n1", "c1", "waveform = \"sine\"\n", "phase_period_s = 0.2");
  ASSERT_TRUE(online(mesh, "n1")) << gw.output();
  // The copy: the same config and key, its own state file (as a clone's own card).
  dir.write("n1-copy.toml", mesh.node_config("n1", "c1", "waveform = \"sine\"\n",
                                             "phase_period_s = 0.2\nstate_file = \"" + dir.file("copy.session") + "\""));
  Process copy({bin("kairos-node"), "--config", dir.file("n1-copy.toml")}, dir.file("n1-copy.log"));
  auto duplicates = [&] {
    return query_db(dir.file("gateway.db"), "SELECT COUNT(*) FROM conflicts WHERE type = 'DUPLICATE_IDENTITY'")[0][0];
  };
  ASSERT_TRUE(eventually([&] { return duplicates() == "1"; }, 90s)) << gw.output() << first.output() << copy.output();
  EXPECT_TRUE(alerts.wait_for([&](const std::vector<Inbound>& seen) {
    for (const auto& m : seen) {
      auto o = open(m.topic, m.payload, mesh.operator_key());
      if (o && o.env->which_message == kairos_v1_Envelope_alert_tag &&
          std::string(o.env->message.alert.type) == "DUPLICATE_IDENTITY" && o.env->message.alert.priority == 3)
        return true;
    }
    return false;
  })) << "an operator alert";
  // After three links closed right after connecting, a device says why and
  // waits 15 s before the next attempt.
  std::string both;
  EXPECT_TRUE(eventually([&] {
    both = first.output() + copy.output();
    return both.find("is another client using this client id") != std::string::npos &&
           both.find("reconnecting in 15 s") != std::string::npos;
  }, 60s)) << both;
  EXPECT_TRUE(gw.running());
}

// The gateway's database on a file system that fills up (a 2 MB tmpfs in a
// mount namespace of its own): a loud state (log, alert, status) in which
// work that must be recorded is refused, then back when there is room; and
// whatever way it stops, its retained state says offline.
TEST(Attacks, AFullDatabaseIsALoudStateAndTheGatewaySaysWhenItGoes) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root for a mount namespace";
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  const std::string dbdir = dir.file("db");
  ::mkdir(dbdir.c_str(), 0755);
  std::string cfg = mesh.gateway_config();
  cfg.replace(cfg.find(dir.file("gateway.db")), dir.file("gateway.db").size(), dbdir + "/gateway.db");
  dir.write("gateway.toml", cfg);
  Client watch(broker.uri());
  watch.subscribe(kTopicRoot.data() + mesh.name() + "/_alert");
  const auto state_topic = gw_topic(mesh.name(), "gw1", TopicKind::gw_state);
  watch.subscribe(state_topic);
  auto gw = std::make_unique<Process>(
      std::vector<std::string>{"unshare", "--mount", "--propagation", "private", "sh", "-c",
                               "mount -t tmpfs -o size=2m tmpfs " + dbdir + " && exec " + bin("kairos-gateway") +
                                   " --config " + dir.file("gateway.toml")},
      dir.file("gateway.log"));
  ASSERT_TRUE(eventually([&] { return mesh.status().has_value() || !gw->running(); }) && gw->running())
      << gw->output();
  mesh.start_node("n1", "c1", "waveform = \"sine\"\n");
  ASSERT_TRUE(online(mesh, "n1")) << gw->output();

  // Fill the gateway's file system from outside its namespace.
  const std::string filler = "/proc/" + std::to_string(gw->pid()) + "/root" + dbdir + "/filler";
  {
    std::ofstream out(filler, std::ios::binary);
    ASSERT_TRUE(out) << filler;
    std::string chunk(16 * 1024, '\0');
    for (int i = 0; i < 1000 && out; ++i) out.write(chunk.data(), static_cast<std::streamsize>(chunk.size())), out.flush();
  }
  RunResult r{};
  ASSERT_TRUE(eventually([&] {
    r = mesh.kairosctl({"delegate", "read", "--payload", "x"});
    return r.output.find("cannot write its database") != std::string::npos;
  }, 60s)) << r.output << gw->output();
  EXPECT_NE(r.status, 0);
  r = mesh.kairosctl({"status"});
  EXPECT_NE(r.output.find("STORAGE FAILED"), std::string::npos) << r.output;
  EXPECT_NE(gw->output().find("cannot write"), std::string::npos);
  auto storage_alert = [&] {
    for (const auto& m : watch.seen()) {
      auto o = open(m.topic, m.payload, mesh.operator_key());
      if (o && o.env->which_message == kairos_v1_Envelope_alert_tag && std::string(o.env->message.alert.type) == "STORAGE")
        return true;
    }
    return false;
  };
  EXPECT_TRUE(watch.wait_for([&](const auto&) { return storage_alert(); })) << "an operator alert";

  // Room again: work is taken again.
  ASSERT_EQ(::unlink(filler.c_str()), 0);
  EXPECT_TRUE(eventually([&] {
    r = mesh.kairosctl({"delegate", "read", "--payload", "x"});
    return r.status == 0;
  }, 60s)) << r.output << gw->output();
  EXPECT_NE(gw->output().find("writable again"), std::string::npos);

  // A stop it sees coming: the retained state turns offline.
  gw->signal(SIGTERM);
  ASSERT_TRUE(gw->wait(10s));
  auto offline = [&] {
    auto last = watch.last_on(state_topic);
    if (!last) return false;
    auto o = open(last->topic, last->payload, mesh.broadcast_key());
    return o && o.env->which_message == kairos_v1_Envelope_gateway_state_tag && !o.env->message.gateway_state.online;
  };
  EXPECT_TRUE(watch.wait_for([&](const auto&) { return offline(); })) << gw->output();
}

// A gateway that goes without closing its link (killed): the broker
// publishes its Will, and the retained state says offline.
TEST(Attacks, AKilledGatewayIsShownOfflineByItsWill) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  mesh.start_gateway();
  Client watch(broker.uri());
  const auto state_topic = gw_topic(mesh.name(), "gw1", TopicKind::gw_state);
  watch.subscribe(state_topic);
  mesh.gateway().signal(SIGKILL);
  EXPECT_TRUE(watch.wait_for(
      [&](const auto&) {
        auto last = watch.last_on(state_topic);
        if (!last) return false;
        auto o = open(last->topic, last->payload, mesh.broadcast_key());
        return o && !o.env->message.gateway_state.online;
      },
      60s));
}

// Hostile strings in a signed birth: valid UTF-8 that a JSON or log writer
// could trip on is kept and printed as valid JSON; bytes that are not UTF-8
// drop the frame (invalid_value) and change nothing.
TEST(Attacks, HostileStringsReachJsonValidAndInvalidUtf8IsDropped) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  mesh.start_gateway();
  const std::string id = "hostile";
  const Key key = mesh.node_key(id);
  const std::string topic = node_topic(mesh.name(), "c1", id, TopicKind::birth);
  const std::uint64_t session = static_cast<std::uint64_t>(wall_us());
  auto birth = [&](std::uint64_t seq, const char* board, const char* firmware) {
    auto env = make_envelope(id, session, seq, wall_us());
    env->which_message = kairos_v1_Envelope_birth_tag;
    auto& b = env->message.birth;
    set_string(b.cluster, "c1");
    std::snprintf(b.board, sizeof b.board, "%s", board);
    std::snprintf(b.firmware_version, sizeof b.firmware_version, "%s", firmware);
    b.capabilities_count = 1;
    std::snprintf(b.capabilities[0], sizeof b.capabilities[0], "%s", "cap\"\\\x01\x7f");
    b.device_class = kairos_v1_DeviceClass_CLASS_A;
    b.heartbeat_period_ms = 60'000;
    return seal(topic, *env, key);
  };
  Client c(broker.uri());
  auto invalid = mesh.drops("invalid_value");
  c.publish(topic, birth(1, "bad\xff\xfe", "1.0"));
  ASSERT_TRUE(eventually([&] { return mesh.drops("invalid_value") == invalid + 1; })) << mesh.gateway().output();
  EXPECT_FALSE(mesh.node_info(id)) << "a dropped frame changes nothing";
  // Quotes, a backslash, a newline, a tab, U+2028, an emoji, right-to-left override.
  c.publish(topic, birth(2, "q\"b\\n\n\t\xE2\x80\xA8", "\xF0\x9F\x98\x80\xE2\x80\xAE" "1"));
  ASSERT_TRUE(eventually([&] { return mesh.node_info(id).has_value(); })) << mesh.gateway().output();
  auto r = mesh.kairosctl({"--json", "nodes"});
  ASSERT_EQ(r.status, 0) << r.output;
  dir.write("nodes.json", r.output);
  // An independent JSON parser takes it, and the strings come back as sent.
  auto check = run_command({"/usr/bin/python3", "-c",
                            "import json,sys\n"
                            "d = [n for n in json.load(open(sys.argv[1])) if n['id'] == 'hostile'][0]\n"
                            "print(ascii(d['board']), ascii(d['firmware']))",
                            dir.file("nodes.json")},
                           dir.path());
  ASSERT_EQ(check.status, 0) << check.output << "\n" << r.output;
  EXPECT_NE(check.output.find("'q\"b\\\\n\\n\\t\\u2028' '\\U0001f600\\u202e1'"), std::string::npos) << check.output;
}

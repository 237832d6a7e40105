// The conflict log (docs/DESIGN.md 5.6, 5.7): a frame on a known node's topic that
// fails that node's MAC is a HASH_MISMATCH, written to an append-only table.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <csignal>

#include "common/core/frame.h"
#include "common/core/topic.h"
#include "common/io/files.h"
#include "tests/integration/harness.h"

using namespace kairos;
using namespace kairos::test;
using namespace std::chrono_literals;

TEST(Conflicts, ABadMacOnANodesTopicIsLoggedAsHashMismatchInAnAppendOnlyLog) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  mesh.start_gateway();
  Key key = mesh.node_key("n1");
  ASSERT_TRUE(mesh.status()) << mesh.gateway().output();
  key.bytes[3] ^= 0x40;  // n1's key, altered
  auto topic = node_topic(mesh.name(), "c1", "n1", TopicKind::hb);
  auto env = make_envelope("n1", 7, 1, 0);
  env->which_message = kairos_v1_Envelope_heartbeat_tag;
  Client c(broker.uri());
  for (int i = 0; i < 3; ++i) c.publish(topic, seal(topic, *env, key), 0);
  ASSERT_TRUE(eventually([&] { return mesh.drops("bad_mac") == 3; })) << mesh.gateway().output();
  ASSERT_TRUE(eventually([&] { return mesh.gateway().output().find("HASH_MISMATCH (priority 4) n1") != std::string::npos; }));
  // The operator reads the log with kairosctl.
  auto r = mesh.kairosctl({"conflicts"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("HASH_MISMATCH        4   n1"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("1 shown, 1 in the log"), std::string::npos) << r.output;
  r = mesh.kairosctl({"--json", "conflicts"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("\"total\":1,"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("\"type\":\"HASH_MISMATCH\",\"priority\":4,\"node\":\"n1\""), std::string::npos) << r.output;
  mesh.gateway().signal(SIGTERM);
  ASSERT_EQ(mesh.gateway().wait(10s).value_or(-1), 0);

  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(dir.file("gateway.db").c_str(), &db, SQLITE_OPEN_READWRITE, nullptr), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT type, priority, node, detail FROM conflicts", -1, &st, nullptr), SQLITE_OK);
  int rows = 0;
  while (sqlite3_step(st) == SQLITE_ROW) {
    ++rows;
    EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "HASH_MISMATCH");
    EXPECT_EQ(sqlite3_column_int(st, 1), 4);
    EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 2)), "n1");
    EXPECT_NE(std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 3))).find(topic), std::string::npos);
  }
  sqlite3_finalize(st);
  EXPECT_EQ(rows, 1) << "three bad frames within 10 s: one entry, all three counted as drops";
  // UPDATE and DELETE are refused by the database itself.
  char* err = nullptr;
  EXPECT_NE(sqlite3_exec(db, "UPDATE conflicts SET priority = 0", nullptr, nullptr, &err), SQLITE_OK);
  ASSERT_NE(err, nullptr);
  EXPECT_NE(std::string(err).find("the conflict log is append-only"), std::string::npos) << err;
  sqlite3_free(err);
  EXPECT_NE(sqlite3_exec(db, "DELETE FROM conflicts", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
}

TEST(Conflicts, ANodeWithBadMacFramesIsQuarantinedGetsNoCommandsAndHealRestoresIt) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  mesh.start_gateway("[clock]\nping_period_s = 0.3\nfast_ping_period_s = 0.1\n");
  mesh.start_node("n1", "c1", "waveform = \"sine\"\n", "heartbeat_period_s = 0.5\n");
  ASSERT_TRUE(eventually([&] {
    auto n = mesh.node_info("n1");
    return n && n->online && n->clock_samples >= 2;
  })) << mesh.gateway().output();
  auto ctl = [&](const std::vector<std::string>& args) { return mesh.kairosctl(args); };
  // Frames on n1's topic that fail n1's MAC: HASH_MISMATCH, n1 quarantined.
  Key wrong = mesh.node_key("n1");
  wrong.bytes[0] ^= 1;
  auto topic = node_topic(mesh.name(), "c1", "n1", TopicKind::hb);
  auto env = make_envelope("n1", 7, 1, 0);
  env->which_message = kairos_v1_Envelope_heartbeat_tag;
  Client c(broker.uri());
  c.publish(topic, seal(topic, *env, wrong), 0);
  ASSERT_TRUE(eventually([&] {
    auto n = mesh.node_info("n1");
    return n && n->status == kairos_v1_NodeStatus_QUARANTINED;
  })) << mesh.gateway().output();
  // No work for it: a schedule skips it, saying why.
  auto r = ctl({"schedule", "thaw", "--in", "500", "--targets", "n1"});
  EXPECT_EQ(r.status, 3) << r.output;
  EXPECT_NE(r.output.find("SKIP       quarantined"), std::string::npos) << r.output;
  // heal lifts it; the next schedule reaches the node.
  r = ctl({"heal", "n1"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("n1: quarantine lifted (it was: HASH_MISMATCH"), std::string::npos) << r.output;
  ASSERT_TRUE(eventually([&] {
    auto n = mesh.node_info("n1");
    return n && n->status == kairos_v1_NodeStatus_COMPLIANT;
  })) << mesh.gateway().output();
  r = ctl({"schedule", "thaw", "--in", "800", "--targets", "n1"});
  EXPECT_EQ(r.status, 0) << r.output;
  r = ctl({"heal", "nobody"});
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("no node 'nobody'"), std::string::npos) << r.output;
}

// Issue 6: a node caught with a bad MAC gets no jobs, the operator hears of
// it on _alert and through the hook, its quarantine survives a gateway
// restart, and heal gives it work again.
TEST(Conflicts, AQuarantinedNodeGetsNoJobsAlertsGoOutAndTheQuarantineSurvivesARestart) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  dir.write("hook.sh", "#!/bin/sh\necho \"$KAIROS_ALERT_TYPE $KAIROS_ALERT_PRIORITY $KAIROS_ALERT_NODE\" >> " +
                           dir.file("hook.out") + "\n",
            0755);
  const std::string extra = "[liveness]\nheartbeat_period_s = 1\n[alerts]\nhook = [\"" + dir.file("hook.sh") + "\"]\n";
  mesh.start_gateway(extra);
  Process sim(mesh.sim_argv({"--nodes", "2", "--prefix", "q", "--classes", "A", "--clusters", "1", "--hb-period-s", "1",
                             "--phase-period-s", "0"}),
              dir.file("sim.log"));
  auto online = [&] {
    auto a = mesh.node_info("q-00001"), b = mesh.node_info("q-00002");
    return a && b && a->online && b->online;
  };
  ASSERT_TRUE(eventually(online, 30s)) << mesh.gateway().output();
  Client alerts(broker.uri());
  alerts.subscribe(alert_topic(mesh.name()));

  Key wrong = load_key_file(mesh.keys_dir() + "/nodes/q-00001.key");  // the simulator's
  wrong.bytes[5] ^= 0x10;
  auto topic = node_topic(mesh.name(), "c1", "q-00001", TopicKind::hb);
  auto env = make_envelope("q-00001", 7, 1, 0);
  env->which_message = kairos_v1_Envelope_heartbeat_tag;
  alerts.publish(topic, seal(topic, *env, wrong), 0);
  ASSERT_TRUE(eventually([&] {
    auto n = mesh.node_info("q-00001");
    return n && n->status == kairos_v1_NodeStatus_QUARANTINED;
  })) << mesh.gateway().output();
  // The alert, signed by the gateway with the operator key.
  ASSERT_TRUE(alerts.wait_for([&](const std::vector<Inbound>&) {
    return !alerts.frames(alert_topic(mesh.name()), mesh.operator_key(), kairos_v1_Envelope_alert_tag).empty();
  }));
  auto a = alerts.frames(alert_topic(mesh.name()), mesh.operator_key(), kairos_v1_Envelope_alert_tag).front();
  EXPECT_STREQ(a->message.alert.type, "HASH_MISMATCH");
  EXPECT_EQ(a->message.alert.priority, 4u);
  EXPECT_STREQ(a->message.alert.node, "q-00001");
  EXPECT_STREQ(a->message.alert.scope, "operator");
  EXPECT_NE(std::string(a->message.alert.suggested).find("kairosctl heal"), std::string::npos);
  ASSERT_TRUE(eventually([&] { return read_text(dir.file("hook.out")) == "HASH_MISMATCH 4 q-00001\n"; }))
      << read_text(dir.file("hook.out"));

  auto ctl = [&](const std::vector<std::string>& args) { return mesh.kairosctl(args); };
  // Work goes only to the other node.
  for (int k = 0; k < 4; ++k) {
    auto r = ctl({"delegate", "echo", "--payload", "w" + std::to_string(k), "--wait", "--json"});
    ASSERT_EQ(r.status, 0) << r.output;
    EXPECT_NE(r.output.find("\"winners\":[\"q-00002\"]"), std::string::npos) << r.output;
  }
  auto r = ctl({"delegate", "echo", "--payload", "two", "--redundancy", "2", "--retries", "0", "--wait"});
  EXPECT_EQ(r.status, 3) << "one node is not enough for two copies\n" << r.output;

  // The quarantine is in the database: a restarted gateway keeps it.
  mesh.gateway().signal(SIGTERM);
  ASSERT_EQ(mesh.gateway().wait(10s).value_or(-1), 0);
  mesh.start_gateway(extra);
  ASSERT_TRUE(eventually(online, 30s)) << mesh.gateway().output();
  auto n = mesh.node_info("q-00001");
  ASSERT_TRUE(n);
  EXPECT_EQ(n->status, kairos_v1_NodeStatus_QUARANTINED);

  // The resolution queue holds the task, with its suggested strategy.
  r = ctl({"conflicts", "--queue"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("task 1 open: node quarantined: check its key"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("1 resolution tasks open (highest priority first)"), std::string::npos) << r.output;

  // heal: both nodes take work again, and the task is closed.
  r = ctl({"heal", "q-00001"});
  ASSERT_EQ(r.status, 0) << r.output;
  r = ctl({"conflicts"});
  EXPECT_NE(r.output.find("task 1 resolved: healed by the operator"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("0 resolution tasks open"), std::string::npos) << r.output;
  r = ctl({"delegate", "echo", "--payload", "both", "--redundancy", "2", "--wait", "--json"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("q-00001"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("q-00002"), std::string::npos) << r.output;
  sim.signal(SIGTERM);
}

namespace {

std::vector<kairos_v1_ConflictEntry> conflict_log(Mesh& mesh) {
  kairos_v1_ControlRequest req = kairos_v1_ControlRequest_init_zero;
  req.which_verb = kairos_v1_ControlRequest_conflicts_tag;
  auto resp = mesh.ctl(req);
  if (!resp || !resp->ok) return {};
  const auto& l = resp->reply.conflicts;
  return {l.entries, l.entries + l.entries_count};
}

bool logged(Mesh& mesh, const std::string& type, const std::string& node, const std::string& words = "") {
  for (const auto& e : conflict_log(mesh))
    if (type == e.type && node == e.node && std::string(e.detail).find(words) != std::string::npos) return true;
  return false;
}

}  // namespace

// CONTEXT_DIVERGENCE and both kinds of TEMPORAL_PARADOX, detected for real
// (docs/DESIGN.md 5.6) from simulated nodes that misbehave in those ways.
TEST(Conflicts, ContextDivergenceAndTemporalParadoxesAreDetected) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  mesh.start_gateway("[liveness]\nheartbeat_period_s = 1\n");
  auto sim = [&](std::vector<std::string> more, const std::string& log) {
    more.insert(more.begin(), {"--phase-period-s", "0", "--classes", "A", "--clusters", "1"});
    return std::make_unique<Process>(mesh.sim_argv(more), dir.file(log));
  };
  auto same = sim({"--nodes", "4", "--prefix", "same", "--hb-period-s", "0.05"}, "same.log");
  auto odd = sim({"--nodes", "1", "--prefix", "odd", "--fail", "diverge=1"}, "odd.log");
  auto early = sim({"--nodes", "1", "--prefix", "early", "--cluster-prefix", "early", "--fail", "paradox=1"},
                   "early.log");
  Client watch(broker.uri());
  const std::string birth_topic = node_topic(mesh.name(), "c1", "same-00001", TopicKind::birth);
  const std::string hb_topic = node_topic(mesh.name(), "c1", "same-00001", TopicKind::hb);
  watch.subscribe(birth_topic);
  watch.subscribe(hb_topic);

  // One node of five in c1 runs another config.
  ASSERT_TRUE(eventually([&] { return logged(mesh, "CONTEXT_DIVERGENCE", "odd-00001", "differs from cluster c1"); }, 30s))
      << mesh.gateway().output();
  for (const auto& e : conflict_log(mesh)) EXPECT_NE(std::string(e.node).rfind("same-", 0), 0u) << e.node;
  // An operator closes its resolution task; a second close is refused.
  const std::vector<std::string> resolve{"resolve", "1", "--note", "config pushed"};
  auto r = mesh.kairosctl(resolve);
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("task 1 resolved; 0 still open"), std::string::npos) << r.output;
  r = mesh.kairosctl(resolve);
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("no open resolution task 1"), std::string::npos) << r.output;
  auto log = conflict_log(mesh);
  ASSERT_FALSE(log.empty());
  EXPECT_STREQ(log.front().resolution, "operator: config pushed");

  // A result stamped 10 s before its job was sent is not believed.
  ASSERT_TRUE(eventually([&] {
    auto n = mesh.node_info("early-00001");
    return n && n->online && n->clock_samples > 0;
  }, 30s));
  kairos_v1_ControlRequest req = kairos_v1_ControlRequest_init_zero;
  req.which_verb = kairos_v1_ControlRequest_delegate_tag;
  set_string(req.verb.delegate.handler, "echo");
  set_string(req.verb.delegate.to, "cluster:early1");
  req.verb.delegate.timeout_ms = 300;
  req.verb.delegate.has_retries = true;
  req.verb.delegate.retries = 0;
  auto resp = mesh.ctl(req);
  ASSERT_TRUE(resp && resp->ok);
  ASSERT_TRUE(eventually([&] { return logged(mesh, "TEMPORAL_PARADOX", "early-00001", "before the job was sent"); }))
      << mesh.gateway().output();

  // A frame of the current session far below what the node has sent since: a sequence regression.
  ASSERT_TRUE(watch.wait_for([&](const std::vector<Inbound>& seen) {
    return std::count_if(seen.begin(), seen.end(), [&](const Inbound& m) { return m.topic == hb_topic; }) > 80;
  }, 20s));
  auto birth = watch.last_on(birth_topic);
  ASSERT_TRUE(birth);
  const auto replays = mesh.drops("replay");
  watch.publish(birth_topic, birth->payload, 1, false);
  ASSERT_TRUE(eventually([&] { return mesh.drops("replay") == replays + 1; }));
  EXPECT_TRUE(eventually([&] { return logged(mesh, "TEMPORAL_PARADOX", "same-00001", "sequence regression"); }))
      << mesh.gateway().output();
  auto n = mesh.node_info("same-00001");
  ASSERT_TRUE(n);
  EXPECT_TRUE(n->online) << "the regression is logged; the node's registry entry is untouched";
}

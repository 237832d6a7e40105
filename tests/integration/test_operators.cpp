// Named operators (docs/PROTOCOL.md, Operators): each with its own key and
// topic, every change recorded with who asked, revocation that holds across
// a gateway restart. Real Mosquitto, gateway, kairos-sim and kairosctl.
#include <gtest/gtest.h>

#include <filesystem>

#include "common/core/frame.h"
#include "common/core/topic.h"
#include "common/io/files.h"
#include "tests/integration/harness.h"

using namespace kairos;
using namespace kairos::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

std::string key_path(const Mesh& mesh, const std::string& name) {
  return mesh.keys_dir() + "/operators/" + name + ".key";
}

// kairosctl as the named operator, with its own key.
RunResult as(const Mesh& mesh, const std::string& name, std::vector<std::string> args,
             const std::string& key_of = "") {
  std::vector<std::string> who{"--operator", name, "--key", key_path(mesh, key_of.empty() ? name : key_of)};
  args.insert(args.begin(), who.begin(), who.end());
  return mesh.kairosctl(args);
}

std::string one(const std::string& db, const std::string& sql) {
  auto rows = query_db(db, sql);
  return rows.empty() || rows[0].empty() ? "<none>" : rows[0][0];
}

bool has(const RunResult& r, const std::string& text) { return r.output.find(text) != std::string::npos; }

}  // namespace

TEST(Operators, EveryChangeIsRecordedWithItsOperatorAndARevokedOneIsRefused) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  write_key(key_path(mesh, "ana"));
  write_key(key_path(mesh, "bob"));
  const std::string db = dir.file("gateway.db");
  mesh.start_gateway("[liveness]\nheartbeat_period_s = 0.5\n");
  Process sim(mesh.sim_argv({"--nodes", "3", "--prefix", "s", "--classes", "A", "--clusters", "1", "--hb-period-s", "0.5",
                             "--phase-period-s", "0"}),
              dir.file("sim.log"));
  ASSERT_TRUE(eventually([&] {
    auto s = mesh.status();
    return s && s->nodes_online == 3;
  }, 30s)) << mesh.gateway().output();
  Client watch(broker.uri());
  watch.subscribe(alert_topic(mesh.name()));

  // Jobs: delegate and ask, each with the operator who asked.
  auto r = as(mesh, "ana", {"delegate", "echo", "--payload", "from ana", "--wait"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(has(r, "  asked by ana\n")) << r.output;
  r = as(mesh, "bob", {"ask", "q", "--handler", "echo", "--sample", "2"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(one(db, "SELECT operator FROM jobs WHERE id = 1"), "ana");
  EXPECT_EQ(one(db, "SELECT operator FROM jobs WHERE id = 2"), "bob");
  r = as(mesh, "bob", {"jobs", "1"});
  EXPECT_TRUE(has(r, "asked by ana")) << r.output;
  r = as(mesh, "bob", {"jobs"});
  EXPECT_TRUE(has(r, "OPERATOR")) << r.output;
  EXPECT_NE(r.output.find(" bob "), std::string::npos) << r.output;
  // The shared key's legacy topic still works, as "operator".
  r = mesh.kairosctl({"delegate", "echo", "--payload", "legacy", "--wait", "--json"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(has(r, "\"operator\":\"operator\"")) << r.output;

  // freeze (its snapshot), thaw, broadcast and schedule.
  r = as(mesh, "ana", {"freeze", "cluster:c1"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(one(db, "SELECT operator FROM snapshots WHERE kind = 'freeze'"), "ana");
  EXPECT_EQ(one(db, "SELECT json_extract(body, '$.operator') FROM snapshots WHERE kind = 'freeze'"), "ana");
  ASSERT_EQ(as(mesh, "bob", {"thaw"}).status, 0);
  ASSERT_EQ(as(mesh, "bob", {"broadcast", "hello from bob"}).status, 0);
  r = as(mesh, "ana", {"schedule", "thaw", "--in", "800", "--targets", "all"});
  ASSERT_NE(r.status, 1) << "answered (its verdict aside)\n" << r.output;

  // heal and resolve: two forged heartbeats quarantine two nodes.
  Key wrong{};
  wrong.bytes[0] = 1;
  for (const char* node : {"s-00001", "s-00002"}) {
    auto topic = node_topic(mesh.name(), "c1", node, TopicKind::hb);
    auto env = make_envelope(node, 7, 1, 0);
    env->which_message = kairos_v1_Envelope_heartbeat_tag;
    watch.publish(topic, seal(topic, *env, wrong), 0);
  }
  ASSERT_TRUE(eventually([&] { return one(db, "SELECT COUNT(*) FROM resolutions WHERE state = 'open'") == "2"; }))
      << mesh.gateway().output();
  std::string task = one(db, "SELECT r.id FROM resolutions r JOIN conflicts c ON c.id = r.conflict_id "
                             "WHERE c.node = 's-00001'");
  r = as(mesh, "ana", {"resolve", task, "--note", "checked"});
  ASSERT_EQ(r.status, 0) << r.output;
  r = as(mesh, "bob", {"heal", "s-00002"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(one(db, "SELECT resolved_by FROM resolutions WHERE id = " + task), "ana");
  EXPECT_EQ(one(db, "SELECT r.resolved_by FROM resolutions r JOIN conflicts c ON c.id = r.conflict_id "
                    "WHERE c.node = 's-00002'"),
            "bob");
  EXPECT_EQ(one(db, "SELECT operator FROM quarantine WHERE action = 'heal'"), "bob");
  r = as(mesh, "ana", {"conflicts"});
  EXPECT_TRUE(has(r, "resolved: operator: checked (by operator ana)")) << r.output;
  EXPECT_TRUE(has(r, "resolved: healed by the operator (by operator bob)")) << r.output;

  // Ball entries: the request's operator beside the person speaking.
  r = as(mesh, "ana", {"ball", "hut", "design", "--peers", "ana,bob", "--objective", "agree"});
  ASSERT_EQ(r.status, 0) << r.output;
  r = as(mesh, "bob", {"ball", "say", "design", "--as", "ana", "MM: over to you\n->bob"});
  ASSERT_EQ(r.status, 0) << r.output;
  r = as(mesh, "ana", {"ball", "ack", "design", "1", "read", "--as", "bob"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(one(db, "SELECT author || '/' || operator FROM ball_entries WHERE seq = 0"), "ana/ana");
  EXPECT_EQ(one(db, "SELECT author || '/' || operator FROM ball_entries WHERE seq = 1"), "ana/bob");
  EXPECT_EQ(one(db, "SELECT author || '/' || operator FROM ball_entries WHERE seq = 2"), "bob/ana");
  r = as(mesh, "ana", {"ball", "show", "design"});
  EXPECT_TRUE(has(r, "#0 genesis by ana at ")) << r.output;
  EXPECT_TRUE(has(r, "#1 entry by ana at ")) << r.output;
  EXPECT_TRUE(has(r, "(operator bob)\n")) << r.output;

  // The audit log and the list.
  EXPECT_EQ(one(db, "SELECT group_concat(verb, ',') FROM (SELECT verb FROM operator_log WHERE operator = 'bob' "
                    "ORDER BY id)"),
            "ask,thaw,broadcast,heal,ball");
  EXPECT_EQ(one(db, "SELECT group_concat(verb, ',') FROM (SELECT verb FROM operator_log WHERE operator = 'ana' "
                    "ORDER BY id)"),
            "delegate,freeze,schedule,resolve,ball,ball");
  r = as(mesh, "ana", {"operators", "log", "bob", "--limit", "2"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(has(r, " bob ")) << r.output;
  EXPECT_TRUE(has(r, "heal       s-00002")) << r.output;
  EXPECT_TRUE(has(r, "2 shown, newest first (older: kairosctl operators log bob --before ")) << r.output;
  r = as(mesh, "ana", {"operators"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(has(r, "ana              active   named    ")) << r.output;
  EXPECT_TRUE(has(r, "operator         active   shared   ")) << r.output;
  EXPECT_TRUE(has(r, "3 operators, 3 active; you are ana")) << r.output;

  // Revocation needs --confirm; then ana is refused, told why, and counted.
  r = as(mesh, "bob", {"operators", "revoke", "ana"});
  EXPECT_EQ(r.status, 2) << r.output;
  r = as(mesh, "bob", {"operators", "revoke", "ana", "--confirm"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(has(r, "operator ana revoked")) << r.output;
  ASSERT_TRUE(watch.wait_for([&](const std::vector<Inbound>&) {
    for (const auto& e : watch.frames(alert_topic(mesh.name()), mesh.operator_key(), kairos_v1_Envelope_alert_tag))
      if (std::string(e->message.alert.type) == "OPERATOR_REVOKED") return true;
    return false;
  })) << mesh.gateway().output();
  r = as(mesh, "ana", {"status"});
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(has(r, "operator ana is revoked (by bob)")) << r.output;
  r = as(mesh, "ana", {"operators", "restore", "ana", "--confirm"});
  EXPECT_EQ(r.status, 1) << "a revoked operator cannot restore itself\n" << r.output;
  r = as(mesh, "ana", {"operators", "revoke", "bob", "--confirm"});
  EXPECT_EQ(r.status, 1) << "nor revoke another\n" << r.output;
  EXPECT_EQ(mesh.drops("revoked"), 3u);
  EXPECT_EQ(one(db, "SELECT state || ' by ' || changed_by FROM operators WHERE name = 'ana'"), "revoked by bob");
  ASSERT_EQ(as(mesh, "bob", {"status"}).status, 0) << "bob still works";

  // Another operator's topic signed with one's own key: bad_mac, no answer.
  const auto bad_macs = mesh.drops("bad_mac");
  r = as(mesh, "bob", {"--timeout", "800", "status"}, "ana");  // ana's key on _ctl/req/bob
  EXPECT_EQ(r.status, 1) << r.output;
  r = as(mesh, "ana", {"--timeout", "800", "status"}, "bob");  // bob's key on _ctl/req/ana
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_EQ(mesh.drops("bad_mac"), bad_macs + 2);
  r = as(mesh, "carol", {"--timeout", "800", "status"}, "bob");  // no such operator
  EXPECT_EQ(r.status, 1) << r.output;

  // Revocation survives a restart.
  mesh.stop_gateway();
  mesh.start_gateway("[liveness]\nheartbeat_period_s = 0.5\n");
  r = as(mesh, "ana", {"status"});
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(has(r, "is revoked")) << r.output;
  r = as(mesh, "bob", {"operators", "--json"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(has(r, "{\"name\":\"ana\",\"state\":\"revoked\",\"key\":\"named\"")) << r.output;

  // The last active operator cannot be revoked: first the shared key, then bob himself.
  ASSERT_EQ(as(mesh, "bob", {"operators", "revoke", "operator", "--confirm"}).status, 0);
  r = mesh.kairosctl({"--timeout", "2000", "status"});
  EXPECT_EQ(r.status, 1) << "the shared key's requests are refused too\n" << r.output;
  r = as(mesh, "bob", {"operators", "revoke", "bob", "--confirm"});
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(has(r, "bob is the last active operator")) << r.output;
  r = as(mesh, "bob", {"operators", "restore", "ana", "--confirm"});
  ASSERT_EQ(r.status, 0) << r.output;
  ASSERT_EQ(as(mesh, "ana", {"status"}).status, 0) << "restored";
  EXPECT_EQ(one(db, "SELECT group_concat(verb || ' ' || detail, ',') FROM (SELECT verb, detail FROM operator_log "
                    "WHERE verb IN ('revoke', 'restore') ORDER BY id)"),
            "revoke ana,revoke operator,revoke bob,restore ana")
      << "the revoked operator's own attempts are refused before anything is recorded";
}

TEST(Operators, AnOlderDatabaseGetsTheOperatorColumns) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  // The tables as a gateway before named operators wrote them, with a job.
  dir.write("gateway.db", "");  // an empty file is an empty database
  exec_db(dir.file("gateway.db"), R"sql(
    CREATE TABLE jobs (id INTEGER PRIMARY KEY, handler TEXT NOT NULL, needs TEXT NOT NULL, dest TEXT NOT NULL,
      payload BLOB, timeout_ms INTEGER NOT NULL, redundancy INTEGER NOT NULL, retries INTEGER NOT NULL,
      state TEXT NOT NULL, retries_used INTEGER NOT NULL, next_attempt INTEGER NOT NULL,
      created_wall_us INTEGER NOT NULL, finished_wall_us INTEGER NOT NULL, status INTEGER NOT NULL,
      exit_code INTEGER NOT NULL, output BLOB, error TEXT NOT NULL, winners TEXT NOT NULL, dissent TEXT NOT NULL,
      poll INTEGER NOT NULL DEFAULT 0);
    INSERT INTO jobs VALUES (1, 'echo', '', '', x'6869', 1000, 1, 0, 'DONE', 0, 2, 1, 2, 1, 0, x'6869', '', 'n1', '', 0);
    CREATE TABLE snapshots (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, scope TEXT NOT NULL, at_wall_us INTEGER NOT NULL,
      body TEXT NOT NULL);
    CREATE TABLE quarantine (id INTEGER PRIMARY KEY, node TEXT NOT NULL,
      action TEXT NOT NULL CHECK (action IN ('quarantine', 'heal', 'data')), reason TEXT NOT NULL, data BLOB,
      at_wall_us INTEGER NOT NULL);
    CREATE TABLE ball_entries (ball_id TEXT NOT NULL, seq INTEGER NOT NULL, session TEXT NOT NULL, kind TEXT NOT NULL,
      author TEXT NOT NULL, at_us INTEGER NOT NULL, text BLOB NOT NULL, hash BLOB NOT NULL, PRIMARY KEY (ball_id, seq));
  )sql");
  mesh.start_gateway();
  for (const char* table : {"jobs", "snapshots", "quarantine", "ball_entries"})
    EXPECT_EQ(one(dir.file("gateway.db"), std::string("SELECT COUNT(*) FROM pragma_table_info('") + table +
                                              "') WHERE name = 'operator'"),
              "1")
        << table;
  auto r = mesh.kairosctl({"jobs", "1"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(has(r, "job 1 (echo): DONE")) << r.output;
  EXPECT_FALSE(has(r, "asked by")) << r.output;
  // And it records from then on: the shared key's requests as "operator".
  r = mesh.kairosctl({"ball", "hut", "design", "--peers", "ana,bob", "--objective", "agree"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_EQ(one(dir.file("gateway.db"), "SELECT author || '/' || operator FROM ball_entries"), "operator/operator");
}

TEST(Operators, ProvisionedOperatorsWriteOnlyTheirOwnRequestTopic) {
  TempDir dir;
  auto provision = [&](std::vector<std::string> args) {
    std::vector<std::string> argv{bin("kairosctl"), "--mesh", "farm", "--broker", "tcp://127.0.0.1:1883", "provision"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--out", dir.file("out")});
    return run_command(argv, dir.path());
  };
  ASSERT_EQ(provision({"--gateway", "gw1"}).status, 0);
  ASSERT_EQ(provision({"--operator", "alice"}).status, 0);
  ASSERT_EQ(provision({"--operator", "bob"}).status, 0);
  auto again = provision({"--operator", "alice"});
  EXPECT_TRUE(has(again, "already provisioned as asked")) << again.output;
  auto reserved = provision({"--operator", "operator"});
  EXPECT_EQ(reserved.status, 2) << reserved.output;
  const std::string keys = dir.file("out/gateway/etc/kairos/keys");
  const std::string alice = dir.file("out/operators/alice/etc/kairos");
  EXPECT_EQ(read_text(keys + "/operators/alice.key"), read_text(alice + "/operator-alice.key"));
  EXPECT_EQ(read_text(keys + "/operator.key"), read_text(alice + "/operator.key"));
  EXPECT_NE(read_text(keys + "/operators/alice.key"), read_text(keys + "/operators/bob.key"));
  const std::string acl = read_text(dir.file("out/mosquitto/acl"));
  EXPECT_NE(acl.find("user alice\ntopic write kairos/v1/farm/_ctl/req/alice\ntopic read #\n"), std::string::npos) << acl;
  EXPECT_EQ(acl.find("_ctl/req\n"), std::string::npos) << acl;

  // A broker loaded with the generated files, the gateway and alice's console on them.
  int port = free_port();
  dir.write("secure.conf", "listener " + std::to_string(port) + " 127.0.0.1\nallow_anonymous false\npersistence false\n"
                               "user root\npassword_file " + dir.file("out/mosquitto/passwd") + "\nacl_file " +
                               dir.file("out/mosquitto/acl") + "\n");
  Process mosq({"mosquitto", "-c", dir.file("secure.conf")}, dir.file("secure.log"));
  ASSERT_TRUE(eventually([&] { return read_text(dir.file("secure.log")).find(" running") != std::string::npos; }));
  auto localise = [&](const std::string& bundle, const std::string& file) {
    std::string text = read_text(bundle + "/" + file);
    for (auto [from, to] : {std::pair<std::string, std::string>{"/etc/kairos/keys", "@KEYS@"},
                            {"/etc/kairos/", bundle + "/"},
                            {"@KEYS@", keys},
                            {"/var/lib/kairos", dir.path()},
                            {"tcp://127.0.0.1:1883", "tcp://127.0.0.1:" + std::to_string(port)}})
      for (auto p = text.find(from); p != std::string::npos; p = text.find(from, p + to.size()))
        text.replace(p, from.size(), to);
    const std::string out = bundle + "/" + file + ".local";
    dir.write(fs::relative(out, dir.path()).string(), text);
    return out;
  };
  const std::string gw_cfg = localise(dir.file("out/gateway/etc/kairos"), "gateway.toml");
  const std::string alice_cfg = localise(alice, "kairosctl.toml");
  EXPECT_NE(read_text(alice_cfg).find("operator = \"alice\""), std::string::npos) << read_text(alice_cfg);
  Process gateway({bin("kairos-gateway"), "--config", gw_cfg}, dir.file("gw.log"));
  RunResult r;
  ASSERT_TRUE(eventually([&] {
    r = run_command({bin("kairosctl"), "--config", alice_cfg, "--timeout", "1000", "operators"}, dir.path());
    return r.status == 0;
  }, 20s)) << r.output << read_text(dir.file("gw.log"));
  EXPECT_TRUE(has(r, "you are alice")) << r.output;
  EXPECT_TRUE(has(r, "bob ")) << r.output;
  // alice with bob's key on bob's topic: the broker does not let her write there.
  r = run_command({bin("kairosctl"), "--config", alice_cfg, "--operator", "bob", "--key",
                   dir.file("out/operators/bob/etc/kairos/operator-bob.key"), "--timeout", "1000", "status"},
                  dir.path());
  EXPECT_EQ(r.status, 1) << r.output;
  // Nor on the shared key's legacy topic.
  r = run_command({bin("kairosctl"), "--config", alice_cfg, "--key", alice + "/operator.key", "--timeout", "1000",
                   "status"},
                  dir.path());
  EXPECT_EQ(r.status, 1) << r.output;
  r = run_command({bin("kairosctl"), "--config", alice_cfg, "--json", "operators"}, dir.path());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(has(r, "{\"name\":\"bob\",\"state\":\"active\",\"key\":\"named\",\"requests\":0,")) << r.output;
  EXPECT_TRUE(has(r, "{\"name\":\"operator\",\"state\":\"active\",\"key\":\"shared\",\"requests\":0,")) << r.output;
}

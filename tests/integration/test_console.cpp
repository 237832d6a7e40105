// kairosctl as an operator runs it, and what the gateway keeps in SQLite.
#include <gtest/gtest.h>
#include <signal.h>
#include <sqlite3.h>

#include "tests/integration/harness.h"

using namespace kairos;
using namespace kairos::test;
using namespace std::chrono_literals;

namespace {

bool all_online(Mesh& mesh, std::size_t n) {
  auto nodes = mesh.nodes();
  if (nodes.size() != n) return false;
  for (const auto& x : nodes)
    if (!x.online || !x.phase_valid) return false;
  return true;
}

std::vector<std::string> ctl_args(const Broker& b, const Mesh& m, const std::string& key) {
  return {bin("kairosctl"), "--broker", b.uri(), "--mesh", m.name(), "--key", key};
}

}  // namespace

TEST(Console, StatusAndNodesHumanAndJson) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  mesh.start_gateway();
  mesh.start_node("alpha", "north", "waveform = \"constant\"\noffset = 0.25\n");
  mesh.start_node("beta", "south", "waveform = \"sine\"\n");
  ASSERT_TRUE(eventually([&] { return all_online(mesh, 2); }));
  const std::string key = mesh.keys_dir() + "/operator.key";

  auto args = ctl_args(broker, mesh, key);
  args.push_back("nodes");
  auto r = run_command(args, dir.path());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("NODE"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("alpha"), std::string::npos);
  EXPECT_NE(r.output.find("0.250 +0.000i"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("2 nodes"), std::string::npos);

  args = ctl_args(broker, mesh, key);
  args.insert(args.end(), {"nodes", "--cluster", "south", "--json"});
  r = run_command(args, dir.path());
  ASSERT_EQ(r.status, 0) << r.output;
  dir.write("nodes.json", r.output);
  auto check = run_command({"/usr/bin/python3", "-c",
                            "import json,sys; d=json.load(open(sys.argv[1])); "
                            "assert [n['id'] for n in d]==['beta'], d; assert d[0]['online'] is True; "
                            "assert d[0]['cluster']=='south'; print('ok')",
                            dir.file("nodes.json")},
                           dir.path());
  EXPECT_EQ(check.status, 0) << check.output << r.output;

  args = ctl_args(broker, mesh, key);
  args.insert(args.end(), {"--json", "status"});
  r = run_command(args, dir.path());
  ASSERT_EQ(r.status, 0) << r.output;
  dir.write("status.json", r.output);
  check = run_command({"/usr/bin/python3", "-c",
                       "import json,sys; d=json.load(open(sys.argv[1])); "
                       "assert d['nodes_online']==2 and d['nodes_known']==2, d; "
                       "assert d['mesh_state']['mode']=='FULL'; assert d['clusters']==2; print('ok')",
                       dir.file("status.json")},
                      dir.path());
  EXPECT_EQ(check.status, 0) << check.output << r.output;

  args = ctl_args(broker, mesh, key);
  args.push_back("status");
  r = run_command(args, dir.path());
  ASSERT_EQ(r.status, 0);
  EXPECT_NE(r.output.find("agents active     2 / 2"), std::string::npos) << r.output;
}

TEST(Console, FailuresSayWhatToDo) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  mesh.start_gateway();
  // Another operator key: the gateway drops the request (bad_mac), no answer.
  write_key(dir.file("other.key"));
  auto args = ctl_args(broker, mesh, dir.file("other.key"));
  args.insert(args.end(), {"--timeout", "800", "status"});
  auto r = run_command(args, dir.path());
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("same operator key"), std::string::npos) << r.output;
  EXPECT_TRUE(eventually([&] { return mesh.drops("bad_mac") == 1; }));

  // No broker there.
  args = {bin("kairosctl"), "--broker", "tcp://127.0.0.1:" + std::to_string(free_port()), "--mesh", "demo",
          "--key", mesh.keys_dir() + "/operator.key", "--timeout", "800", "status"};
  r = run_command(args, dir.path());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.output.find("is the broker running"), std::string::npos) << r.output;

  // Usage errors.
  r = run_command({bin("kairosctl"), "--mesh", "demo", "status"}, dir.path());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("no operator key"), std::string::npos) << r.output;
  r = run_command({bin("kairosctl"), "--key", mesh.keys_dir() + "/operator.key", "frobnicate"}, dir.path());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("unknown verb"), std::string::npos) << r.output;
}

TEST(Store, NodesPersistInSqliteAndSurviveAGatewayRestart) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  mesh.start_gateway();
  mesh.start_node("n1", "c1", "waveform = \"sine\"\n", "capabilities = [\"audio\"]\nheartbeat_period_s = 0.5");
  ASSERT_TRUE(eventually([&] { return all_online(mesh, 1); }));
  mesh.gateway().signal(SIGTERM);
  ASSERT_EQ(mesh.gateway().wait(10s).value_or(-1), 0);

  // The file is a real SQLite database in WAL mode holding the node.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open_v2(dir.file("gateway.db").c_str(), &db, SQLITE_OPEN_READONLY, nullptr), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT id, cluster, capabilities, online FROM nodes", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "n1");
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 1)), "c1");
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 2)), "audio,job:read,job:actuate");
  EXPECT_EQ(sqlite3_column_int(st, 3), 1);
  EXPECT_EQ(sqlite3_step(st), SQLITE_DONE);
  sqlite3_finalize(st);
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "wal");
  sqlite3_finalize(st);
  ASSERT_EQ(sqlite3_prepare_v2(db, "SELECT high_water FROM sessions WHERE sender='n1'", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_GT(sqlite3_column_int64(st, 0), 1);
  sqlite3_finalize(st);
  sqlite3_close(db);

  // Restarted, the gateway knows the node and re-reads the retained birth
  // and state without counting them as replays.
  mesh.start_gateway();
  ASSERT_TRUE(eventually([&] { return all_online(mesh, 1); }));
  EXPECT_EQ(mesh.drops("replay"), 0u) << mesh.gateway().output();
  EXPECT_EQ(mesh.node_info("n1")->cluster, std::string("c1"));
}

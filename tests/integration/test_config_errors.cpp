// Bad configuration: exit status 2 and a message naming file, line, column and key.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "tests/integration/harness.h"

using namespace kairos;
using namespace kairos::test;

namespace {

struct Case {
  const char* name;
  const char* text;
  const char* expect;  // substring of the message: "file:line:col: key '...'"
};

std::string node_base(const TempDir& dir) {
  write_key(dir.file("n1.key"));
  return "[node]\nid = \"n1\"\nkey_file = \"" + dir.file("n1.key") + "\"\nboards_dir = \"" + KAIROS_SOURCE_DIR +
         "/boards\"\n";
}

}  // namespace

TEST(ConfigErrors, NodeRefusesBadConfigsWithTheirPlace) {
  TempDir dir;
  const std::string base = node_base(dir);  // lines 1-4
  const Case cases[] = {
      {"unknown key", "colour = \"red\"\n[inputs.a]\n", ":5:1: key 'node.colour': unknown key"},
      {"wrong type", "heartbeat_period_s = \"fast\"\n[inputs.a]\n",
       ":5:22: key 'node.heartbeat_period_s': expected a number, got a string"},
      {"syntax error", "scales = [1,\n[inputs.a]\n", ":6:"},
      {"out of range", "scales = 99\n[inputs.a]\n", ":5:10: key 'node.scales': 99 is out of range"},
      {"unknown input key", "[inputs.a]\nkind = \"synthetic\"\nperiod = 2\n", ":7:1: key 'inputs.a.period': unknown key"},
      {"bad choice", "[inputs.a]\nwaveform = \"saw\"\n", ":6:12: key 'inputs.a.waveform': 'saw' is not one of"},
  };
  for (const auto& c : cases) {
    dir.write("bad.toml", base + c.text);
    auto r = run_command({bin("kairos-node"), "--config", dir.file("bad.toml"), "--dump-config"}, dir.path());
    EXPECT_EQ(r.status, 2) << c.name << ": " << r.output;
    EXPECT_NE(r.output.find(dir.file("bad.toml") + c.expect), std::string::npos)
        << c.name << ": " << r.output;
  }
}

TEST(ConfigErrors, GatewayRefusesBadConfigsWithTheirPlace) {
  TempDir dir;
  const std::string base = "[gateway]\nid = \"gw\"\nmesh = \"m\"\nkeys_dir = \"/x\"\ndatabase = \"/x.db\"\n";
  const Case cases[] = {
      {"unknown key", "[sync]\nperiod = 5\n", ":7:1: key 'sync.period': unknown key"},
      {"wrong type", "[liveness]\nmissed_heartbeats = 2.5\n",
       ":7:21: key 'liveness.missed_heartbeats': expected an integer, got a float"},
      {"syntax error", "[sync\n", ":6:"},
      {"thresholds", "[sync]\nunified_enter = 0.5\nunified_leave = 0.6\n",
       ":8:17: key 'sync.unified_leave': must not exceed unified_enter"},
      {"unknown role", "[hierarchy]\nrole = \"leaf\"\n", ":7:8: key 'hierarchy.role': "},
      {"sector without its name", "[hierarchy]\nrole = \"sector\"\n", ":6:1: key 'hierarchy.sector': a gateway with role"},
      {"a root's sector named twice", "[hierarchy]\nrole = \"root\"\nsectors = [\"a\", \"a\"]\n",
       ":8:11: key 'hierarchy.sectors': sector 'a' is named twice"},
      {"sectors on a standalone gateway", "[hierarchy]\nsectors = [\"a\"]\n",
       ":7:11: key 'hierarchy.sectors': only a gateway with role = \"root\" reads sectors"},
      {"a wildcard in Home Assistant's prefix", "[homeassistant]\ndiscovery_prefix = \"ha/#\"\n",
       ":7:20: key 'homeassistant.discovery_prefix': 'ha/#' holds an MQTT wildcard"},
      {"Home Assistant's states under kairos/", "[homeassistant]\nstate_prefix = \"kairos/v1/m/ha\"\n",
       ":7:16: key 'homeassistant.state_prefix': 'kairos/v1/m/ha' is under kairos/"},
      {"states under the discovery prefix", "[homeassistant]\nstate_prefix = \"homeassistant/kairos\"\n",
       ":7:16: key 'homeassistant.state_prefix': must not be under discovery_prefix"},
      {"a Sparkplug group id with a slash", "[sparkplug]\ngroup_id = \"plant/1\"\n",
       ":7:12: key 'sparkplug.group_id': 'plant/1' is not a Sparkplug group id"},
  };
  for (const auto& c : cases) {
    dir.write("gw.toml", base + c.text);
    auto r = run_command({bin("kairos-gateway"), "--config", dir.file("gw.toml")}, dir.path());
    EXPECT_EQ(r.status, 2) << c.name << ": " << r.output;
    EXPECT_NE(r.output.find(dir.file("gw.toml") + c.expect), std::string::npos) << c.name << ": " << r.output;
  }
}

TEST(ConfigErrors, MissingFileAndUnknownBoard) {
  TempDir dir;
  auto r = run_command({bin("kairos-node"), "--config", dir.file("absent.toml")}, dir.path());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("absent.toml"), std::string::npos) << r.output;
  dir.write("n.toml", node_base(dir) + "board = \"pi-99\"\n[inputs.a]\n");
  r = run_command({bin("kairos-node"), "--config", dir.file("n.toml")}, dir.path());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find(":5:9: key 'node.board': no board 'pi-99' in "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("(boards: generic-linux, pi-2-b, "), std::string::npos) << r.output;
}

TEST(ConfigErrors, KeyFileReadableByOthersIsRefused) {
  TempDir dir;
  dir.write("n.toml", node_base(dir) + "[broker]\nuri = \"tcp://127.0.0.1:1\"\n[inputs.a]\n");
  chmod(dir.file("n1.key").c_str(), 0644);
  auto r = run_command({bin("kairos-node"), "--config", dir.file("n.toml")}, dir.path());
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("chmod 600"), std::string::npos) << r.output;
}

TEST(ConfigErrors, DumpConfigPrintsEffectiveConfigAndContextHash) {
  TempDir dir;
  const std::string base = node_base(dir);
  dir.write("a.toml", base + "[inputs.a]\nperiod_s = 2\n");
  auto a = run_command({bin("kairos-node"), "--config", dir.file("a.toml"), "--dump-config"}, dir.path());
  ASSERT_EQ(a.status, 0) << a.output;
  EXPECT_NE(a.output.find("node.heartbeat_period_s = 5.0\n"), std::string::npos) << a.output;  // a default
  EXPECT_NE(a.output.find("inputs.a.period_s = 2.0\n"), std::string::npos);
  EXPECT_NE(a.output.find("board_file.board.tau_base_s = 0.1\n"), std::string::npos);
  auto hash_of = [](const std::string& out) {
    auto p = out.find("context_hash = \"");
    return p == std::string::npos ? std::string() : out.substr(p + 16, 64);
  };
  EXPECT_EQ(hash_of(a.output).size(), 64u);
  // Another node set up alike shares the hash; a different setting changes it.
  std::string other = base;
  other.replace(other.find("id = \"n1\""), 9, "id = \"n2\"");
  dir.write("b.toml", other + "[inputs.a]\nperiod_s = 2.0\n");
  auto b = run_command({bin("kairos-node"), "--config", dir.file("b.toml"), "--dump-config"}, dir.path());
  EXPECT_EQ(hash_of(a.output), hash_of(b.output));
  dir.write("c.toml", base + "[inputs.a]\nperiod_s = 3\n");
  auto c = run_command({bin("kairos-node"), "--config", dir.file("c.toml"), "--dump-config"}, dir.path());
  EXPECT_NE(hash_of(a.output), hash_of(c.output));
}

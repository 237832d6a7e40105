// kairosctl provision, checked for real: the generated Mosquitto password and
// ACL files loaded by a real broker, a node and a gateway running on the
// generated configs, and an install onto a scratch SD-card root.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "common/core/frame.h"
#include "common/core/topic.h"
#include "common/io/clock.h"
#include "tests/integration/harness.h"

using namespace kairos;
using namespace kairos::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const std::string kMesh = "farm";

RunResult provision(const TempDir& dir, std::vector<std::string> args) {
  std::vector<std::string> argv{bin("kairosctl"), "--mesh", kMesh, "provision"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"--out", dir.file("out"), "--boards", std::string(KAIROS_SOURCE_DIR) + "/boards"});
  return run_command(argv, dir.path());
}

std::string password_of(const TempDir& dir, const std::string& who) {
  auto p = read_text(dir.file("out/" + who + "/etc/kairos/broker.password"));
  return p.substr(0, p.find('\n'));
}

// A connected MQTT link with a user's credentials, or nullptr when refused.
std::unique_ptr<MqttLink> login(int port, const std::string& user, const std::string& password) {
  MqttOptions o;
  o.uri = "tcp://127.0.0.1:" + std::to_string(port);
  o.client_id = user + "-test-" + std::to_string(random_u64() % 100000);
  o.username = user;
  o.password = password;
  o.reconnect_min_s = 5;  // one attempt in this window
  auto link = std::make_unique<MqttLink>(o);
  bool failed = false;
  eventually([&] {
    link->service(mono_us());
    for (auto& ev : link->wait(mono_us() + 20'000))
      if (ev.type == LinkEvent::Type::connect_failed) failed = true;
    return link->connected() || failed;
  }, 10s);
  return link->connected() ? std::move(link) : nullptr;
}

// Pumps link until a message on topic arrives; returns every topic seen.
std::vector<std::string> receive_until(MqttLink& link, const std::string& topic) {
  std::vector<std::string> seen;
  eventually([&] {
    for (auto& ev : link.wait(mono_us() + 20'000))
      if (ev.type == LinkEvent::Type::message) seen.push_back(ev.msg.topic);
    return std::find(seen.begin(), seen.end(), topic) != seen.end();
  }, 10s);
  return seen;
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

TEST(Provision, GeneratedAclConfinesEachNodeToItsOwnTopics) {
  TempDir dir;
  ASSERT_EQ(provision(dir, {"--gateway", "gw1"}).status, 0);
  auto r = provision(dir, {"n1", "--cluster", "barn", "--board", "pi-zero-w"});
  ASSERT_EQ(r.status, 0) << r.output;
  ASSERT_EQ(provision(dir, {"n2", "--cluster", "barn", "--board", "pi-4-b"}).status, 0);
  int port = free_port();
  dir.write("secure.conf", "listener " + std::to_string(port) + " 127.0.0.1\nallow_anonymous false\npersistence false\nuser root\n"
                               "password_file " + dir.file("out/mosquitto/passwd") + "\nacl_file " +
                               dir.file("out/mosquitto/acl") + "\n");
  Process mosq({"mosquitto", "-c", dir.file("secure.conf")}, dir.file("secure.log"));
  ASSERT_TRUE(eventually([&] { return read_text(dir.file("secure.log")).find(" running") != std::string::npos; }))
      << read_text(dir.file("secure.log"));
  // Credentials are checked: a wrong password is refused.
  EXPECT_FALSE(login(port, "n1", "not-the-password"));
  auto gw = login(port, "gw1", password_of(dir, "gw1"));
  auto n1 = login(port, "n1", password_of(dir, "n1"));
  ASSERT_TRUE(gw && n1);

  const std::string mesh_root = "kairos/v1/" + kMesh + "/";
  auto own = node_topic(kMesh, "barn", "n1", TopicKind::hb);
  auto other = node_topic(kMesh, "barn", "n2", TopicKind::hb);
  gw->add_subscription(mesh_root + "#", 1);
  // A probe proves the gateway's subscription is in place.
  gw->publish(mesh_root + "_gw/gw1/state", Bytes{1}, 1, false);
  receive_until(*gw, mesh_root + "_gw/gw1/state");

  // n1 may publish its own reports, not another node's, nor a broadcast;
  // its own report, sent last, shows the forbidden ones were dropped.
  n1->publish(other, Bytes{1}, 1, false);
  n1->publish(mesh_state_topic(kMesh), Bytes{2}, 1, false);
  n1->publish(node_topic(kMesh, "barn", "n2", TopicKind::birth), Bytes{3}, 1, false);
  n1->publish(own, Bytes{4}, 1, false);
  auto seen = receive_until(*gw, own);
  EXPECT_TRUE(contains(seen, own));
  EXPECT_FALSE(contains(seen, other));
  EXPECT_FALSE(contains(seen, mesh_state_topic(kMesh)));
  EXPECT_FALSE(contains(seen, node_topic(kMesh, "barn", "n2", TopicKind::birth)));

  // n1 may read its own commands, not n2's.
  auto cmd1 = node_topic(kMesh, "barn", "n1", TopicKind::cmd);
  auto cmd2 = node_topic(kMesh, "barn", "n2", TopicKind::cmd);
  n1->add_subscription(cmd2, 1);
  n1->add_subscription(mesh_root + "#", 1);
  n1->add_subscription(cmd1, 1);
  gw->publish(cmd1, Bytes{0}, 1, false);  // round trip: the subscriptions are in place
  receive_until(*n1, cmd1);
  gw->publish(cmd2, Bytes{5}, 1, false);
  gw->publish(mesh_state_topic(kMesh), Bytes{6}, 1, false);
  gw->publish(cmd1, Bytes{7}, 1, false);
  std::vector<std::string> got;
  eventually([&] {
    for (auto& ev : n1->wait(mono_us() + 20'000))
      if (ev.type == LinkEvent::Type::message) got.push_back(ev.msg.topic);
    return std::count(got.begin(), got.end(), cmd1) >= 1 && contains(got, mesh_state_topic(kMesh));
  }, 10s);
  EXPECT_TRUE(contains(got, cmd1));
  EXPECT_TRUE(contains(got, mesh_state_topic(kMesh)));  // broadcasts are readable
  EXPECT_FALSE(contains(got, cmd2)) << "n1 read n2's commands";
}

TEST(Provision, ANodeAndGatewayRunOnTheGeneratedFiles) {
  TempDir dir;
  ASSERT_EQ(provision(dir, {"--gateway", "gw1"}).status, 0);
  ASSERT_EQ(provision(dir, {"--operator", "alice"}).status, 0);
  ASSERT_EQ(provision(dir, {"n1", "--cluster", "barn"}).status, 0);
  int port = free_port();
  dir.write("secure.conf", "listener " + std::to_string(port) + " 127.0.0.1\nallow_anonymous false\npersistence false\nuser root\n"
                               "password_file " + dir.file("out/mosquitto/passwd") + "\nacl_file " +
                               dir.file("out/mosquitto/acl") + "\n");
  Process mosq({"mosquitto", "-c", dir.file("secure.conf")}, dir.file("secure.log"));
  ASSERT_TRUE(eventually([&] { return read_text(dir.file("secure.log")).find(" running") != std::string::npos; }));
  // The bundles name on-device paths; point them at this test's copies.
  auto localise = [&](const std::string& who, const std::string& file, const std::string& extra) {
    std::string text = read_text(dir.file("out/" + who + "/etc/kairos/" + file));
    std::string uri = "tcp://127.0.0.1:" + std::to_string(port);
    for (auto [from, to] : {std::pair<std::string, std::string>{"/etc/kairos/keys", "@KEYS@"},
                            {"/etc/kairos", dir.file("out/" + who + "/etc/kairos")},
                            {"@KEYS@", dir.file("out/gateway/etc/kairos/keys")},
                            {"/var/lib/kairos", dir.path()},
                            {"/usr/share/kairos/boards", std::string(KAIROS_SOURCE_DIR) + "/boards"},
                            {"tcp://127.0.0.1:1883", uri}}) {
      for (auto p = text.find(from); p != std::string::npos; p = text.find(from, p + to.size())) text.replace(p, from.size(), to);
    }
    dir.write(who + ".toml", text + extra);
    return dir.file(who + ".toml");
  };
  Process gateway({bin("kairos-gateway"), "--config", localise("gw1", "gateway.toml", "")}, dir.file("gw.log"));
  Process node({bin("kairos-node"), "--config", localise("n1", "node.toml", "")}, dir.file("n1.log"));
  auto ctl_cfg = localise("alice", "kairosctl.toml", "");
  EXPECT_TRUE(eventually([&] {
    auto r = run_command({bin("kairosctl"), "--config", ctl_cfg, "--timeout", "1000", "--json", "nodes"}, dir.path());
    return r.status == 0 && r.output.find("\"id\":\"n1\"") != std::string::npos &&
           r.output.find("\"online\":true") != std::string::npos;
  }, 20s)) << read_text(dir.file("gw.log")) << read_text(dir.file("n1.log")) << read_text(dir.file("secure.log"));
}

TEST(Provision, RefusesAnExistingNodeAndNeverReplacesAKeySilently) {
  TempDir dir;
  ASSERT_EQ(provision(dir, {"n1", "--cluster", "barn"}).status, 0);
  auto key_path = dir.file("out/gateway/etc/kairos/keys/nodes/n1.key");
  auto key = read_text(key_path);
  ASSERT_EQ(key.size(), 65u);
  struct stat st {};
  ASSERT_EQ(stat(key_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat(dir.file("out/n1/etc/kairos/node.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(read_text(dir.file("out/n1/etc/kairos/node.key")), key);

  auto again = provision(dir, {"n1", "--cluster", "barn"});
  EXPECT_EQ(again.status, 1);
  EXPECT_NE(again.output.find("already provisioned"), std::string::npos) << again.output;
  EXPECT_EQ(read_text(key_path), key);

  auto forced = provision(dir, {"n1", "--cluster", "field", "--force"});
  ASSERT_EQ(forced.status, 0) << forced.output;
  EXPECT_NE(forced.output.find("kept the existing key"), std::string::npos);
  EXPECT_EQ(read_text(key_path), key);
  auto acl = read_text(dir.file("out/mosquitto/acl"));
  EXPECT_NE(acl.find("kairos/v1/farm/field/n1/hb"), std::string::npos);
  EXPECT_EQ(acl.find("kairos/v1/farm/barn/n1/hb"), std::string::npos) << "the old block is replaced, not kept";
  EXPECT_EQ(std::count(acl.begin(), acl.end(), '\n'), 13);

  auto rotated = provision(dir, {"n1", "--cluster", "field", "--force", "--new-key"});
  ASSERT_EQ(rotated.status, 0);
  EXPECT_NE(rotated.output.find("REPLACING the key"), std::string::npos);
  EXPECT_NE(read_text(key_path), key);
  EXPECT_EQ(read_text(dir.file("out/n1/etc/kairos/node.key")), read_text(key_path));

  auto bad = provision(dir, {"n/3"});
  EXPECT_EQ(bad.status, 2);
  auto board = provision(dir, {"n4", "--board", "pi-99"});
  EXPECT_EQ(board.status, 2);
  EXPECT_NE(board.output.find("pi-99.toml"), std::string::npos) << board.output;
}

TEST(Provision, InstallsOntoAnSdCardRoot) {
  TempDir dir;
  // The node package of this machine's architecture, built here.
  auto pack = run_command({KAIROS_CPACK, "-G", "DEB", "-B", dir.file("debs"), "--config",
                           std::string(KAIROS_BINARY_DIR) + "/CPackConfig.cmake"},
                          KAIROS_BINARY_DIR, 120s);
  ASSERT_EQ(pack.status, 0) << pack.output;
  fs::create_directories(dir.file("rootfs/etc"));
  auto r = provision(dir, {"n1", "--cluster", "barn", "--board", "generic-linux", "--rootfs", dir.file("rootfs"),
                           "--debs", dir.file("debs")});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(fs::exists(dir.file("rootfs/usr/bin/kairos-node")));
  EXPECT_TRUE(fs::exists(dir.file("rootfs/lib/systemd/system/kairos-node.service")));
  EXPECT_TRUE(fs::exists(dir.file("rootfs/usr/share/kairos/boards/pi-zero.toml")));
  EXPECT_TRUE(fs::exists(dir.file("rootfs/usr/lib/sysusers.d/kairos.conf")));
  EXPECT_EQ(fs::read_symlink(dir.file("rootfs/etc/systemd/system/multi-user.target.wants/kairos-node.service")),
            "/lib/systemd/system/kairos-node.service");
  struct stat st {};
  ASSERT_EQ(stat(dir.file("rootfs/etc/kairos/node.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_NE(read_text(dir.file("rootfs/etc/kairos/node.toml")).find("id = \"n1\""), std::string::npos);
  EXPECT_FALSE(fs::exists(dir.file("rootfs/etc/NetworkManager/conf.d/kairos-wifi-powersave.conf")))
      << "generic-linux has no radio";

  // A Wi-Fi board needs an ARM package: refused with this machine's one ...
  auto wrong = provision(dir, {"n2", "--board", "pi-3-b", "--rootfs", dir.file("rootfs"), "--debs", dir.file("debs")});
  EXPECT_EQ(wrong.status, 1);
  EXPECT_NE(wrong.output.find("tools/package armhf"), std::string::npos) << wrong.output;
  // ... and installed with the armhf one from tools/cross-test.
  std::string armhf = std::string(KAIROS_SOURCE_DIR) + "/build-armhf/dist";
  if (!fs::exists(armhf)) GTEST_SKIP() << "no armhf packages (tools/cross-test armhf builds them)";
  auto ok = provision(dir, {"n3", "--board", "pi-3-b", "--rootfs", dir.file("rootfs"), "--debs", armhf});
  ASSERT_EQ(ok.status, 0) << ok.output;
  EXPECT_NE(read_text(dir.file("rootfs/etc/NetworkManager/conf.d/kairos-wifi-powersave.conf")).find("wifi.powersave = 2"),
            std::string::npos);
  EXPECT_TRUE(fs::is_symlink(dir.file("rootfs/etc/systemd/system/multi-user.target.wants/kairos-wifi-powersave.service")));
}

// kairosctl provision, checked for real: the generated Mosquitto password and
// ACL files loaded by a real broker, a node and a gateway running on the
// generated configs, and an install onto a scratch SD-card root.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "common/core/frame.h"
#include "common/core/topic.h"
#include "common/core/x509.h"
#include "common/io/clock.h"
#include "tests/integration/harness.h"
#include "tools/kairosctl/certs.h"

using namespace kairos;
using namespace kairos::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const std::string kMesh = "farm";

RunResult provision(const TempDir& dir, std::vector<std::string> args) {
  std::vector<std::string> argv{bin("kairosctl"), "--mesh", kMesh, "--broker", "tcp://127.0.0.1:1883", "provision"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"--out", dir.file("out"), "--boards", std::string(KAIROS_SOURCE_DIR) + "/boards"});
  return run_command(argv, dir.path());
}

// The bundle of a node, the gateway ("gateway") or an operator ("operators/NAME").
std::string bundle(const TempDir& dir, const std::string& who) {
  if (who == "gateway" || who.rfind("operators/", 0) == 0) return dir.file("out/" + who + "/etc/kairos");
  return dir.file("out/nodes/" + who + "/etc/kairos");
}

std::string password_of(const TempDir& dir, const std::string& who) {
  std::string file = who == "gateway"                     ? "gateway.password"
                     : who.rfind("operators/", 0) == 0 ? "operator-" + who.substr(10) + ".password"
                                                           : "broker.password";
  auto p = read_text(bundle(dir, who) + "/" + file);
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

// A Mosquitto on port loaded with the generated passwd and ACL, once it
// runs (nullptr when it does not start).
std::unique_ptr<Process> secure_broker(const TempDir& dir, int port) {
  dir.write("secure.conf", "listener " + std::to_string(port) + " 127.0.0.1\nallow_anonymous false\npersistence false\nuser root\n"
                               "password_file " + dir.file("out/mosquitto/passwd") + "\nacl_file " +
                               dir.file("out/mosquitto/acl") + "\n");
  auto mosq = std::make_unique<Process>(std::vector<std::string>{"mosquitto", "-c", dir.file("secure.conf")}, dir.file("secure.log"));
  if (!eventually([&] { return read_text(dir.file("secure.log")).find(" running") != std::string::npos; })) return nullptr;
  return mosq;
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
  auto mosq = secure_broker(dir, port);
  ASSERT_TRUE(mosq) << read_text(dir.file("secure.log"));
  // Credentials are checked: a wrong password is refused.
  EXPECT_FALSE(login(port, "n1", "not-the-password"));
  auto gw = login(port, "gw1", password_of(dir, "gateway"));
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
  auto mosq = secure_broker(dir, port);
  ASSERT_TRUE(mosq) << read_text(dir.file("secure.log"));
  // The bundles name on-device paths; point them at this test's copies.
  auto localise = [&](const std::string& who, const std::string& file, const std::string& extra) {
    std::string text = read_text(bundle(dir, who) + "/" + file);
    std::string uri = "tcp://127.0.0.1:" + std::to_string(port);
    for (auto [from, to] : {std::pair<std::string, std::string>{"/etc/kairos/keys", "@KEYS@"},
                            {"/etc/kairos", bundle(dir, who)},
                            {"@KEYS@", dir.file("out/gateway/etc/kairos/keys")},
                            {"/var/lib/kairos", dir.path()},
                            {"/usr/share/kairos/boards", std::string(KAIROS_SOURCE_DIR) + "/boards"},
                            {"tcp://127.0.0.1:1883", uri}}) {
      for (auto p = text.find(from); p != std::string::npos; p = text.find(from, p + to.size())) text.replace(p, from.size(), to);
    }
    dir.write(who + ".toml", text + extra);
    return dir.file(who + ".toml");
  };
  Process gateway({bin("kairos-gateway"), "--config", localise("gateway", "gateway.toml", "")}, dir.file("gw.log"));
  Process node({bin("kairos-node"), "--config", localise("n1", "node.toml", "")}, dir.file("n1.log"));
  auto ctl_cfg = localise("operators/alice", "kairosctl.toml", "");
  EXPECT_TRUE(eventually([&] {
    auto r = run_command({bin("kairosctl"), "--config", ctl_cfg, "--timeout", "1000", "--json", "nodes"}, dir.path());
    return r.status == 0 && r.output.find("\"id\":\"n1\"") != std::string::npos &&
           r.output.find("\"online\":true") != std::string::npos;
  }, 20s)) << read_text(dir.file("gw.log")) << read_text(dir.file("n1.log")) << read_text(dir.file("secure.log"));
}

namespace {

// Everything under root: path -> type, mode, and content or link target.
std::map<std::string, std::string> snapshot(const std::string& root) {
  std::map<std::string, std::string> out;
  if (!fs::exists(root)) return out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    auto st = fs::symlink_status(it->path());
    auto rel = fs::relative(it->path(), root).string();
    auto mode = std::to_string(static_cast<unsigned>(st.permissions()));
    if (fs::is_symlink(st)) out[rel] = "link " + fs::read_symlink(it->path()).string();
    else if (fs::is_directory(st)) out[rel] = "dir " + mode;
    else out[rel] = "file " + mode + " " + read_text(it->path().string());
  }
  return out;
}

// A card shaped like a Debian 12 / Raspberry Pi OS image of this machine's
// architecture: merged /usr, an os-release, and a dpkg status in which the
// given packages are installed.
void make_card(const std::string& card, const std::vector<std::string>& installed, const std::string& arch) {
  for (auto d : {"usr/bin", "usr/sbin", "usr/lib/systemd/system", "etc/systemd/system/multi-user.target.wants",
                 "var/lib/dpkg/info"})
    fs::create_directories(card + "/" + d);
  for (auto l : {"bin", "sbin", "lib"}) fs::create_symlink(std::string("usr/") + l, card + "/" + l);
  fs::copy_file("/usr/bin/dash", card + "/usr/bin/dash");
  fs::create_symlink("dash", card + "/usr/bin/sh");
  fs::create_symlink("/lib/systemd/system/ssh.service", card + "/etc/systemd/system/multi-user.target.wants/ssh.service");
  std::ofstream(card + "/etc/os-release") << "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n";
  std::string status;
  for (const auto& p : installed)
    status += "Package: " + p + "\nStatus: install ok installed\nArchitecture: " + arch + "\nVersion: 99\n\n";
  std::ofstream(card + "/var/lib/dpkg/status") << status;
}

// The native packages, built here: kairos-node's Depends as package names.
std::vector<std::string> build_debs(const TempDir& dir) {
  auto pack = run_command({KAIROS_CPACK, "-G", "DEB", "-B", dir.file("debs"), "--config",
                           std::string(KAIROS_BINARY_DIR) + "/CPackConfig.cmake"},
                          KAIROS_BINARY_DIR, 120s);
  EXPECT_EQ(pack.status, 0) << pack.output;
  std::vector<std::string> names{"dpkg"};
  for (const auto& e : fs::directory_iterator(dir.file("debs")))
    if (e.path().filename().string().rfind("kairos-node_", 0) == 0) {
      auto f = run_command({"dpkg-deb", "-f", e.path().string(), "Depends"}, dir.path());
      std::stringstream ss(f.output);
      std::string dep;
      while (std::getline(ss, dep, ',')) {
        dep = dep.substr(dep.find_first_not_of(" \n"));
        dep = dep.substr(0, dep.find_first_of(" (|\n"));
        if (dep != "kairos-boards") names.push_back(dep);
      }
    }
  return names;
}

std::string native_arch() {
  auto r = run_command({"dpkg", "--print-architecture"}, "/");
  return r.output.substr(0, r.output.find('\n'));
}

}  // namespace

TEST(Provision, RunsAgainAsAskedChangeNothingAndNeverReplaceAKeyOrPasswordSilently) {
  TempDir dir;
  // The first run must name the mesh and the broker: no silent defaults.
  auto unnamed = run_command({bin("kairosctl"), "provision", "n1", "--out", dir.file("out"), "--boards",
                              std::string(KAIROS_SOURCE_DIR) + "/boards"}, dir.path());
  EXPECT_EQ(unnamed.status, 2);
  EXPECT_NE(unnamed.output.find("--mesh"), std::string::npos) << unnamed.output;
  EXPECT_FALSE(fs::exists(dir.file("out")));

  ASSERT_EQ(provision(dir, {"n1", "--cluster", "barn"}).status, 0);
  auto key_path = dir.file("out/gateway/etc/kairos/keys/nodes/n1.key");
  auto key = read_text(key_path);
  ASSERT_EQ(key.size(), 65u);
  struct stat st {};
  ASSERT_EQ(stat(key_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat(dir.file("out/nodes/n1/etc/kairos/node.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(read_text(dir.file("out/nodes/n1/etc/kairos/node.key")), key);
  auto password = password_of(dir, "n1");
  auto passwd = read_text(dir.file("out/mosquitto/passwd"));

  // The same command again: nothing changes, not even the passwd's salt.
  auto before = snapshot(dir.file("out"));
  auto again = provision(dir, {"n1", "--cluster", "barn"});
  EXPECT_EQ(again.status, 0) << again.output;
  EXPECT_NE(again.output.find("nothing changed"), std::string::npos) << again.output;
  EXPECT_EQ(snapshot(dir.file("out")), before);

  // Other settings are refused, naming what would change.
  auto other = provision(dir, {"n1", "--cluster", "field"});
  EXPECT_EQ(other.status, 1);
  EXPECT_NE(other.output.find("already provisioned"), std::string::npos) << other.output;
  EXPECT_NE(other.output.find("+ cluster = 'field'"), std::string::npos) << other.output;
  EXPECT_EQ(snapshot(dir.file("out")), before);

  // --force rewrites the config and the ACL, keeps the key and the password.
  auto forced = provision(dir, {"n1", "--cluster", "field", "--force"});
  ASSERT_EQ(forced.status, 0) << forced.output;
  EXPECT_EQ(read_text(key_path), key);
  EXPECT_EQ(password_of(dir, "n1"), password);
  EXPECT_EQ(read_text(dir.file("out/mosquitto/passwd")), passwd) << "the password did not change: neither does passwd";
  EXPECT_NE(forced.output.find("acl changed"), std::string::npos) << forced.output;
  auto acl = read_text(dir.file("out/mosquitto/acl"));
  EXPECT_NE(acl.find("kairos/v1/farm/field/n1/hb"), std::string::npos);
  EXPECT_EQ(acl.find("kairos/v1/farm/barn/n1/hb"), std::string::npos) << "the old block is replaced, not kept";
  EXPECT_EQ(std::count(acl.begin(), acl.end(), '\n'), 13);

  auto rotated = provision(dir, {"n1", "--cluster", "field", "--new-key", "--new-password"});
  ASSERT_EQ(rotated.status, 0) << rotated.output;
  EXPECT_NE(rotated.output.find("REPLACING the key"), std::string::npos);
  EXPECT_NE(rotated.output.find("passwd changed"), std::string::npos) << rotated.output;
  EXPECT_NE(read_text(key_path), key);
  EXPECT_NE(password_of(dir, "n1"), password);
  EXPECT_EQ(read_text(dir.file("out/nodes/n1/etc/kairos/node.key")), read_text(key_path));

  auto bad = provision(dir, {"n/3"});
  EXPECT_EQ(bad.status, 2);
  auto board = provision(dir, {"n4", "--board", "pi-99"});
  EXPECT_EQ(board.status, 2);
  EXPECT_NE(board.output.find("no board 'pi-99'"), std::string::npos) << board.output;
  EXPECT_NE(board.output.find("pi-zero-w"), std::string::npos) << "the boards are listed: " << board.output;
  // One folder is one mesh, and a name is one broker user.
  auto mesh = run_command({bin("kairosctl"), "--mesh", "lab", "provision", "n5", "--out", dir.file("out"), "--boards",
                           std::string(KAIROS_SOURCE_DIR) + "/boards"}, dir.path());
  EXPECT_EQ(mesh.status, 2);
  EXPECT_NE(mesh.output.find("for mesh 'farm'"), std::string::npos) << mesh.output;
  auto clash = provision(dir, {"--operator", "n1"});
  EXPECT_EQ(clash.status, 1);
  EXPECT_NE(clash.output.find("already a broker user"), std::string::npos) << clash.output;
}

TEST(Provision, ANodeConfigGetsTheTopicsItsOutputsAndInputsUseAndOperatorsCanWatch) {
  TempDir dir;
  ASSERT_EQ(provision(dir, {"--gateway", "gw1"}).status, 0);
  ASSERT_EQ(provision(dir, {"--operator", "alice"}).status, 0);
  dir.write("barn.toml", "[inputs.chat]\nkind = \"llm\"\ntopic = \"farm/chat/tokens\"\n\n"
                         "[outputs.level]\nkind = \"mqtt\"\nsource = \"local:chat\"\ntopic = \"farm/barn-1/level\"\n");
  auto r = provision(dir, {"barn-1", "--cluster", "barn", "--node-config", dir.file("barn.toml")});
  ASSERT_EQ(r.status, 0) << r.output;
  auto acl = read_text(dir.file("out/mosquitto/acl"));
  EXPECT_NE(acl.find("topic write farm/barn-1/level\n"), std::string::npos) << acl;
  EXPECT_NE(acl.find("topic read farm/chat/tokens\n"), std::string::npos) << acl;
  auto cfg = read_text(bundle(dir, "barn-1") + "/node.toml");
  EXPECT_NE(cfg.find("topic = 'farm/barn-1/level'"), std::string::npos) << cfg;
  EXPECT_NE(cfg.find("id = 'barn-1'"), std::string::npos) << cfg;

  // A config the node would refuse is refused here, naming the key.
  dir.write("bad.toml", "[outputs.x]\nkind = \"mqtt\"\nsource = \"local:nope\"\ntopic = \"a/b\"\n");
  auto bad = provision(dir, {"barn-2", "--node-config", dir.file("bad.toml")});
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.output.find("outputs.x.source"), std::string::npos) << bad.output;
  EXPECT_FALSE(fs::exists(bundle(dir, "barn-2")));

  // On a broker loaded with the generated files: the node publishes its
  // output topic, and the README's mosquitto_sub (an operator's
  // credentials) sees it and the mesh's own frames.
  int port = free_port();
  auto mosq = secure_broker(dir, port);
  ASSERT_TRUE(mosq) << read_text(dir.file("secure.log"));
  auto alice_pw = password_of(dir, "operators/alice");
  Process sub({"mosquitto_sub", "-h", "127.0.0.1", "-p", std::to_string(port), "-u", "alice", "-P", alice_pw, "-t",
               "kairos/v1/farm/#", "-t", "farm/#", "-v", "-F", "%t %l"},
              dir.file("sub.log"));
  auto pub = [&](const std::string& user, const std::string& pw, const std::string& topic) {
    return run_command({"mosquitto_pub", "-h", "127.0.0.1", "-p", std::to_string(port), "-u", user, "-P", pw, "-t", topic,
                        "-m", "{}", "-q", "1"}, dir.path());
  };
  auto node_pw = password_of(dir, "barn-1");
  auto hb = node_topic(kMesh, "barn", "barn-1", TopicKind::hb);
  EXPECT_TRUE(eventually([&] {
    pub("barn-1", node_pw, "farm/barn-1/level");
    pub("barn-1", node_pw, hb);
    auto log = read_text(dir.file("sub.log"));
    return log.find("farm/barn-1/level 2") != std::string::npos && log.find(hb + " 2") != std::string::npos;
  }, 20s)) << read_text(dir.file("sub.log")) << read_text(dir.file("secure.log"));
  // A topic outside its grants is dropped for the node.
  pub("barn-1", node_pw, "farm/other/level");
  pub("barn-1", node_pw, "farm/barn-1/level");
  EXPECT_TRUE(eventually([&] {
    auto log = read_text(dir.file("sub.log"));
    return std::count(log.begin(), log.end(), '\n') >= 3;
  }));
  EXPECT_EQ(read_text(dir.file("sub.log")).find("farm/other/level"), std::string::npos);
}

TEST(Provision, InstallsOntoACardThroughItsSymlinksAndRegistersWithItsDpkg) {
  TempDir dir;
  auto depends = build_debs(dir);
  const std::string card = dir.file("card");
  // The card lacks one runtime package; deps-<arch>/ has it, as a library
  // package is built: a file and its soname link.
  std::vector<std::string> on_card = depends;
  const std::string lib = on_card.back();
  on_card.pop_back();
  make_card(card, on_card, native_arch());
  const std::string pkg = dir.file("libpkg");
  fs::create_directories(pkg + "/DEBIAN");
  fs::create_directories(pkg + "/usr/lib/kairos-test");
  std::ofstream(pkg + "/usr/lib/kairos-test/libx.so.1.2.3") << "a library\n";
  fs::create_symlink("libx.so.1.2.3", pkg + "/usr/lib/kairos-test/libx.so.1");
  std::ofstream(pkg + "/DEBIAN/control") << "Package: " << lib << "\nVersion: 99\nArchitecture: " << native_arch()
                                         << "\nMaintainer: t <t@localhost>\nDescription: test\n";
  fs::create_directories(dir.file("debs/deps-" + native_arch()));
  auto built = run_command({"dpkg-deb", "--root-owner-group", "--build", pkg, dir.file("debs/deps-" + native_arch() + "/" + lib + ".deb")},
                           dir.path());
  ASSERT_EQ(built.status, 0) << built.output;
  auto before = snapshot(card);
  auto r = provision(dir, {"n1", "--cluster", "barn", "--board", "generic-linux", "--rootfs", card, "--debs", dir.file("debs")});
  ASSERT_EQ(r.status, 0) << r.output;
  // The merged-/usr links and the card's own enable links are untouched.
  auto after = snapshot(card);
  for (const auto& [path, what] : before) {
    if (what.rfind("link ", 0) == 0) {
      EXPECT_EQ(after[path], what) << path;
    }
  }
  EXPECT_TRUE(fs::is_symlink(card + "/lib"));
  EXPECT_TRUE(fs::exists(card + "/usr/bin/kairos-node"));
  EXPECT_TRUE(fs::exists(card + "/usr/lib/systemd/system/kairos-node.service"));
  EXPECT_TRUE(fs::exists(card + "/usr/share/kairos/boards/pi-zero.toml"));
  EXPECT_TRUE(fs::exists(card + "/usr/lib/sysusers.d/kairos.conf") || fs::exists(card + "/usr/lib/sysusers.d/kairos-node.conf"));
  EXPECT_EQ(fs::read_symlink(card + "/etc/systemd/system/multi-user.target.wants/kairos-node.service"),
            "/lib/systemd/system/kairos-node.service");
  struct stat st {};
  ASSERT_EQ(stat((card + "/etc/kairos/node.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_NE(read_text(card + "/etc/kairos/node.toml").find("id = 'n1'"), std::string::npos);
  auto status = read_text(card + "/var/lib/dpkg/status");
  EXPECT_NE(status.find("Package: kairos-node\nStatus: install ok installed\n"), std::string::npos) << status;
  EXPECT_NE(status.find("Package: kairos-boards\nStatus: install ok installed\n"), std::string::npos);
  EXPECT_NE(read_text(card + "/var/lib/dpkg/info/kairos-node.list").find("/usr/bin/kairos-node\n"), std::string::npos);
  EXPECT_NE(status.find("Conffiles:\n /etc/kairos/node.toml "), std::string::npos) << status;
  EXPECT_FALSE(fs::exists(card + "/etc/NetworkManager/conf.d/kairos-wifi-powersave.conf")) << "generic-linux has no radio";
  // The missing package came from deps-<arch>/, its soname link a link.
  EXPECT_EQ(fs::read_symlink(card + "/usr/lib/kairos-test/libx.so.1"), "libx.so.1.2.3");
  EXPECT_EQ(read_text(card + "/usr/lib/kairos-test/libx.so.1.2.3"), "a library\n");
  EXPECT_NE(status.find("Package: " + lib + "\nStatus: install ok installed\n"), std::string::npos) << status;
  EXPECT_EQ(read_text(card + "/var/lib/dpkg/info/" + lib + ".list"),
            "/.\n/usr\n/usr/lib\n/usr/lib/kairos-test\n/usr/lib/kairos-test/libx.so.1\n/usr/lib/kairos-test/libx.so.1.2.3\n");
  EXPECT_NE(r.output.find(lib + " 99"), std::string::npos) << r.output;
  // No temporary or backup files are left behind.
  for (const auto& [path, what] : snapshot(card)) {
    EXPECT_EQ(path.find(".kairos-"), std::string::npos) << path;
  }

  // The README's order: provisioned first, then the same command with --rootfs.
  auto again = provision(dir, {"n1", "--cluster", "barn", "--board", "generic-linux", "--rootfs", card, "--debs", dir.file("debs")});
  EXPECT_EQ(again.status, 0) << again.output;
}

TEST(Provision, ARefusedOrFailedCardInstallChangesNothingOnTheCardOrInTheFolder) {
  TempDir dir;
  auto depends = build_debs(dir);
  ASSERT_EQ(provision(dir, {"--gateway", "gw1"}).status, 0);
  const std::string card = dir.file("card");
  auto install = [&](std::vector<std::string> extra) {
    std::vector<std::string> args{"n1", "--cluster", "barn", "--board", "generic-linux", "--rootfs", card, "--debs", dir.file("debs")};
    args.insert(args.end(), extra.begin(), extra.end());
    return provision(dir, args);
  };
  auto unchanged = [&](const RunResult& r, const std::map<std::string, std::string>& c, const std::map<std::string, std::string>& o) {
    EXPECT_NE(r.status, 0) << r.output;
    EXPECT_EQ(snapshot(card), c) << r.output;
    EXPECT_EQ(snapshot(dir.file("out")), o) << r.output;
  };

  // A card of another architecture: refused, naming both.
  const std::string native = native_arch();
  const std::string foreign = native == "arm64" ? "armhf" : "arm64";
  make_card(card, depends, foreign);
  fs::remove(card + "/usr/bin/sh");
  fs::remove(card + "/usr/bin/dash");
  auto c0 = snapshot(card), o0 = snapshot(dir.file("out"));
  auto wrong = install({});
  unchanged(wrong, c0, o0);
  EXPECT_NE(wrong.output.find(foreign), std::string::npos) << wrong.output;
  auto with_deb = provision(dir, {"n1", "--board", "generic-linux", "--rootfs", card, "--deb",
                                  [&] { for (auto& e : fs::directory_iterator(dir.file("debs")))
                                          if (e.path().filename().string().rfind("kairos-node_", 0) == 0) return e.path().string();
                                        return std::string(); }()});
  unchanged(with_deb, c0, o0);
  EXPECT_NE(with_deb.output.find("built for " + native), std::string::npos) << with_deb.output;
  EXPECT_NE(with_deb.output.find("is " + foreign), std::string::npos) << with_deb.output;
  fs::remove_all(card);

  // A card that lacks a runtime library, with no .deb for it: refused, listing it.
  std::vector<std::string> fewer = depends;
  std::string dropped = fewer.back();
  fewer.pop_back();
  make_card(card, fewer, native);
  c0 = snapshot(card);
  auto lacking = install({});
  unchanged(lacking, c0, o0);
  EXPECT_NE(lacking.output.find(dropped), std::string::npos) << lacking.output;
  EXPECT_NE(lacking.output.find("tools/package " + native), std::string::npos) << lacking.output;
  fs::remove_all(card);

  // A directory where the package has a file: left alone, nothing installed.
  make_card(card, depends, native);
  fs::create_directories(card + "/usr/bin/kairos-node");
  c0 = snapshot(card);
  auto blocked = install({});
  unchanged(blocked, c0, o0);
  EXPECT_NE(blocked.output.find("directory"), std::string::npos) << blocked.output;
  fs::remove(card + "/usr/bin/kairos-node");

  // A failure halfway through writing: everything written is undone.
  c0 = snapshot(card);
  for (const char* after : {"0", "7", "40"}) {
    std::vector<std::string> argv{"env", std::string("KAIROS_PROVISION_FAIL_AFTER=") + after, bin("kairosctl"), "--mesh", kMesh,
                                  "--broker", "tcp://127.0.0.1:1883", "provision", "n1", "--cluster", "barn", "--board",
                                  "generic-linux", "--rootfs", card, "--debs", dir.file("debs"), "--out", dir.file("out"),
                                  "--boards", std::string(KAIROS_SOURCE_DIR) + "/boards"};
    auto failed = run_command(argv, dir.path());
    unchanged(failed, c0, o0);
    EXPECT_NE(failed.output.find("nothing was changed"), std::string::npos) << failed.output;
  }
  // The boot partition is named as such.
  fs::create_directories(dir.file("boot"));
  std::ofstream(dir.file("boot/config.txt")) << "dtparam=audio=on\n";
  auto boot = provision(dir, {"n1", "--board", "generic-linux", "--rootfs", dir.file("boot"), "--debs", dir.file("debs")});
  EXPECT_EQ(boot.status, 2);
  EXPECT_NE(boot.output.find("boot partition"), std::string::npos) << boot.output;
  // And then the install goes through.
  ASSERT_EQ(install({}).status, 0);
}

// MQTT over TLS: with an ssl:// broker provisioning makes the mesh CA, the
// broker's certificate and each device's, keeps them while they fit, renews
// one in its last 30 days, replaces a key only with --new-key, installs
// them onto a card like node.key, and leaves nothing behind when a run fails.
TEST(Provision, TlsCertificatesAreMadeKeptRenewedAndInstalledLikeKeys) {
  TempDir dir;
  auto tls_run = [&](std::vector<std::string> args) {
    std::vector<std::string> argv{bin("kairosctl"), "--mesh", kMesh, "--broker", "ssl://localhost:8883", "provision"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--out", dir.file("out"), "--boards", std::string(KAIROS_SOURCE_DIR) + "/boards"});
    return run_command(argv, dir.path());
  };
  auto first = tls_run({"--gateway", "gw1"});
  ASSERT_EQ(first.status, 0) << first.output;
  EXPECT_NE(first.output.find("made the mesh CA"), std::string::npos) << first.output;
  auto r = tls_run({"n1", "--cluster", "barn"});
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string n1 = dir.file("out/nodes/n1/etc/kairos/tls/");
  auto mode = [](const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? st.st_mode & 0777 : 0u;
  };
  EXPECT_EQ(mode(dir.file("out/ca/ca.key")), 0600u);
  EXPECT_EQ(mode(dir.file("out/mosquitto/server.key")), 0600u);
  EXPECT_EQ(mode(n1 + "node.key"), 0600u);
  EXPECT_EQ(mode(n1 + "node.crt"), 0644u);
  EXPECT_EQ(read_text(n1 + "ca.crt"), read_text(dir.file("out/ca/ca.crt")));
  std::string why;
  auto cert = read_cert(read_text(n1 + "node.crt"), why);
  ASSERT_TRUE(cert) << why;
  EXPECT_EQ(cert->common_name, "n1");
  EXPECT_TRUE(issued_by(read_text(n1 + "node.crt"), read_text(dir.file("out/ca/ca.crt"))));
  auto server = read_cert(read_text(dir.file("out/mosquitto/server.crt")), why);
  ASSERT_TRUE(server) << why;
  EXPECT_EQ(server->dns_names, std::vector<std::string>{"localhost"});
  EXPECT_EQ(server->ip_addresses.size(), 2u) << "127.0.0.1 and ::1 for localhost";
  const std::string conf = read_text(dir.file("out/mosquitto/kairos.conf"));
  for (const char* line : {"listener 8883\n", "cafile /etc/mosquitto/certs/kairos-ca.crt\n", "require_certificate true\n",
                           "tls_version tlsv1.2\n", "max_packet_size ", "password_file ", "acl_file "})
    EXPECT_NE(conf.find(line), std::string::npos) << line << " in\n" << conf;
  const std::string toml = read_text(dir.file("out/nodes/n1/etc/kairos/node.toml"));
  EXPECT_NE(toml.find("cert_file = '/etc/kairos/tls/node.crt'"), std::string::npos) << toml;
  EXPECT_NE(read_text(dir.file("out/gateway/etc/kairos/gateway.toml")).find("key_file = \"/etc/kairos/tls/gateway.key\""),
            std::string::npos);

  // Again: nothing changes.
  auto again = tls_run({"n1", "--cluster", "barn"});
  EXPECT_NE(again.output.find("already provisioned as asked: nothing changed"), std::string::npos) << again.output;

  // A certificate in its last 30 days is renewed with the same key.
  const std::string key = read_text(n1 + "node.key");
  ctl::CertSpec spec;
  spec.common_name = "n1";
  spec.not_before_s = static_cast<std::int64_t>(std::time(nullptr)) - 700 * 86400;
  spec.not_after_s = static_cast<std::int64_t>(std::time(nullptr)) + 10 * 86400;
  dir.write("out/nodes/n1/etc/kairos/tls/node.crt",
            ctl::issue_cert(spec, key, read_text(dir.file("out/ca/ca.crt")), read_text(dir.file("out/ca/ca.key"))));
  auto renewed = tls_run({"n1", "--cluster", "barn"});
  ASSERT_EQ(renewed.status, 0) << renewed.output;
  EXPECT_NE(renewed.output.find("a new certificate " + n1 + "node.crt: it expires on"), std::string::npos)
      << renewed.output;
  EXPECT_EQ(read_text(n1 + "node.key"), key);
  cert = read_cert(read_text(n1 + "node.crt"), why);
  ASSERT_TRUE(cert) << why;
  EXPECT_GT(cert->not_after_s - std::time(nullptr), 700 * 86400);
  EXPECT_TRUE(key_fits_cert(read_text(n1 + "node.crt"), key));

  // --new-key: a new TLS key, and a certificate for it.
  auto rekeyed = tls_run({"n1", "--cluster", "barn", "--new-key"});
  ASSERT_EQ(rekeyed.status, 0) << rekeyed.output;
  EXPECT_NE(read_text(n1 + "node.key"), key);
  EXPECT_TRUE(key_fits_cert(read_text(n1 + "node.crt"), read_text(n1 + "node.key")));
  EXPECT_NE(rekeyed.output.find("a new TLS key"), std::string::npos) << rekeyed.output;

  // A run that fails after a few writes leaves none of the new node's files.
  ::setenv("KAIROS_PROVISION_FAIL_AFTER", "3", 1);
  auto failed = tls_run({"n2", "--cluster", "barn"});
  ::unsetenv("KAIROS_PROVISION_FAIL_AFTER");
  EXPECT_NE(failed.status, 0) << failed.output;
  EXPECT_FALSE(fs::exists(dir.file("out/nodes/n2"))) << failed.output;
  EXPECT_EQ(read_text(dir.file("out/mosquitto/passwd")).find("n2:"), std::string::npos);

  // Onto a card: tls/ as node.key is (root's where run as root; the key 0600).
  auto depends = build_debs(dir);
  const std::string card = dir.file("card");
  make_card(card, depends, native_arch());
  auto onto = tls_run({"n1", "--cluster", "barn", "--board", "generic-linux", "--rootfs", card, "--debs", dir.file("debs")});
  ASSERT_EQ(onto.status, 0) << onto.output;
  EXPECT_EQ(mode(card + "/etc/kairos/tls/node.key"), 0600u);
  EXPECT_EQ(mode(card + "/etc/kairos/tls/node.crt"), 0644u);
  EXPECT_EQ(read_text(card + "/etc/kairos/tls/node.crt"), read_text(n1 + "node.crt"));
  EXPECT_EQ(read_text(card + "/etc/kairos/tls/ca.crt"), read_text(dir.file("out/ca/ca.crt")));
  EXPECT_NE(read_text(card + "/etc/kairos/node.toml").find("ca_file = '/etc/kairos/tls/ca.crt'"), std::string::npos);
}

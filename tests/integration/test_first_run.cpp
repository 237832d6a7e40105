// From an empty SD card to a registered node: what a first setup gets wrong
// says what to do. A real Mosquitto that takes no anonymous clients, with
// the password file and ACL kairosctl provision writes; a node, a gateway and
// kairosctl with wrong or no credentials; a gateway database in a directory
// that does not exist.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <sstream>

#include "common/io/clock.h"
#include "tests/integration/harness.h"

using namespace kairos;
using namespace kairos::test;
using namespace std::chrono_literals;

namespace {

const std::string kMesh = "farm";

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// text without the lines that start with any of prefixes, plus `extra` after [broker].
std::string without_lines(const std::string& text, std::initializer_list<std::string> prefixes,
                          const std::string& extra = "") {
  std::istringstream in(text);
  std::string out, line;
  while (std::getline(in, line)) {
    bool drop = false;
    for (const auto& p : prefixes) drop = drop || line.rfind(p, 0) == 0;
    if (!drop) out += line + "\n";
    if (line == "[broker]") out += extra;
  }
  return out;
}

// Provisioned files (kairosctl provision), a broker that checks them, and
// the bundles pointed at this test's copies.
struct Site {
  TempDir dir;
  int port = free_port();
  std::unique_ptr<Process> mosquitto;

  Site() {
    for (std::vector<std::string> who : {std::vector<std::string>{"--gateway", "gw1"}, {"--operator", "alice"},
                                         {"n1", "--cluster", "barn"}}) {
      std::vector<std::string> argv{bin("kairosctl"), "--mesh", kMesh, "--broker", uri(), "provision"};
      argv.insert(argv.end(), who.begin(), who.end());
      argv.insert(argv.end(), {"--out", dir.file("out"), "--boards", std::string(KAIROS_SOURCE_DIR) + "/boards"});
      auto r = run_command(argv, dir.path());
      if (r.status != 0) throw std::runtime_error("provision failed: " + r.output);
    }
    dir.write("secure.conf", "listener " + std::to_string(port) +
                                 " 127.0.0.1\nallow_anonymous false\npersistence false\nuser root\npassword_file " +
                                 dir.file("out/mosquitto/passwd") + "\nacl_file " + dir.file("out/mosquitto/acl") + "\n");
    mosquitto = std::make_unique<Process>(std::vector<std::string>{"mosquitto", "-c", dir.file("secure.conf")},
                                          dir.file("secure.log"));
    if (!eventually([&] { return has(read_text(dir.file("secure.log")), " running"); }))
      throw std::runtime_error("mosquitto did not start: " + read_text(dir.file("secure.log")));
  }
  std::string uri() const { return "tcp://127.0.0.1:" + std::to_string(port); }
  // The one file called `file` that provisioning wrote (its bundle's layout
  // is provision's business), with on-device paths replaced by this test's;
  // written as name.
  std::string localise(const std::string& file, const std::string& name,
                       const std::function<std::string(std::string)>& edit = {}) const {
    std::string found;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir.file("out")))
      if (e.path().filename() == file) found = e.path().string();
    if (found.empty()) throw std::runtime_error("provision wrote no " + file);
    const std::string etc = std::filesystem::path(found).parent_path().string();
    std::string text = read_text(found);
    for (auto [from, to] : {std::pair<std::string, std::string>{"/etc/kairos", etc},
                            {"/var/lib/kairos", dir.path()},
                            {"/usr/share/kairos/boards", std::string(KAIROS_SOURCE_DIR) + "/boards"}}) {
      for (auto p = text.find(from); p != std::string::npos; p = text.find(from, p + to.size())) text.replace(p, from.size(), to);
    }
    dir.write(name, edit ? edit(text) : text);
    return dir.file(name);
  }
  // The value of `key = "..."` (or '...') in a config file.
  static std::string value_of(const std::string& path, const std::string& key) {
    std::istringstream in(read_text(path));
    for (std::string line; std::getline(in, line);)
      if (line.rfind(key + " = ", 0) == 0) return line.substr(key.size() + 4, line.size() - key.size() - 5);
    throw std::runtime_error(path + " has no " + key);
  }
  RunResult kairosctl(const std::vector<std::string>& args) const {
    std::vector<std::string> argv{bin("kairosctl")};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, dir.path());
  }
};

}  // namespace

// Debian 12's Mosquitto (2.0.11) answers an MQTT v5 CONNECT with a wrong
// password, an unknown user or no credentials at all with 135 "not
// authorized" (never 134): the message covers both.
TEST(FirstRun, ANodeAndAGatewayTheBrokerRefusesSayWhyByNameAndWhichKeysToCheck) {
  Site site;
  site.dir.write("wrong.password", "not-the-password\n", 0600);
  const std::string wrong = site.dir.file("wrong.password");
  auto node_cfg = site.localise("node.toml", "n1-wrong.toml", [&](std::string t) {
    return without_lines(t, {"password_file"}, "password_file = \"" + wrong + "\"\nreconnect_max_s = 1\n");
  });
  auto gw_cfg = site.localise("gateway.toml", "gw-anonymous.toml",
                              [&](std::string t) { return without_lines(t, {"username", "password_file"}); });
  Process node({bin("kairos-node"), "--config", node_cfg}, site.dir.file("n1.log"));
  Process gateway({bin("kairos-gateway"), "--config", gw_cfg}, site.dir.file("gw.log"));

  ASSERT_TRUE(eventually([&] { return has(node.output(), "not authorized (MQTT reason 135)"); }, 20s)) << node.output();
  const std::string n = node.output();
  EXPECT_TRUE(has(n, "broker: connect to " + site.uri() + " refused: not authorized (MQTT reason 135)")) << n;
  EXPECT_TRUE(has(n, "does not accept user 'n1' with the password in " + wrong)) << n;
  EXPECT_TRUE(has(n, "check broker.username and broker.password_file in " + node_cfg)) << n;
  EXPECT_TRUE(has(n, "passwd has a 'n1:' line")) << n;
  EXPECT_TRUE(has(n, "kairos-provision/mosquitto/passwd")) << n;
  EXPECT_FALSE(has(n, "(code 135)")) << n;

  ASSERT_TRUE(eventually([&] { return has(gateway.output(), "not authorized (MQTT reason 135)"); }, 20s))
      << gateway.output();
  const std::string g = gateway.output();
  EXPECT_TRUE(has(g, "no client without a user name and password")) << g;
  EXPECT_TRUE(has(g, "set broker.username and broker.password_file in " + gw_cfg)) << g;
  // Both keep trying (the broker's users may be installed any time), and the
  // repeats are rate limited: far fewer lines than attempts.
  EXPECT_TRUE(node.running());
  EXPECT_TRUE(gateway.running());
}

TEST(FirstRun, KairosctlSaysWhichCredentialsToGiveAndWorksWithThem) {
  Site site;
  Process gateway({bin("kairos-gateway"), "--config", site.localise("gateway.toml", "gw.toml")},
                  site.dir.file("gw.log"));
  const std::string right = site.localise("kairosctl.toml", "alice-right.toml");
  const std::string key = Site::value_of(right, "key_file");
  const std::string password = Site::value_of(right, "password_file");
  const std::vector<std::string> base{"--broker", site.uri(), "--mesh", kMesh, "--key", key, "--timeout", "5000"};
  auto with = [&](std::vector<std::string> more) {
    std::vector<std::string> args = base;
    args.insert(args.end(), more.begin(), more.end());
    return site.kairosctl(args);
  };

  // No credentials, no console config.
  const auto t0 = mono_us();
  auto r = with({"status"});
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_LT(mono_us() - t0, 4'500'000) << "a refusal is final: no waiting out the timeout";
  EXPECT_TRUE(has(r.output, "refused: not authorized (MQTT reason 135)")) << r.output;
  EXPECT_TRUE(has(r.output, "--username NAME and --password-file FILE")) << r.output;
  EXPECT_TRUE(has(r.output, "none was read")) << r.output;
  EXPECT_FALSE(has(r.output, "is the broker running")) << r.output;

  // A wrong password through the console config: it names that file.
  site.dir.write("wrong.password", "nope\n", 0600);
  auto cfg = site.localise("kairosctl.toml", "alice.toml", [&](std::string t) {
    return without_lines(t, {"password_file"}, "password_file = \"" + site.dir.file("wrong.password") + "\"\n");
  });
  r = with({"--config", cfg, "status"});
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(has(r.output, "does not accept user 'alice' with the password in " + site.dir.file("wrong.password")))
      << r.output;
  EXPECT_TRUE(has(r.output, "broker.username and broker.password_file in " + cfg)) << r.output;
  // ball verbs connect the same way.
  r = with({"ball", "listen", "design", "--as", "Ana", "--count", "1"});
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(has(r.output, "--username NAME and --password-file FILE")) << r.output;

  // The flags override the config: the right password works.
  EXPECT_TRUE(eventually([&] {
    r = with({"--config", cfg, "--username", "alice", "--password-file", password, "--json", "status"});
    return r.status == 0 && has(r.output, "\"mesh\":\"farm\"");
  }, 20s)) << r.output << read_text(site.dir.file("gw.log"));

  // A broker that is not there keeps its message.
  r = site.kairosctl({"--broker", "tcp://127.0.0.1:" + std::to_string(free_port()), "--key", key, "--timeout", "500",
                      "status"});
  EXPECT_EQ(r.status, 1);
  EXPECT_TRUE(has(r.output, "is the broker running? (check --broker")) << r.output;
}

TEST(FirstRun, AGatewayDatabaseInAMissingDirectoryNamesTheDirectoryAndTheKey) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  const std::string missing = dir.file("nonexistent/dir");
  dir.write("gw.toml", "[gateway]\nid = \"gw1\"\nmesh = \"" + mesh.name() + "\"\nkeys_dir = \"" + mesh.keys_dir() +
                           "\"\ndatabase = \"" + missing + "/gateway.db\"\n[broker]\nuri = \"" + broker.uri() + "\"\n");
  auto r = run_command({bin("kairos-gateway"), "--config", dir.file("gw.toml")}, dir.path(), 10s);
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_TRUE(has(r.output, "the directory " + missing + " of gateway.database (" + missing + "/gateway.db)"))
      << r.output;
  EXPECT_TRUE(has(r.output, "does not exist")) << r.output;
  EXPECT_TRUE(has(r.output, "install -d -o kairos -g kairos " + missing)) << r.output;
  EXPECT_TRUE(has(r.output, dir.file("gw.toml"))) << r.output;
  EXPECT_FALSE(has(r.output, "unable to open database file")) << r.output;

  // A file where the directory should be.
  dir.write("plain", "x");
  dir.write("gw2.toml", "[gateway]\nid = \"gw1\"\nmesh = \"" + mesh.name() + "\"\nkeys_dir = \"" + mesh.keys_dir() +
                            "\"\ndatabase = \"" + dir.file("plain") + "/gateway.db\"\n[broker]\nuri = \"" +
                            broker.uri() + "\"\n");
  r = run_command({bin("kairos-gateway"), "--config", dir.file("gw2.toml")}, dir.path(), 10s);
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_TRUE(has(r.output, dir.file("plain") + ", the directory of gateway.database")) << r.output;
  EXPECT_TRUE(has(r.output, "is not a directory")) << r.output;

  // A directory the gateway's user may not write (root writes anywhere: the
  // gateway runs as nobody here).
  if (::geteuid() != 0 || !std::filesystem::exists("/usr/bin/setpriv")) return;
  std::filesystem::create_directory(dir.file("ro"));
  std::filesystem::permissions(dir.path(), std::filesystem::perms(0755));
  std::filesystem::permissions(dir.file("ro"), std::filesystem::perms(0555));
  dir.write("gw3.toml", "[gateway]\nid = \"gw1\"\nmesh = \"" + mesh.name() + "\"\nkeys_dir = \"" + mesh.keys_dir() +
                            "\"\ndatabase = \"" + dir.file("ro") + "/gateway.db\"\n[broker]\nuri = \"" + broker.uri() +
                            "\"\n");
  r = run_command({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bin("kairos-gateway"),
                   "--config", dir.file("gw3.toml")},
                  dir.path(), 10s);
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_TRUE(has(r.output, "the directory " + dir.file("ro") + " of gateway.database")) << r.output;
  EXPECT_TRUE(has(r.output, "is not writable by the user kairos-gateway runs as (uid 65534)")) << r.output;
}

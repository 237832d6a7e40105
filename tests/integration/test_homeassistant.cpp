// The Home Assistant bridge ([homeassistant], docs/HOMEASSISTANT.md) on a
// real Mosquitto with the real gateway and a real node: every discovery
// config it retains validated by python3-jsonschema against the schema
// written from Home Assistant's documentation, the JSON states they read,
// availability from the node's Will and the gateway's, a number entity's
// command driving the node's output, and configs deleted when a node is
// forgotten or was left behind by an earlier run.
#include <gtest/gtest.h>

#include <csignal>

#include "common/core/topic.h"
#include "tests/integration/harness.h"

using namespace kairos;
using namespace kairos::test;
using namespace std::chrono_literals;

namespace {

Bytes bytes(const std::string& s) { return Bytes(s.begin(), s.end()); }
std::string text(const Bytes& b) { return std::string(b.begin(), b.end()); }

// The newest payload on topic, as text; nullopt when nothing came on it.
std::optional<std::string> last_text(const Client& c, const std::string& topic) {
  auto m = c.last_on(topic);
  return m ? std::optional<std::string>(text(m->payload)) : std::nullopt;
}

// The validator's verdict on TOPIC\tPAYLOAD lines.
RunResult validate(const TempDir& dir, const std::string& lines) {
  dir.write("payloads.tsv", lines);
  return run_command({"sh", "-c", "/usr/bin/python3 " + std::string(KAIROS_SOURCE_DIR) +
                                      "/tests/integration/ha_validate.py < " + dir.file("payloads.tsv")},
                     dir.path());
}

}  // namespace

TEST(HomeAssistant, DiscoveryStatesAvailabilityCommandsAndForget) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  const std::string m = mesh.name(), dp = "homeassistant", sp = "kairos-ha/" + m;
  const std::string dev = "kairos_" + m + "_n1";

  // Left retained by an earlier run: a node this gateway does not know. Swept.
  Client setup(broker.uri());
  const std::string ghost = dp + "/sensor/kairos_" + m + "_ghost/state/config";
  setup.publish(ghost, bytes("{\"name\":\"State\",\"unique_id\":\"x\",\"state_topic\":\"a\",\"device\":{\"identifiers\":[\"x\"]}}"),
                1, true);

  Client c(broker.uri());
  c.subscribe(dp + "/#");
  c.subscribe(sp + "/#");
  ASSERT_TRUE(c.wait_for_topic(ghost));
  mesh.start_gateway("[homeassistant]\nenabled = true\nallow_commands = true\nstate_interval_s = 0.2\n");

  const std::string out = dir.file("out.txt");
  dir.write("n1.toml", mesh.node_config("n1", "c1", "waveform = \"constant\"\noffset = 0.5\n", "heartbeat_period_s = 0.3\n") +
                           "\n[outputs.log]\nkind = \"text\"\nsource = \"local:main\"\nfile = \"" + out +
                           "\"\ninterval_s = 0.05\n");
  auto node = std::make_unique<Process>(std::vector<std::string>{bin("kairos-node"), "--config", dir.file("n1.toml")},
                                        dir.file("n1.log"));

  const std::string gw_avail = sp + "/gateway/gw1/availability", n1_avail = sp + "/node/n1/availability";
  const std::string n1_state = sp + "/node/n1/state";
  const std::string number = dp + "/number/" + dev + "/output_log/config";
  ASSERT_TRUE(c.wait_for([&](const auto&) { return last_text(c, gw_avail) == "online"; }, 20s)) << mesh.gateway().output();
  ASSERT_TRUE(c.wait_for([&](const auto&) { return c.last_on(number).has_value(); }, 20s)) << [&] {
    std::string seen;
    for (const auto& msg : c.seen()) seen += msg.topic + "\n";
    return seen + mesh.gateway().output();
  }();
  // The state once the node has sampled its input.
  ASSERT_TRUE(c.wait_for([&](const auto&) {
    auto s = last_text(c, n1_state);
    return s && s->find("\"state\":\"COMPLIANT\"") != std::string::npos && s->find("\"value\":0.5") != std::string::npos;
  }, 20s)) << last_text(c, n1_state).value_or("(no state)") << "\n" << mesh.gateway().output();
  EXPECT_NE(last_text(c, n1_state)->find("\"online\":\"ON\""), std::string::npos);
  EXPECT_EQ(last_text(c, n1_avail), "online");
  EXPECT_TRUE(c.wait_for([&](const auto&) {
    auto s = last_text(c, sp + "/mesh/state");
    return s && s->find("\"online\":1}") != std::string::npos;
  }, 10s)) << last_text(c, sp + "/mesh/state").value_or("(no mesh state)");
  // The configs of an earlier run's node are deleted once the gateway has settled.
  EXPECT_TRUE(c.wait_for([&](const auto&) { return last_text(c, ghost) == ""; }, 20s)) << mesh.gateway().output();

  // Every config on the broker is retained, and every one validates.
  Client late(broker.uri());
  late.subscribe(dp + "/+/" + dev + "/+/config");
  late.subscribe(dp + "/+/kairos_" + m + "_gateway_gw1/+/config");
  auto configs = [&] {
    std::vector<Inbound> found;
    for (const auto& msg : late.seen())
      if (msg.topic.rfind(dp + "/", 0) == 0) found.push_back(msg);
    return found;
  };
  ASSERT_TRUE(late.wait_for([&](const auto&) { return configs().size() >= 12; }, 10s)) << configs().size();
  std::string lines;
  for (const auto& msg : configs()) {
    EXPECT_TRUE(msg.retained) << msg.topic;
    lines += msg.topic + "\t" + text(msg.payload) + "\n";
  }
  auto r = validate(dir, lines);
  ASSERT_EQ(r.status, 0) << r.output;
  // n1: state, online, 3 of its input, 1 number; the mesh: 6.
  EXPECT_NE(r.output.find("binary_sensor=2 number=1 sensor=9 deleted=0"), std::string::npos) << r.output;

  // A number's command becomes a signed set_output on the node.
  c.publish(sp + "/node/n1/output/log/set", bytes("0.75"), 1, false);
  EXPECT_TRUE(eventually([&] { return read_text(out).find("c=0.7500") != std::string::npos; }))
      << read_text(dir.file("n1.log")) << mesh.gateway().output();
  // Out of range, not a number, an output it does not have: refused, named, nothing sent.
  c.publish(sp + "/node/n1/output/log/set", bytes("2.5"), 1, false);
  c.publish(sp + "/node/n1/output/log/set", bytes("loud"), 1, false);
  c.publish(sp + "/node/n1/output/siren/set", bytes("0.5"), 1, false);
  EXPECT_TRUE(eventually([&] {
    const auto log = mesh.gateway().output();
    return log.find("not a number from 0 to 1") != std::string::npos && log.find("no output 'siren'") != std::string::npos;
  })) << mesh.gateway().output();
  {
    // The output still holds what the accepted command set.
    const std::string written = read_text(out);
    const auto last = written.rfind("log ");
    ASSERT_NE(last, std::string::npos);
    EXPECT_NE(written.find("c=0.7500", last), std::string::npos) << written.substr(last);
  }

  // The node dies: its Will makes it offline, on both topics.
  node->signal(SIGKILL);
  node->wait(5s);
  EXPECT_TRUE(c.wait_for([&](const auto&) { return last_text(c, n1_avail) == "offline"; }, 20s));
  EXPECT_TRUE(c.wait_for([&](const auto&) {
    auto s = last_text(c, n1_state);
    return s && s->find("\"state\":\"OFFLINE\"") != std::string::npos;
  }, 20s));

  // Forgotten: every config of it deleted, its state topics cleared.
  c.clear();
  auto f = mesh.kairosctl({"forget", "n1"});
  ASSERT_EQ(f.status, 0) << f.output;
  EXPECT_TRUE(c.wait_for([&](const auto& seen) {
    int deleted = 0;
    for (const auto& msg : seen)
      if (msg.topic.find("/" + dev + "/") != std::string::npos && msg.payload.empty()) ++deleted;
    return deleted >= 6 && last_text(c, n1_state) == "" && last_text(c, n1_avail) == "";
  }, 10s));
  EXPECT_FALSE(mesh.node_info("n1").has_value());
  Client after(broker.uri());
  after.subscribe(dp + "/+/" + dev + "/+/config");
  after.subscribe(n1_state);
  auto leftover = [&] {
    for (const auto& msg : after.seen())
      if (msg.topic.rfind("kairos-test/", 0) != 0) return msg.topic;
    return std::string();
  };
  EXPECT_FALSE(after.wait_for([&](const auto&) { return !leftover().empty(); }, 1500ms)) << leftover();
  // A node the gateway does not know: refused.
  EXPECT_NE(mesh.kairosctl({"forget", "nobody"}).status, 0);

  // The gateway dies: its Will says so.
  kill(mesh.gateway().pid(), SIGKILL);
  EXPECT_TRUE(c.wait_for([&](const auto&) { return last_text(c, gw_avail) == "offline"; }, 20s));
}

// Home Assistant discovery payloads (gateway/homeassistant) checked by an
// independent validator: python3-jsonschema against a schema written from
// Home Assistant's MQTT discovery documentation (ha_discovery.schema.json).
#include <gtest/gtest.h>

#include "gateway/homeassistant/discovery.h"
#include "tests/integration/harness.h"

using namespace kairos::test;
namespace ha = kairos::gw::ha;

TEST(HaSchema, EveryDiscoveryPayloadValidatesAndABrokenOneIsRefused) {
  ha::Settings s;
  s.state_prefix = "kairos-ha/farm";
  s.mesh = "farm";
  s.gateway = "gw1";
  s.allow_commands = true;
  std::string lines;
  auto add = [&](const std::vector<ha::Publication>& v) {
    for (const auto& p : v) lines += p.topic + "\t" + p.payload + "\n";
  };
  const ha::NodeFacts node{"Pi-Kitchen", "kitchen", "rpi4", "0.1.0", {"temp", "mic"}, {"fan"}, 0, {}, 0};
  add(ha::node_configs(s, node));
  add(ha::mesh_configs(s));
  add(ha::node_removal(s, node));
  TempDir dir;
  dir.write("payloads.tsv", lines);
  const std::string validate = "/usr/bin/python3 " + std::string(KAIROS_SOURCE_DIR) + "/tests/integration/ha_validate.py";
  auto r = run_command({"sh", "-c", validate + " < " + dir.file("payloads.tsv")}, dir.path());
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("binary_sensor=2 number=1 sensor=12 deleted=9"), std::string::npos) << r.output;

  // The validator is not a rubber stamp: a misspelt key is refused, named.
  auto bad = ha::node_configs(s, node).front();
  bad.payload.replace(bad.payload.find("\"state_topic\""), 13, "\"state_topc\"");
  dir.write("bad.tsv", bad.topic + "\t" + bad.payload + "\n");
  r = run_command({"sh", "-c", validate + " < " + dir.file("bad.tsv")}, dir.path());
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.output.find("'state_topc' was unexpected"), std::string::npos) << r.output;
}

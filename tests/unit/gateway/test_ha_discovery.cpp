// Home Assistant discovery configs (docs/HOMEASSISTANT.md): topics, and what each payload says.
#include <gtest/gtest.h>

#include <algorithm>

#include "gateway/homeassistant/discovery.h"

namespace kairos::gw::ha {
namespace {

Settings settings(bool commands) {
  Settings s;
  s.state_prefix = "kairos-ha/farm";
  s.mesh = "farm";
  s.gateway = "gw1";
  s.allow_commands = commands;
  return s;
}

NodeFacts node() { return {"pi-kitchen", "kitchen", "rpi4", "0.1.0", {"temp"}, {"fan"}, 0, {}, 0}; }

const Publication* find(const std::vector<Publication>& v, const std::string& topic) {
  auto it = std::find_if(v.begin(), v.end(), [&](const Publication& p) { return p.topic == topic; });
  return it == v.end() ? nullptr : &*it;
}

TEST(HaDiscovery, ANodeIsADeviceWithItsStateOnlineAndThreeSensorsPerInput) {
  auto v = node_configs(settings(false), node());
  ASSERT_EQ(v.size(), 5u);  // state, online, temp value/phase/coherence; no number without allow_commands
  const auto* st = find(v, "homeassistant/sensor/kairos_farm_pi-kitchen/state/config");
  ASSERT_TRUE(st);
  EXPECT_NE(st->payload.find("\"device_class\":\"enum\""), std::string::npos) << st->payload;
  EXPECT_NE(st->payload.find("\"options\":[\"COMPLIANT\","), std::string::npos) << st->payload;
  EXPECT_NE(st->payload.find("\"model\":\"rpi4\",\"sw_version\":\"0.1.0\",\"via_device\":\"kairos_farm_gateway_gw1\""),
            std::string::npos)
      << st->payload;
  const auto* on = find(v, "homeassistant/binary_sensor/kairos_farm_pi-kitchen/online/config");
  ASSERT_TRUE(on);
  EXPECT_NE(on->payload.find("\"device_class\":\"connectivity\""), std::string::npos) << on->payload;
  const auto* phase = find(v, "homeassistant/sensor/kairos_farm_pi-kitchen/input_temp_phase/config");
  ASSERT_TRUE(phase);
  // Available while both the gateway and the node are.
  EXPECT_NE(phase->payload.find("\"availability\":[{\"topic\":\"kairos-ha/farm/gateway/gw1/availability\"},"
                                "{\"topic\":\"kairos-ha/farm/node/pi-kitchen/availability\"}],\"availability_mode\":\"all\""),
            std::string::npos)
      << phase->payload;
  EXPECT_NE(phase->payload.find("\"value_template\":\"{{ value_json.inputs['temp'].phase }}\""), std::string::npos);
}

TEST(HaDiscovery, OutputsAreNumbersOnlyWhenCommandsAreAllowed) {
  auto v = node_configs(settings(true), node());
  const auto* fan = find(v, "homeassistant/number/kairos_farm_pi-kitchen/output_fan/config");
  ASSERT_TRUE(fan);
  EXPECT_NE(fan->payload.find("\"command_topic\":\"kairos-ha/farm/node/pi-kitchen/output/fan/set\""), std::string::npos)
      << fan->payload;
  EXPECT_NE(fan->payload.find("\"min\":0,\"max\":1"), std::string::npos) << fan->payload;
}

TEST(HaDiscovery, ARemovalEmptiesEveryConfigTheNodeCouldHave) {
  auto gone = node_removal(settings(false), node());
  auto all = node_configs(settings(true), node());
  ASSERT_EQ(gone.size(), all.size());
  for (std::size_t i = 0; i < gone.size(); ++i) {
    EXPECT_EQ(gone[i].topic, all[i].topic);
    EXPECT_TRUE(gone[i].payload.empty());
  }
}

TEST(HaDiscovery, TheMeshIsTheGatewaysDeviceWithItsFigures) {
  auto v = mesh_configs(settings(false));
  EXPECT_EQ(v.size(), 6u);
  const auto* mode = find(v, "homeassistant/sensor/kairos_farm_gateway_gw1/mode/config");
  ASSERT_TRUE(mode);
  EXPECT_NE(mode->payload.find("\"state_topic\":\"kairos-ha/farm/mesh/state\""), std::string::npos) << mode->payload;
  EXPECT_TRUE(find(v, "homeassistant/binary_sensor/kairos_farm_gateway_gw1/unified/config"));
}

TEST(HaDiscovery, AConfigTopicOfThisMeshIsReadBackAndNoOtherIs) {
  const Settings s = settings(false);
  auto ct = parse_config_topic(s, "homeassistant/sensor/kairos_farm_pi-kitchen/input_temp_value/config");
  ASSERT_TRUE(ct);
  EXPECT_EQ(ct->node, "pi-kitchen");
  EXPECT_EQ(ct->object, "input_temp_value");
  for (const char* t : {"homeassistant/sensor//kairos_farm_x/config",            // an empty level
                        "homeassistant/sensor/kairos_farm_x/state",              // not a config
                        "homeassistant/sensor/kairos_other_x/state/config",      // another mesh
                        "homeassistant/sensor/kairos_farm_/state/config",        // no node
                        "other/sensor/kairos_farm_x/state/config"})              // another prefix
    EXPECT_FALSE(parse_config_topic(s, t)) << t;
}

}  // namespace
}  // namespace kairos::gw::ha

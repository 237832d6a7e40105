#include "gateway/homeassistant/discovery.h"

#include <cctype>
#include <functional>

#include "common/core/lists.h"
#include "common/core/json.h"

namespace kairos::gw::ha {

namespace {

const char* const kStates[] = {"COMPLIANT", "PROCESSING", "VARIANCE_WARNING", "QUARANTINED", "FROZEN", "OFFLINE"};
const char* const kModes[] = {"FULL", "DEGRADED_LIGHT", "DEGRADED_MODERATE", "DEGRADED_SEVERE", "EMERGENCY"};

std::string config_topic(const Settings& s, const std::string& component, const std::string& node_id,
                         const std::string& object) {
  return s.discovery_prefix + "/" + component + "/" + node_id + "/" + object + "/config";
}

// One entity's config: name, ids, the device, availability (the gateway's and, for a node, the node's own).
class Entity {
 public:
  Entity(const Settings& s, const std::string& device, const std::string& object, const std::string& name) {
    j_.begin_object();
    j_.key("name").str(name);
    j_.key("unique_id").str(device + "_" + object);
    // Home Assistant makes the entity id from it: lower case only.
    std::string id = device + "_" + object;
    for (char& c : id) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    j_.key("object_id").str(id);
    j_.key("availability").begin_array();
    j_.begin_object().key("topic").str(gateway_availability_topic(s)).end_object();
  }
  Entity& also_available(const std::string& topic) {
    j_.begin_object().key("topic").str(topic).end_object();
    return *this;
  }
  // Closes the availability list: every topic must say online.
  Json& body() {
    if (!closed_) {
      j_.end_array();
      j_.key("availability_mode").str("all");
      closed_ = true;
    }
    return j_;
  }
  std::string done(const std::function<void(Json&)>& device) {
    body();
    j_.key("device");
    device(j_);
    j_.end_object();
    return j_.text();
  }

 private:
  Json j_;
  bool closed_ = false;
};

}  // namespace

std::string device_id(const Settings& s, const std::string& node) { return "kairos_" + s.mesh + "_" + node; }

std::string node_state_topic(const Settings& s, const std::string& node) { return s.state_prefix + "/node/" + node + "/state"; }
std::string node_availability_topic(const Settings& s, const std::string& node) {
  return s.state_prefix + "/node/" + node + "/availability";
}
std::string gateway_availability_topic(const Settings& s) { return s.state_prefix + "/gateway/" + s.gateway + "/availability"; }
std::string mesh_state_topic(const Settings& s) { return s.state_prefix + "/mesh/state"; }
std::string output_command_topic(const Settings& s, const std::string& node, const std::string& output) {
  return s.state_prefix + "/node/" + node + "/output/" + output + "/set";
}

std::vector<Publication> node_configs(const Settings& s, const NodeFacts& n) {
  const std::string dev = device_id(s, n.id);
  auto device = [&](Json& j) {
    j.begin_object();
    j.key("identifiers").begin_array().str(dev).end_array();
    j.key("name").str(n.id).key("manufacturer").str("Kairos mesh").key("model").str(n.board);
    j.key("sw_version").str(n.firmware).key("via_device").str("kairos_" + s.mesh + "_gateway_" + s.gateway);
    j.end_object();
  };
  const std::string state = node_state_topic(s, n.id), avail = node_availability_topic(s, n.id);
  std::vector<Publication> out;
  {
    // The state: available while the gateway is, whatever the node (OFFLINE is a state).
    Entity e(s, dev, "state", "State");
    auto& j = e.body();
    j.key("state_topic").str(state).key("value_template").str("{{ value_json.state }}");
    j.key("device_class").str("enum").key("options").begin_array();
    for (const char* st : kStates) j.str(st);
    j.end_array().key("icon").str("mdi:state-machine");
    out.push_back({config_topic(s, "sensor", dev, "state"), e.done(device)});
  }
  {
    Entity e(s, dev, "online", "Online");
    auto& j = e.body();
    j.key("state_topic").str(state).key("value_template").str("{{ value_json.online }}");
    j.key("payload_on").str("ON").key("payload_off").str("OFF").key("device_class").str("connectivity");
    out.push_back({config_topic(s, "binary_sensor", dev, "online"), e.done(device)});
  }
  for (const auto& in : n.inputs) {
    struct Part {
      const char* suffix;
      const char* name;
      const char* unit;
    };
    for (const Part& p : {Part{"value", "", ""}, Part{"phase", " phase", "°"}, Part{"coherence", " coherence", ""}}) {
      const std::string object = "input_" + in + "_" + p.suffix;
      Entity e(s, dev, object, in + p.name);
      e.also_available(avail);
      auto& j = e.body();
      j.key("state_topic").str(state);
      j.key("value_template").str("{{ value_json.inputs['" + in + "']." + p.suffix + " }}");
      j.key("state_class").str("measurement");
      if (p.unit[0]) j.key("unit_of_measurement").str(p.unit);
      out.push_back({config_topic(s, "sensor", dev, object), e.done(device)});
    }
  }
  if (s.allow_commands)
    for (const auto& o : n.outputs) {
      const std::string object = "output_" + o;
      Entity e(s, dev, object, o);
      e.also_available(avail);
      auto& j = e.body();
      j.key("command_topic").str(output_command_topic(s, n.id, o));
      j.key("min").num(0).key("max").num(1).key("step").num(0.01).key("mode").str("slider");
      j.key("optimistic").boolean(true);
      out.push_back({config_topic(s, "number", dev, object), e.done(device)});
    }
  return out;
}

std::vector<Publication> node_removal(const Settings& s, const NodeFacts& n) {
  // Every config node_configs would write, whatever allow_commands says now.
  Settings all = s;
  all.allow_commands = true;
  auto out = node_configs(all, n);
  for (auto& p : out) p.payload.clear();
  return out;
}

std::vector<Publication> mesh_configs(const Settings& s) {
  const std::string dev = "kairos_" + s.mesh + "_gateway_" + s.gateway;
  auto device = [&](Json& j) {
    j.begin_object();
    j.key("identifiers").begin_array().str(dev).end_array();
    j.key("name").str("Kairos mesh " + s.mesh).key("manufacturer").str("Kairos mesh").key("model").str("gateway");
    j.end_object();
  };
  const std::string state = mesh_state_topic(s);
  std::vector<Publication> out;
  struct Figure {
    const char* object;
    const char* name;
    const char* unit;
  };
  for (const Figure& f : {Figure{"phase", "Global phase", "°"}, Figure{"coherence", "Coherence", ""},
                          Figure{"agreement", "Agreement", ""}, Figure{"online", "Nodes online", ""}}) {
    Entity e(s, dev, f.object, f.name);
    auto& j = e.body();
    j.key("state_topic").str(state).key("value_template").str(std::string("{{ value_json.") + f.object + " }}");
    j.key("state_class").str("measurement");
    if (f.unit[0]) j.key("unit_of_measurement").str(f.unit);
    out.push_back({config_topic(s, "sensor", dev, f.object), e.done(device)});
  }
  {
    Entity e(s, dev, "mode", "Mode");
    auto& j = e.body();
    j.key("state_topic").str(state).key("value_template").str("{{ value_json.mode }}");
    j.key("device_class").str("enum").key("options").begin_array();
    for (const char* m : kModes) j.str(m);
    j.end_array();
    out.push_back({config_topic(s, "sensor", dev, "mode"), e.done(device)});
  }
  {
    Entity e(s, dev, "unified", "Unified");
    auto& j = e.body();
    j.key("state_topic").str(state).key("value_template").str("{{ value_json.unified }}");
    j.key("payload_on").str("ON").key("payload_off").str("OFF");
    out.push_back({config_topic(s, "binary_sensor", dev, "unified"), e.done(device)});
  }
  return out;
}

std::string node_state(const NodeFacts& n, const std::string& status, bool online) {
  Json j;
  j.begin_object().key("state").str(status).key("online").str(online ? "ON" : "OFF");
  j.key("inputs").begin_object();
  auto figure = [&](const char* key, const std::optional<double>& v) {
    j.key(key);
    if (v) j.num(*v);
    else j.null();
  };
  for (const auto& r : n.readings) {
    j.key(r.name).begin_object();
    figure("value", r.value);
    figure("phase", r.phase_deg);
    figure("coherence", r.coherence);
    j.end_object();
  }
  j.end_object().end_object();
  return j.text();
}

std::string mesh_state(double phase_deg, double coherence, double agreement, bool unified, const std::string& mode,
                       std::uint32_t online) {
  Json j;
  j.begin_object().key("phase").num(phase_deg).key("coherence").num(coherence).key("agreement").num(agreement);
  j.key("unified").str(unified ? "ON" : "OFF").key("mode").str(mode).key("online").integer(online).end_object();
  return j.text();
}

std::optional<ConfigTopic> parse_config_topic(const Settings& s, const std::string& topic) {
  const std::string head = s.discovery_prefix + "/";
  if (topic.rfind(head, 0) != 0) return std::nullopt;
  std::string rest = topic.substr(head.size());  // component/node_id/object/config
  const auto parts = split_list(rest, '/');  // an empty level drops out: the count no longer fits
  const std::string dev = "kairos_" + s.mesh + "_";
  if (parts.size() != 4 || parts[3] != "config" || parts[1].rfind(dev, 0) != 0 || parts[1].size() == dev.size())
    return std::nullopt;
  return ConfigTopic{parts[1].substr(dev.size()), parts[2]};
}

}  // namespace kairos::gw::ha

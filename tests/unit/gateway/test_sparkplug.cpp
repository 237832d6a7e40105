// Sparkplug B edge node (gateway/sparkplug): what it encodes, decoded again
// with nanopb as a host would read it, and the session's state machine.
#include <gtest/gtest.h>
#include <pb_decode.h>
#include <pb_encode.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>

#include "gateway/sparkplug/edge.h"
#include "sparkplug_b.pb.h"

namespace kairos::gw::sparkplug {
namespace {

using PbPayload = org_eclipse_tahu_protobuf_Payload;
using PbMetric = org_eclipse_tahu_protobuf_Payload_Metric;

constexpr std::uint64_t kNow = 1'700'000'000'000;  // ms since the epoch

Settings settings() { return {"farm", "gw1"}; }

MeshState mesh(double phase = 90.0) { return {phase, 0.9, 0.8, true, "FULL", 2, 3}; }

DeviceFacts kitchen() { return {"pi-kitchen", "north", "rpi4", "0.1.0", {"temp", "mic"}, {"fan"}, 0, {}, 0}; }
DeviceFacts shed() { return {"pi-shed", "south", "rpi3", "0.1.0", {"temp"}, {}, 0, {}, 0}; }

DeviceState state(double temp = 21.5) {
  return {"COMPLIANT", {{"temp", temp, 45.0, 0.95}, {"mic", std::nullopt, 10.0, 0.5}}, 120, 0.99};
}

std::unique_ptr<PbPayload> decode(const Publication& p) {
  auto out = std::make_unique<PbPayload>();
  *out = org_eclipse_tahu_protobuf_Payload_init_zero;
  pb_istream_t in = pb_istream_from_buffer(p.payload.data(), p.payload.size());
  if (!pb_decode(&in, org_eclipse_tahu_protobuf_Payload_fields, out.get())) {
    ADD_FAILURE() << p.topic << ": " << PB_GET_ERROR(&in);
    return nullptr;
  }
  return out;
}

const PbMetric* by_name(const PbPayload& p, const std::string& name) {
  for (pb_size_t i = 0; i < p.metrics_count; ++i)
    if (p.metrics[i].has_name && name == p.metrics[i].name) return &p.metrics[i];
  return nullptr;
}

const PbMetric* by_alias(const PbPayload& p, std::uint64_t alias) {
  for (pb_size_t i = 0; i < p.metrics_count; ++i)
    if (p.metrics[i].has_alias && p.metrics[i].alias == alias) return &p.metrics[i];
  return nullptr;
}

constexpr std::uint32_t kInt32 = org_eclipse_tahu_protobuf_DataType_Int32;
constexpr std::uint32_t kUInt64 = org_eclipse_tahu_protobuf_DataType_UInt64;
constexpr std::uint32_t kDouble = org_eclipse_tahu_protobuf_DataType_Double;
constexpr std::uint32_t kBoolean = org_eclipse_tahu_protobuf_DataType_Boolean;
constexpr std::uint32_t kString = org_eclipse_tahu_protobuf_DataType_String;

// A metric's value as "<oneof member> <value>", or "null" (is_null and no member).
std::string shown(const PbMetric& m) {
  std::ostringstream out;
  switch (m.which_value) {
    case 0: return m.has_is_null && m.is_null ? "null" : "none";
    case org_eclipse_tahu_protobuf_Payload_Metric_int_value_tag: out << "int " << m.value.int_value; break;
    case org_eclipse_tahu_protobuf_Payload_Metric_long_value_tag: out << "long " << m.value.long_value; break;
    case org_eclipse_tahu_protobuf_Payload_Metric_double_value_tag: out << "double " << m.value.double_value; break;
    case org_eclipse_tahu_protobuf_Payload_Metric_boolean_value_tag:
      out << "boolean " << std::boolalpha << m.value.boolean_value;
      break;
    case org_eclipse_tahu_protobuf_Payload_Metric_string_value_tag: out << "string " << m.value.string_value; break;
    default: out << "member " << m.which_value;
  }
  return m.has_is_null && m.is_null ? "null and " + out.str() : out.str();
}

// Its engUnit property, or "".
std::string unit(const PbMetric& m) {
  const auto& props = m.properties;
  for (pb_size_t i = 0; m.has_properties && i < props.keys_count && i < props.values_count; ++i)
    if (std::string(props.keys[i]) == "engUnit") return props.values[i].value.string_value;
  return "";
}

// A birth's metrics, each named, with its datatype and its value in the datatype's oneof member
// (bdSeq, alone without an alias, excepted).
struct Expected {
  const char* name;
  std::uint32_t datatype;
  const char* value;
};
void expect_birth_metrics(const PbPayload& p, std::initializer_list<Expected> rows) {
  for (const Expected& row : rows) {
    const auto* m = by_name(p, row.name);
    ASSERT_TRUE(m) << row.name;
    EXPECT_TRUE(m->has_datatype) << row.name;
    EXPECT_EQ(m->datatype, row.datatype) << row.name;
    EXPECT_EQ(shown(*m), row.value) << row.name;
    EXPECT_EQ(m->has_alias, std::string(row.name) != "bdSeq") << row.name;
  }
}

std::uint64_t seq_of(const Publication& p) {
  auto d = decode(p);
  EXPECT_TRUE(d && d->has_seq) << p.topic;
  return d && d->has_seq ? d->seq : 999;
}

// An edge node born, with kitchen and shed born after it.
struct Session {
  EdgeNode edge{settings(), 7};
  Publication nbirth = edge.birth(mesh(), kNow);
  std::optional<Publication> kitchen_birth = edge.device_birth(kitchen(), state(), kNow + 1);
  std::optional<Publication> shed_birth = edge.device_birth(shed(), state(), kNow + 2);
};

TEST(SparkplugEdge, TopicsQosAndRetainFollowTheNamespace) {
  Session s;
  EXPECT_EQ(s.nbirth.topic, "spBv1.0/farm/NBIRTH/gw1");
  EXPECT_EQ(s.nbirth.qos, 0);
  EXPECT_FALSE(s.nbirth.retained);
  const auto death = s.edge.death();
  EXPECT_EQ(death.topic, "spBv1.0/farm/NDEATH/gw1");
  EXPECT_EQ(death.qos, 1);
  EXPECT_FALSE(death.retained);
  ASSERT_TRUE(s.kitchen_birth);
  EXPECT_EQ(s.kitchen_birth->topic, "spBv1.0/farm/DBIRTH/gw1/pi-kitchen");
  EXPECT_EQ(s.kitchen_birth->qos, 0);
  EXPECT_FALSE(s.kitchen_birth->retained);
  auto ddata = s.edge.device_data("pi-kitchen", state(22.0), kNow + 3, false, kNow + 3);
  ASSERT_TRUE(ddata);
  EXPECT_EQ(ddata->topic, "spBv1.0/farm/DDATA/gw1/pi-kitchen");
  auto ndata = s.edge.node_data(mesh(91.0), kNow + 4);
  ASSERT_TRUE(ndata);
  EXPECT_EQ(ndata->topic, "spBv1.0/farm/NDATA/gw1");
  auto ddeath = s.edge.device_death("pi-shed", kNow + 5);
  ASSERT_TRUE(ddeath);
  EXPECT_EQ(ddeath->topic, "spBv1.0/farm/DDEATH/gw1/pi-shed");
  EXPECT_EQ(ddeath->qos, 0);
  EXPECT_EQ(s.edge.ncmd_topic(), "spBv1.0/farm/NCMD/gw1");
}

TEST(SparkplugEdge, NodeBirthIsSeqZeroWithBdSeqAndEveryMetricNamedTypedAndAliased) {
  Session s;
  auto p = decode(s.nbirth);
  ASSERT_TRUE(p);
  ASSERT_TRUE(p->has_seq);
  EXPECT_EQ(p->seq, 0u);
  ASSERT_TRUE(p->has_timestamp);
  EXPECT_EQ(p->timestamp, kNow);
  ASSERT_EQ(p->metrics_count, 9u);

  expect_birth_metrics(*p, {{"bdSeq", kUInt64, "long 7"},
                            {"Node Control/Rebirth", kBoolean, "boolean false"},
                            {"Mesh/Phase", kDouble, "double 90"},
                            {"Mesh/Coherence", kDouble, "double 0.9"},
                            {"Mesh/Agreement", kDouble, "double 0.8"},
                            {"Mesh/Unified", kBoolean, "boolean true"},
                            {"Mesh/Mode", kString, "string FULL"},
                            {"Mesh/Nodes Online", kInt32, "int 2"},
                            {"Mesh/Nodes Known", kInt32, "int 3"}});
  EXPECT_EQ(by_name(*p, "Node Control/Rebirth")->alias, 1u);  // fixed: a host may ask by alias
  EXPECT_EQ(unit(*by_name(*p, "Mesh/Phase")), "deg");
  EXPECT_EQ(unit(*by_name(*p, "Mesh/Coherence")), "");

  // Every metric but bdSeq has an alias, all different; every one a datatype.
  std::set<std::uint64_t> aliases;
  for (pb_size_t i = 0; i < p->metrics_count; ++i) {
    const auto& m = p->metrics[i];
    EXPECT_TRUE(m.has_name && m.has_datatype) << i;
    if (std::string(m.name) == "bdSeq") continue;
    ASSERT_TRUE(m.has_alias) << m.name;
    EXPECT_TRUE(aliases.insert(m.alias).second) << m.name;
  }
}

TEST(SparkplugEdge, DeathCarriesTheBirthsBdSeqAndNoSeq) {
  for (int n : {0, 7, 255}) {
    const auto bd = static_cast<std::uint8_t>(n);
    EdgeNode edge(settings(), bd);
    auto death = decode(edge.death());
    auto birth = decode(edge.birth(mesh(), kNow));
    ASSERT_TRUE(death && birth);
    EXPECT_FALSE(death->has_seq);
    EXPECT_FALSE(death->has_timestamp);  // the Will is written at connect
    ASSERT_EQ(death->metrics_count, 1u);
    const auto* d = by_name(*death, "bdSeq");
    const auto* b = by_name(*birth, "bdSeq");
    ASSERT_TRUE(d && b);
    EXPECT_EQ(d->datatype, kUInt64);
    EXPECT_EQ(d->value.long_value, bd);
    EXPECT_EQ(b->value.long_value, bd);
    EXPECT_EQ(edge.bd_seq(), bd);
  }
}

TEST(SparkplugEdge, SeqIsSharedByEveryMessageAndWrapsAfter255) {
  Session s;
  ASSERT_TRUE(s.kitchen_birth && s.shed_birth);
  EXPECT_EQ(seq_of(*s.kitchen_birth), 1u);
  EXPECT_EQ(seq_of(*s.shed_birth), 2u);
  std::uint64_t expect = 3;
  for (int i = 0; i < 300; ++i) {
    // Node, device data and a device's death and birth, interleaved: one counter.
    std::optional<Publication> p;
    switch (i % 4) {
      case 0: p = s.edge.node_data(mesh(i), kNow + i); break;
      case 1: p = s.edge.device_data("pi-kitchen", state(i), kNow + i, false, kNow + i); break;
      case 2: p = s.edge.device_death("pi-shed", kNow + i); break;
      case 3: p = s.edge.device_birth(shed(), state(), kNow + i); break;
    }
    ASSERT_TRUE(p) << i;
    ASSERT_EQ(seq_of(*p), expect) << i << " " << p->topic;
    expect = (expect + 1) % 256;
  }
  EXPECT_EQ(expect, (3 + 300) % 256);
}

TEST(SparkplugEdge, RebirthRestartsAtSeqZeroAndDevicesMustBeBornAgain) {
  Session s;
  const auto first = decode(*s.kitchen_birth);
  ASSERT_TRUE(s.edge.device_data("pi-kitchen", state(30), kNow + 5, false, kNow + 5));
  auto again = s.edge.birth(mesh(), kNow + 10);
  EXPECT_EQ(seq_of(again), 0u);
  EXPECT_EQ(by_name(*decode(again), "bdSeq")->value.long_value, 7u);  // the same connection, the same bdSeq
  // No device data nor death for a device not born since the NBIRTH.
  EXPECT_FALSE(s.edge.device_data("pi-kitchen", state(31), kNow + 11, false, kNow + 11));
  EXPECT_FALSE(s.edge.device_death("pi-kitchen", kNow + 11));
  auto reborn = s.edge.device_birth(kitchen(), state(31), kNow + 12);
  ASSERT_TRUE(reborn);
  EXPECT_EQ(seq_of(*reborn), 1u);
  // The same aliases as in the first session's birth.
  auto r = decode(*reborn);
  ASSERT_TRUE(r && first);
  ASSERT_EQ(r->metrics_count, first->metrics_count);
  for (pb_size_t i = 0; i < r->metrics_count; ++i) {
    EXPECT_STREQ(r->metrics[i].name, first->metrics[i].name);
    EXPECT_EQ(r->metrics[i].alias, first->metrics[i].alias) << r->metrics[i].name;
  }
}

TEST(SparkplugEdge, DeviceBirthHasEveryMetricWithNameAliasTypeAndValue) {
  Session s;
  ASSERT_TRUE(s.kitchen_birth);
  auto p = decode(*s.kitchen_birth);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->timestamp, kNow + 1);
  ASSERT_EQ(p->metrics_count, 12u);  // 3 facts, status, impedance, reliability, 2 inputs x 3
  expect_birth_metrics(*p, {{"Properties/Board", kString, "string rpi4"},
                            {"Properties/Firmware", kString, "string 0.1.0"},
                            {"Properties/Cluster", kString, "string north"},
                            {"Status", kString, "string COMPLIANT"},
                            {"Impedance", kDouble, "double 120"},
                            {"Reliability", kDouble, "double 0.99"},
                            {"Inputs/temp/Value", kDouble, "double 21.5"},
                            {"Inputs/temp/Phase", kDouble, "double 45"},
                            {"Inputs/temp/Coherence", kDouble, "double 0.95"},
                            {"Inputs/mic/Value", kDouble, "null"},
                            {"Inputs/mic/Phase", kDouble, "double 10"},
                            {"Inputs/mic/Coherence", kDouble, "double 0.5"}});
  EXPECT_EQ(unit(*by_name(*p, "Inputs/temp/Phase")), "deg");

  // Aliases are unique over the edge node and all its devices.
  std::set<std::uint64_t> aliases;
  for (const auto* pub : {&s.nbirth, &*s.kitchen_birth, &*s.shed_birth}) {
    auto d = decode(*pub);
    ASSERT_TRUE(d);
    for (pb_size_t i = 0; i < d->metrics_count; ++i) {
      if (!d->metrics[i].has_alias) continue;
      EXPECT_TRUE(aliases.insert(d->metrics[i].alias).second) << pub->topic << " " << d->metrics[i].name;
    }
  }
  EXPECT_EQ(aliases.size(), 8u + 12u + 9u);
}

TEST(SparkplugEdge, DeviceDataCarriesOnlyChangedMetricsByTheirBirthAlias) {
  Session s;
  auto birth = decode(*s.kitchen_birth);
  ASSERT_TRUE(birth);
  // Nothing changed: nothing to say.
  EXPECT_FALSE(s.edge.device_data("pi-kitchen", state(), kNow + 3, false, kNow + 3));

  auto d = s.edge.device_data("pi-kitchen", state(22.25), kNow + 4, false, kNow + 2);
  ASSERT_TRUE(d);
  auto p = decode(*d);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->timestamp, kNow + 4);
  ASSERT_EQ(p->metrics_count, 1u);
  const auto& m = p->metrics[0];
  EXPECT_FALSE(m.has_name);
  EXPECT_FALSE(m.has_datatype);
  EXPECT_EQ(m.alias, by_name(*birth, "Inputs/temp/Value")->alias);
  EXPECT_EQ(shown(m), "double 22.25");
  ASSERT_TRUE(m.has_timestamp);
  EXPECT_EQ(m.timestamp, kNow + 2);  // when the node took the sample
  EXPECT_FALSE(m.has_is_historical && m.is_historical);

  // A reading gone (NaN, or the input missing) is null; a new one and a state change are said.
  DeviceState next = state(22.25);
  next.status = "VARIANCE_WARNING";
  next.inputs[0].coherence = std::nullopt;
  next.inputs[1].value = 3.5;
  next.impedance = std::nan("");
  d = s.edge.device_data("pi-kitchen", next, kNow + 5, false, kNow + 5);
  ASSERT_TRUE(d);
  p = decode(*d);
  ASSERT_TRUE(p);
  ASSERT_EQ(p->metrics_count, 4u);
  const auto* status = by_alias(*p, by_name(*birth, "Status")->alias);
  ASSERT_TRUE(status);
  EXPECT_EQ(shown(*status), "string VARIANCE_WARNING");
  for (const char* gone : {"Inputs/temp/Coherence", "Impedance"}) {
    const auto* g = by_alias(*p, by_name(*birth, gone)->alias);
    ASSERT_TRUE(g) << gone;
    EXPECT_EQ(shown(*g), "null") << gone;
  }
  const auto* mic = by_alias(*p, by_name(*birth, "Inputs/mic/Value")->alias);
  ASSERT_TRUE(mic);
  EXPECT_EQ(shown(*mic), "double 3.5");

  // An input the birth did not declare is left out; the device's others did not change.
  DeviceState extra = next;
  extra.inputs.push_back({"light", 5.0, 1.0, 1.0});
  EXPECT_FALSE(s.edge.device_data("pi-kitchen", extra, kNow + 6, false, kNow + 6));
  // An unknown device has no data.
  EXPECT_FALSE(s.edge.device_data("pi-attic", state(), kNow + 6, false, kNow + 6));
}

TEST(SparkplugEdge, HistoricalDataIsMarkedAndLeavesTheCurrentValuesAlone) {
  Session s;
  auto birth = decode(*s.kitchen_birth);
  auto d = s.edge.device_data("pi-kitchen", state(18.0), kNow + 10, true, kNow - 60'000);
  ASSERT_TRUE(d);
  auto p = decode(*d);
  ASSERT_TRUE(p && birth);
  // Every reading with a value (the mic's has none): status, impedance, reliability, 5 input figures.
  ASSERT_EQ(p->metrics_count, 8u);
  for (pb_size_t i = 0; i < p->metrics_count; ++i) {
    EXPECT_TRUE(p->metrics[i].has_is_historical && p->metrics[i].is_historical) << i;
    EXPECT_EQ(p->metrics[i].timestamp, kNow - 60'000) << i;
    EXPECT_FALSE(p->metrics[i].has_name) << i;
  }
  EXPECT_EQ(shown(*by_alias(*p, by_name(*birth, "Inputs/temp/Value")->alias)), "double 18");
  // The current values are still the birth's: the same state again says nothing...
  EXPECT_FALSE(s.edge.device_data("pi-kitchen", state(), kNow + 11, false, kNow + 11));
  // ...and the historical value, now current, is said.
  d = s.edge.device_data("pi-kitchen", state(18.0), kNow + 12, false, kNow + 12);
  ASSERT_TRUE(d);
  p = decode(*d);
  ASSERT_EQ(p->metrics_count, 1u);
  EXPECT_FALSE(p->metrics[0].has_is_historical && p->metrics[0].is_historical);
}

TEST(SparkplugEdge, NodeDataCarriesOnlyChangedMeshMetrics) {
  Session s;
  auto birth = decode(s.nbirth);
  EXPECT_FALSE(s.edge.node_data(mesh(), kNow + 1));
  MeshState m = mesh();
  m.online = 1;
  m.mode = "DEGRADED_LIGHT";
  auto d = s.edge.node_data(m, kNow + 2);
  ASSERT_TRUE(d);
  auto p = decode(*d);
  ASSERT_TRUE(p && birth);
  ASSERT_EQ(p->metrics_count, 2u);
  const auto* online = by_alias(*p, by_name(*birth, "Mesh/Nodes Online")->alias);
  ASSERT_TRUE(online);
  EXPECT_FALSE(online->has_name);
  EXPECT_EQ(shown(*online), "int 1");
  const auto* mode = by_alias(*p, by_name(*birth, "Mesh/Mode")->alias);
  ASSERT_TRUE(mode);
  EXPECT_EQ(shown(*mode), "string DEGRADED_LIGHT");
}

TEST(SparkplugEdge, DeviceDeathForgetsTheDeviceSoItsNextBirthIsFull) {
  Session s;
  auto death = s.edge.device_death("pi-kitchen", kNow + 20);
  ASSERT_TRUE(death);
  auto p = decode(*death);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->seq, 3u);
  EXPECT_EQ(p->timestamp, kNow + 20);
  EXPECT_EQ(p->metrics_count, 0u);
  EXPECT_FALSE(s.edge.device_data("pi-kitchen", state(40), kNow + 21, false, kNow + 21));
  EXPECT_FALSE(s.edge.device_death("pi-kitchen", kNow + 21));  // dead once
  auto again = s.edge.device_birth(kitchen(), state(), kNow + 22);
  ASSERT_TRUE(again);
  auto b = decode(*again);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->metrics_count, 12u);
  EXPECT_EQ(b->seq, 4u);
  // Its values are compared with this birth's from now on.
  EXPECT_FALSE(s.edge.device_data("pi-kitchen", state(), kNow + 23, false, kNow + 23));
}

TEST(SparkplugEdge, NothingForDevicesBeforeTheNodeIsBorn) {
  EdgeNode edge(settings(), 1);
  EXPECT_FALSE(edge.device_birth(kitchen(), state(), kNow));
  EXPECT_FALSE(edge.node_data(mesh(), kNow));
  EXPECT_FALSE(edge.device_data("pi-kitchen", state(), kNow, false, kNow));
  EXPECT_FALSE(edge.device_death("pi-kitchen", kNow));
}

TEST(SparkplugEdge, IdsThatWouldMakeAnInvalidTopicAreRefused) {
  struct Case {
    Settings s;
    const char* says;
  };
  for (const Case& c : {Case{{"fa/rm", "gw1"}, "group_id \"fa/rm\" contains '/'"},
                        Case{{"farm", "gw+1"}, "edge_node \"gw+1\" contains '+'"}, Case{{"#", "gw1"}, "contains '#'"},
                        Case{{"", "gw1"}, "group_id is empty"}, Case{{"farm", ""}, "edge_node is empty"},
                        Case{{"farm", std::string("gw\xff", 3)}, "is not UTF-8"},
                        Case{{"farm", std::string("g\0w", 3)}, "contains '\\0'"}}) {
    try {
      EdgeNode edge(c.s, 0);
      ADD_FAILURE() << "accepted " << c.s.group_id << " " << c.s.edge_node;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(c.says), std::string::npos) << e.what();
    }
  }

  EdgeNode edge(settings(), 0);
  edge.birth(mesh(), kNow);
  struct Device {
    DeviceFacts f;
    const char* says;
  };
  DeviceFacts twice = kitchen();
  twice.inputs.push_back("temp");
  DeviceFacts long_input = kitchen();
  long_input.inputs.push_back(std::string(120, 'x'));
  DeviceFacts long_board = kitchen();
  long_board.board = std::string(65, 'b');
  DeviceFacts many = kitchen();
  many.inputs.clear();
  for (int i = 0; i < 50; ++i) many.inputs.push_back("in" + std::to_string(i));
  for (const Device& d :
       {Device{{"pi/kitchen", "", "", "", {}, {}, 0, {}, 0}, "contains '/'"}, Device{{"pi+", "", "", "", {}, {}, 0, {}, 0}, "contains '+'"},
        Device{{"#", "", "", "", {}, {}, 0, {}, 0}, "contains '#'"}, Device{{"", "", "", "", {}, {}, 0, {}, 0}, "device id is empty"},
        Device{twice, "\"temp\" is listed twice"}, Device{long_input, "metric names are over 127 bytes"},
        Device{long_board, "board is over 64 bytes"}, Device{many, "50 inputs: more metrics than a payload holds"}}) {
    EXPECT_NE(EdgeNode::refusal(d.f).find(d.says), std::string::npos) << EdgeNode::refusal(d.f);
    EXPECT_FALSE(edge.device_birth(d.f, state(), kNow)) << d.f.id;
  }
  EXPECT_EQ(EdgeNode::refusal(kitchen()), "");
  // A refused device took no seq: the next message is still 1.
  auto ok = edge.device_birth(kitchen(), state(), kNow);
  ASSERT_TRUE(ok);
  EXPECT_EQ(seq_of(*ok), 1u);
}

// --- NCMD ---

// A raw protobuf writer, to build what a host (or an attacker) may send.
struct Raw {
  Bytes b;
  Raw& varint(std::uint64_t v) {
    do {
      std::uint8_t byte = v & 0x7f;
      v >>= 7;
      b.push_back(static_cast<std::uint8_t>(byte | (v ? 0x80 : 0)));
    } while (v);
    return *this;
  }
  Raw& tag(std::uint32_t field, std::uint32_t wire) { return varint(field << 3 | wire); }
  Raw& field(std::uint32_t f, std::uint64_t v) { return tag(f, 0).varint(v); }
  Raw& field(std::uint32_t f, const Bytes& bytes) {
    tag(f, 2).varint(bytes.size());
    b.insert(b.end(), bytes.begin(), bytes.end());
    return *this;
  }
  Raw& field(std::uint32_t f, const std::string& s) { return field(f, Bytes(s.begin(), s.end())); }
};

// Payload{timestamp, metrics:[metric]}
Bytes ncmd(const Raw& metric) { return Raw{}.field(1, kNow).field(2, metric.b).b; }

Raw rebirth_by_name(bool value) {
  return Raw{}.field(1, std::string("Node Control/Rebirth")).field(4, 11).field(14, value ? 1 : 0);
}

TEST(SparkplugNcmd, RebirthByNameOrByAlias) {
  auto c = EdgeNode::parse_ncmd(ncmd(rebirth_by_name(true)));
  EXPECT_EQ(c.error, "");
  EXPECT_TRUE(c.rebirth);
  c = EdgeNode::parse_ncmd(ncmd(Raw{}.field(2, 1).field(14, 1)));  // alias 1, no name, no datatype
  EXPECT_EQ(c.error, "");
  EXPECT_TRUE(c.rebirth);

  c = EdgeNode::parse_ncmd(ncmd(rebirth_by_name(false)));
  EXPECT_EQ(c.error, "");
  EXPECT_FALSE(c.rebirth);
  // Another alias, or another name with alias 1 (the name says which): not a rebirth.
  c = EdgeNode::parse_ncmd(ncmd(Raw{}.field(2, 2).field(14, 1)));
  EXPECT_EQ(c.error, "");
  EXPECT_FALSE(c.rebirth);
  c = EdgeNode::parse_ncmd(ncmd(Raw{}.field(1, std::string("Node Control/Reboot")).field(2, 1).field(14, 1)));
  EXPECT_EQ(c.error, "");
  EXPECT_FALSE(c.rebirth);

  // Encoded by nanopb from the generated struct, as another edge's code would.
  auto p = std::make_unique<PbPayload>();
  *p = org_eclipse_tahu_protobuf_Payload_init_zero;
  p->has_timestamp = true;
  p->timestamp = kNow;
  p->metrics_count = 2;
  p->metrics[0] = org_eclipse_tahu_protobuf_Payload_Metric_init_zero;
  p->metrics[0].has_name = true;
  std::strcpy(p->metrics[0].name, "Node Control/Next Server");
  p->metrics[0].which_value = org_eclipse_tahu_protobuf_Payload_Metric_boolean_value_tag;
  p->metrics[0].value.boolean_value = true;
  p->metrics[1] = p->metrics[0];
  std::strcpy(p->metrics[1].name, "Node Control/Rebirth");
  Bytes buf(org_eclipse_tahu_protobuf_Payload_size);
  pb_ostream_t out = pb_ostream_from_buffer(buf.data(), buf.size());
  ASSERT_TRUE(pb_encode(&out, org_eclipse_tahu_protobuf_Payload_fields, p.get())) << PB_GET_ERROR(&out);
  buf.resize(out.bytes_written);
  c = EdgeNode::parse_ncmd(buf);
  EXPECT_EQ(c.error, "");
  EXPECT_TRUE(c.rebirth);
}

TEST(SparkplugNcmd, ARebirthOfTheWrongKindIsRefused) {
  auto c =
      EdgeNode::parse_ncmd(ncmd(Raw{}.field(1, std::string("Node Control/Rebirth")).field(15, std::string("true"))));
  EXPECT_FALSE(c.rebirth);
  EXPECT_EQ(c.error, "NCMD: Node Control/Rebirth carries no boolean value");
  c = EdgeNode::parse_ncmd(ncmd(Raw{}.field(1, std::string("Node Control/Rebirth")).field(4, 12).field(14, 1)));
  EXPECT_FALSE(c.rebirth);
  EXPECT_EQ(c.error, "NCMD: Node Control/Rebirth has datatype 12, not Boolean");
  c = EdgeNode::parse_ncmd(ncmd(Raw{}.field(1, std::string("Node Control/Rebirth")).field(7, 1)));  // is_null
  EXPECT_FALSE(c.rebirth);
  EXPECT_NE(c.error, "");
  c = EdgeNode::parse_ncmd(Raw{}.field(1, kNow).b);  // no metric
  EXPECT_EQ(c.error, "NCMD carries no metric");
  c = EdgeNode::parse_ncmd({});
  EXPECT_EQ(c.error, "NCMD carries no metric");
}

TEST(SparkplugNcmd, WhatTheGatewayNeverReadsIsSkippedNotStored) {
  // A Rebirth metric with a 60 kB bytes_value, a DataSet, a Template, metadata
  // and an extension beside its value, in a payload with a body and an extension.
  Raw metric = rebirth_by_name(true);
  metric.field(16, Bytes(60'000, 0xAB)).field(17, Bytes(300, 0x01)).field(18, Bytes(200, 0xFF));
  metric.field(8, Bytes(100, 0x00)).field(19, Bytes(10, 0x7F));
  Raw payload;
  payload.field(1, kNow).field(2, metric.b).field(5, Bytes(20'000, 0x55)).field(99, std::string("ext"));
  auto c = EdgeNode::parse_ncmd(payload.b);
  EXPECT_EQ(c.error, "");
  EXPECT_TRUE(c.rebirth);
  // Over the bounds: a name longer than 127 bytes, more than 128 metrics.
  c = EdgeNode::parse_ncmd(ncmd(Raw{}.field(1, std::string(200, 'n')).field(14, 1)));
  EXPECT_NE(c.error.find("malformed NCMD"), std::string::npos) << c.error;
  Raw many;
  for (int i = 0; i < 129; ++i) many.field(2, Raw{}.field(2, 5).field(14, 1).b);
  c = EdgeNode::parse_ncmd(many.b);
  EXPECT_NE(c.error.find("malformed NCMD"), std::string::npos) << c.error;
}

TEST(SparkplugNcmd, GarbageIsAnErrorNeverACrash) {
  // Every cut of a good NCMD is refused.
  const Bytes good = ncmd(rebirth_by_name(true));
  ASSERT_TRUE(EdgeNode::parse_ncmd(good).rebirth);
  for (std::size_t n = 0; n < good.size(); ++n) {
    auto c = EdgeNode::parse_ncmd(ByteView(good.data(), n));
    EXPECT_NE(c.error, "") << n;
    EXPECT_FALSE(c.rebirth) << n;
  }
  // Random bytes, and a good NCMD with random bytes flipped: whatever comes
  // back, an error always comes without a rebirth.
  std::mt19937 rng(20240917);
  int errors = 0;
  for (int i = 0; i < 5000; ++i) {
    Bytes b;
    if (i % 2) {
      b.resize(rng() % 300);
      for (auto& x : b) x = static_cast<std::uint8_t>(rng());
    } else {
      b = good;
      for (int k = 0; k < 3; ++k) b[rng() % b.size()] = static_cast<std::uint8_t>(rng());
    }
    auto c = EdgeNode::parse_ncmd(b);
    if (!c.error.empty()) {
      ++errors;
      EXPECT_FALSE(c.rebirth);
    }
  }
  EXPECT_GT(errors, 2500);  // random bytes are nearly never a payload
}

}  // namespace
}  // namespace kairos::gw::sparkplug

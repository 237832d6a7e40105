#include "gateway/sparkplug/edge.h"

#include <pb_decode.h>
#include <pb_encode.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <memory>
#include <set>
#include <stdexcept>
#include <string_view>
#include <utility>

#include "common/core/utf8.h"
#include "sparkplug_b.pb.h"

namespace kairos::gw::sparkplug {

namespace {

using PbPayload = org_eclipse_tahu_protobuf_Payload;
using PbMetric = org_eclipse_tahu_protobuf_Payload_Metric;

constexpr std::uint32_t kInt32 = org_eclipse_tahu_protobuf_DataType_Int32;
constexpr std::uint32_t kUInt64 = org_eclipse_tahu_protobuf_DataType_UInt64;
constexpr std::uint32_t kDouble = org_eclipse_tahu_protobuf_DataType_Double;
constexpr std::uint32_t kBoolean = org_eclipse_tahu_protobuf_DataType_Boolean;
constexpr std::uint32_t kString = org_eclipse_tahu_protobuf_DataType_String;

constexpr std::string_view kRebirth = "Node Control/Rebirth";
// Fixed, so that a host's NCMD by alias is understood without this session's state.
constexpr std::uint64_t kRebirthAlias = 1;
// A device's first metrics: its facts, which do not change while it is born.
constexpr std::size_t kFactMetrics = 3;
// The longest value of a String metric, in bytes (sparkplug_b.options).
constexpr std::size_t kMaxString = sizeof(PbMetric{}.value.string_value) - 1;
constexpr std::size_t kMaxName = sizeof(PbMetric{}.name) - 1;
constexpr std::size_t kMaxMetrics = sizeof(PbPayload{}.metrics) / sizeof(PbMetric);

struct Shape {
  const char* name;
  std::uint32_t datatype;
  const char* unit;
};
// The edge node's own metrics after bdSeq, in the order of mesh_values().
constexpr std::array<Shape, 8> kNodeMetrics{{
    {"Node Control/Rebirth", kBoolean, nullptr},
    {"Mesh/Phase", kDouble, "deg"},
    {"Mesh/Coherence", kDouble, nullptr},
    {"Mesh/Agreement", kDouble, nullptr},
    {"Mesh/Unified", kBoolean, nullptr},
    {"Mesh/Mode", kString, nullptr},
    {"Mesh/Nodes Online", kInt32, nullptr},
    {"Mesh/Nodes Known", kInt32, nullptr},
}};

// A reading is absent, never a stale or invented value: NaN and infinities are null.
Value number(double v) { return std::isfinite(v) ? Value{v} : Value{}; }
Value number(const std::optional<double>& v) { return v ? number(*v) : Value{}; }
// A String value over the bound is cut at a character boundary (states and modes never are).
Value text(std::string_view s) { return std::string(s.substr(0, utf8_cut(s, kMaxString))); }
Value count(std::uint32_t n) { return static_cast<std::int64_t>(std::min<std::uint32_t>(n, INT32_MAX)); }

std::array<Value, kNodeMetrics.size()> mesh_values(const MeshState& m) {
  return {false,     number(m.phase_deg), number(m.coherence), number(m.agreement),
          m.unified, text(m.mode),        count(m.online),     count(m.known)};
}

// A device's current reading of one metric, by its name: Status,
// Impedance, Reliability, or Inputs/<input>/Value|Phase|Coherence; null
// for an input the state does not hold. No map is built and no name
// composed: a message costs the names' comparisons alone.
Value reading(const DeviceState& s, std::string_view metric) {
  if (metric == "Status") return text(s.status);
  if (metric == "Impedance") return number(s.impedance);
  if (metric == "Reliability") return number(s.reliability);
  constexpr std::string_view kPrefix = "Inputs/";
  if (!metric.starts_with(kPrefix)) return {};
  const auto slash = metric.rfind('/');
  const std::string_view input = metric.substr(kPrefix.size(), slash - kPrefix.size());
  const std::string_view part = metric.substr(slash + 1);
  for (const auto& in : s.inputs) {
    if (in.name != input) continue;
    if (part == "Value") return number(in.value);
    if (part == "Phase") return number(in.phase_deg);
    if (part == "Coherence") return number(in.coherence);
  }
  return {};
}

// The metrics of a device after its facts, in the order of its DBIRTH.
struct Reading {
  std::string name;
  std::uint32_t datatype;
  const char* unit;
};
std::vector<Reading> reading_metrics(const DeviceFacts& f) {
  std::vector<Reading> out{
      {"Status", kString, nullptr}, {"Impedance", kDouble, nullptr}, {"Reliability", kDouble, nullptr}};
  for (const auto& in : f.inputs) {
    out.push_back({"Inputs/" + in + "/Value", kDouble, nullptr});
    out.push_back({"Inputs/" + in + "/Phase", kDouble, "deg"});
    out.push_back({"Inputs/" + in + "/Coherence", kDouble, nullptr});
  }
  return out;
}

// Sparkplug ids (group, edge node, device) are topic levels: UTF-8, and none
// of + # / (4.1.1), nor NUL (MQTT 3.1.1, 4.7.3).
std::string id_error(std::string_view what, std::string_view id) {
  if (id.empty()) return std::string(what) + " is empty";
  const std::string quoted = std::string(what) + " \"" + log_safe(id) + "\" ";
  if (!valid_utf8(id)) return quoted + "is not UTF-8";
  for (char c : {'+', '#', '/', '\0'})
    if (id.find(c) != std::string_view::npos)
      return quoted + "contains '" + (c ? std::string(1, c) : std::string("\\0")) + "'";
  return {};
}

template <std::size_t N>
void copy(char (&dst)[N], std::string_view s) {
  const std::size_t n = utf8_cut(s, N - 1);
  std::memcpy(dst, s.data(), n);
  dst[n] = '\0';
}

// A payload being written, on the heap: with room for 128 metrics it is about 53 KB.
// Only what is written is set: the header fields here, each metric as it is
// added (from Metric_init_zero); the metrics past metrics_count are never
// read, so the 53 KB are not cleared for every message.
class Writer {
 public:
  Writer(std::optional<std::uint64_t> timestamp_ms, std::optional<std::uint64_t> seq)
      : p_(new PbPayload) {
    p_->metrics_count = 0;
    p_->has_uuid = false;
    p_->uuid[0] = '\0';
    p_->extensions = nullptr;
    p_->has_timestamp = timestamp_ms.has_value();
    p_->timestamp = timestamp_ms.value_or(0);
    p_->has_seq = seq.has_value();
    p_->seq = seq.value_or(0);
  }

  // One metric with value v: in a birth with its name, datatype and unit;
  // elsewhere by its alias alone (a metric without alias, bdSeq, by name).
  PbMetric& add(const Metric& m, const Value& v, bool birth) {
    if (p_->metrics_count >= kMaxMetrics) throw std::length_error("sparkplug: more metrics than a payload holds");
    PbMetric& out = p_->metrics[p_->metrics_count++];
    out = org_eclipse_tahu_protobuf_Payload_Metric_init_zero;
    if (birth || m.alias == 0) {
      out.has_name = true;
      copy(out.name, m.name);
    }
    if (m.alias != 0) {
      out.has_alias = true;
      out.alias = m.alias;
    }
    if (birth) {
      out.has_datatype = true;
      out.datatype = m.datatype;
      if (m.unit) {
        out.has_properties = true;
        auto& props = out.properties;
        props.keys_count = props.values_count = 1;
        copy(props.keys[0], "engUnit");
        props.values[0].has_type = true;
        props.values[0].type = kString;
        props.values[0].which_value = org_eclipse_tahu_protobuf_Payload_PropertyValue_string_value_tag;
        copy(props.values[0].value.string_value, m.unit);
      }
    }
    set_value(out, m.datatype, v);
    return out;
  }

  Bytes finish() const {
    std::size_t size = 0;
    if (!pb_get_encoded_size(&size, org_eclipse_tahu_protobuf_Payload_fields, p_.get()))
      throw std::runtime_error("sparkplug: payload size: unencodable");
    Bytes buf(size);
    pb_ostream_t out = pb_ostream_from_buffer(buf.data(), buf.size());
    if (!pb_encode(&out, org_eclipse_tahu_protobuf_Payload_fields, p_.get()))
      throw std::runtime_error(std::string("sparkplug: payload encode failed: ") + PB_GET_ERROR(&out));
    return buf;
  }

 private:
  // The oneof member of the datatype (6.4.16): Int32 in int_value (two's
  // complement), UInt64 in long_value; a null value sets is_null and no member.
  static void set_value(PbMetric& out, std::uint32_t datatype, const Value& v) {
    if (std::holds_alternative<std::monostate>(v)) {
      out.has_is_null = true;
      out.is_null = true;
    } else if (const auto* d = std::get_if<double>(&v)) {
      out.which_value = org_eclipse_tahu_protobuf_Payload_Metric_double_value_tag;
      out.value.double_value = *d;
    } else if (const auto* b = std::get_if<bool>(&v)) {
      out.which_value = org_eclipse_tahu_protobuf_Payload_Metric_boolean_value_tag;
      out.value.boolean_value = *b;
    } else if (const auto* s = std::get_if<std::string>(&v)) {
      out.which_value = org_eclipse_tahu_protobuf_Payload_Metric_string_value_tag;
      copy(out.value.string_value, *s);
    } else if (datatype == kInt32) {
      out.which_value = org_eclipse_tahu_protobuf_Payload_Metric_int_value_tag;
      out.value.int_value = static_cast<std::uint32_t>(static_cast<std::int32_t>(std::get<std::int64_t>(v)));
    } else {
      out.which_value = org_eclipse_tahu_protobuf_Payload_Metric_long_value_tag;
      out.value.long_value = static_cast<std::uint64_t>(std::get<std::int64_t>(v));
    }
  }

  std::unique_ptr<PbPayload> p_;
};

Metric bd_seq_metric(std::uint8_t bd_seq) { return {"bdSeq", 0, kUInt64, nullptr, std::int64_t{bd_seq}}; }

}  // namespace

EdgeNode::EdgeNode(Settings s, std::uint8_t bd_seq)
    : settings_(std::move(s)), bd_seq_(bd_seq), next_alias_(kRebirthAlias + 1) {
  using Named = std::pair<const char*, const std::string*>;
  for (const auto& [what, id] : {Named{"group_id", &settings_.group_id}, Named{"edge_node", &settings_.edge_node}})
    if (auto e = id_error(std::string("sparkplug: ") + what, *id); !e.empty()) throw std::invalid_argument(e);
  for (const Shape& sh : kNodeMetrics) {
    const std::uint64_t alias = sh.name == kRebirth ? kRebirthAlias : alias_for("", sh.name);
    mesh_.push_back({sh.name, alias, sh.datatype, sh.unit, {}});
  }
}

std::string EdgeNode::topic(const char* type, const std::string& device) const {
  std::string t = "spBv1.0/" + settings_.group_id + "/" + type + "/" + settings_.edge_node;
  if (!device.empty()) t += "/" + device;
  return t;
}

std::string EdgeNode::ncmd_topic() const { return topic("NCMD"); }

std::uint64_t EdgeNode::next_seq() { return seq_++; }  // 255 wraps to 0

std::uint64_t EdgeNode::alias_for(const std::string& device, const std::string& metric) {
  // Device ids hold no '/', so the key is the device's and the metric's alone.
  auto [it, added] = aliases_.try_emplace(device + "/" + metric, next_alias_);
  if (added) ++next_alias_;
  return it->second;
}

Publication EdgeNode::death() const {
  Writer w(std::nullopt, std::nullopt);
  const Metric bd = bd_seq_metric(bd_seq_);
  w.add(bd, bd.value, true);
  return {topic("NDEATH"), w.finish(), 1, false};
}

Publication EdgeNode::birth(const MeshState& m, std::uint64_t now_ms) {
  seq_ = 0;
  born_ = true;
  devices_.clear();
  Writer w(now_ms, next_seq());
  const Metric bd = bd_seq_metric(bd_seq_);
  w.add(bd, bd.value, true);
  const auto values = mesh_values(m);
  for (std::size_t i = 0; i < mesh_.size(); ++i) {
    mesh_[i].value = values[i];
    w.add(mesh_[i], mesh_[i].value, true);
  }
  return {topic("NBIRTH"), w.finish(), 0, false};
}

std::optional<Publication> EdgeNode::node_data(const MeshState& m, std::uint64_t now_ms) {
  if (!born_) return std::nullopt;
  const auto values = mesh_values(m);
  std::vector<std::size_t> changed;
  for (std::size_t i = 0; i < mesh_.size(); ++i)
    if (values[i] != mesh_[i].value) changed.push_back(i);
  if (changed.empty()) return std::nullopt;
  Writer w(now_ms, next_seq());
  for (std::size_t i : changed) {
    mesh_[i].value = values[i];
    w.add(mesh_[i], mesh_[i].value, false);
  }
  return Publication{topic("NDATA"), w.finish(), 0, false};
}

std::string EdgeNode::refusal(const DeviceFacts& f) {
  if (auto e = id_error("device id", f.id); !e.empty()) return e;
  using Named = std::pair<const char*, const std::string*>;
  for (const auto& [what, s] :
       {Named{"board", &f.board}, Named{"firmware", &f.firmware}, Named{"cluster", &f.cluster}}) {
    if (!valid_utf8(*s)) return std::string(what) + " is not UTF-8";
    if (s->size() > kMaxString) return std::string(what) + " is over " + std::to_string(kMaxString) + " bytes";
  }
  // Facts, Status, Impedance, Reliability, then three per input.
  if (kFactMetrics + 3 + 3 * f.inputs.size() > kMaxMetrics)
    return std::to_string(f.inputs.size()) + " inputs: more metrics than a payload holds";
  std::set<std::string> seen;
  for (const auto& in : f.inputs) {
    if (in.empty() || !valid_utf8(in)) return "an input name is empty or not UTF-8";
    if (std::string("Inputs/" + in + "/Coherence").size() > kMaxName)
      return "input \"" + log_safe(in) + "\": its metric names are over " + std::to_string(kMaxName) + " bytes";
    if (!seen.insert(in).second) return "input \"" + log_safe(in) + "\" is listed twice";
  }
  return {};
}

std::optional<Publication> EdgeNode::device_birth(const DeviceFacts& f, const DeviceState& s, std::uint64_t now_ms) {
  if (!born_ || !refusal(f).empty()) return std::nullopt;
  std::vector<Metric> metrics;
  using Named = std::pair<const char*, const std::string*>;
  for (const auto& [name, value] : {Named{"Properties/Board", &f.board}, Named{"Properties/Firmware", &f.firmware},
                                    Named{"Properties/Cluster", &f.cluster}})
    metrics.push_back({name, alias_for(f.id, name), kString, nullptr, *value});
  for (const Reading& r : reading_metrics(f))
    metrics.push_back({r.name, alias_for(f.id, r.name), r.datatype, r.unit, reading(s, r.name)});
  Writer w(now_ms, next_seq());
  for (const auto& m : metrics) w.add(m, m.value, true);
  devices_[f.id] = std::move(metrics);
  return Publication{topic("DBIRTH", f.id), w.finish(), 0, false};
}

std::optional<Publication> EdgeNode::device_data(const std::string& id, const DeviceState& s, std::uint64_t now_ms,
                                                 bool historical, std::uint64_t sample_ms) {
  auto dev = devices_.find(id);
  if (dev == devices_.end()) return std::nullopt;
  auto& metrics = dev->second;
  // (metric, value) pairs to write: the readings after the facts.
  std::vector<std::pair<Metric*, Value>> out;
  for (std::size_t i = kFactMetrics; i < metrics.size(); ++i) {
    Value v = reading(s, metrics[i].name);
    const bool say = historical ? !std::holds_alternative<std::monostate>(v) : v != metrics[i].value;
    if (say) out.emplace_back(&metrics[i], std::move(v));
  }
  if (out.empty()) return std::nullopt;
  Writer w(now_ms, next_seq());
  for (auto& [m, v] : out) {
    PbMetric& pm = w.add(*m, v, false);
    pm.has_timestamp = true;
    pm.timestamp = sample_ms;
    if (historical) {
      pm.has_is_historical = true;
      pm.is_historical = true;
    } else {
      m->value = std::move(v);
    }
  }
  return Publication{topic("DDATA", id), w.finish(), 0, false};
}

std::optional<Publication> EdgeNode::device_death(const std::string& id, std::uint64_t now_ms) {
  if (devices_.erase(id) == 0) return std::nullopt;
  Writer w(now_ms, next_seq());
  return Publication{topic("DDEATH", id), w.finish(), 0, false};
}

Command EdgeNode::parse_ncmd(ByteView payload) {
  Command c;
  auto p = std::make_unique<PbPayload>();
  *p = org_eclipse_tahu_protobuf_Payload_init_zero;
  pb_istream_t in = pb_istream_from_buffer(payload.data(), payload.size());
  if (!pb_decode(&in, org_eclipse_tahu_protobuf_Payload_fields, p.get())) {
    c.error = std::string("malformed NCMD: ") + PB_GET_ERROR(&in);
    return c;
  }
  if (p->metrics_count == 0) {
    c.error = "NCMD carries no metric";
    return c;
  }
  bool rebirth = false;
  for (pb_size_t i = 0; i < p->metrics_count; ++i) {
    const PbMetric& m = p->metrics[i];
    // The name, when there is one, says which metric it is; else the alias.
    const bool is_rebirth = m.has_name ? m.name == kRebirth : m.has_alias && m.alias == kRebirthAlias;
    if (!is_rebirth) continue;
    if (m.has_datatype && m.datatype != kBoolean) {
      c.error = "NCMD: Node Control/Rebirth has datatype " + std::to_string(m.datatype) + ", not Boolean";
      return c;
    }
    if (m.which_value != org_eclipse_tahu_protobuf_Payload_Metric_boolean_value_tag || (m.has_is_null && m.is_null)) {
      c.error = "NCMD: Node Control/Rebirth carries no boolean value";
      return c;
    }
    rebirth = rebirth || m.value.boolean_value;
  }
  c.rebirth = rebirth;
  return c;
}

}  // namespace kairos::gw::sparkplug

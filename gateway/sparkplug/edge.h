#pragma once
// Sparkplug B bridge (Eclipse Sparkplug 3.0.0): the gateway is ONE edge node
// (edge_node_id = the gateway's id) and each Kairos node one of its devices.
// Nodes stay lean and only speak signed Kairos frames; the gateway speaks
// Sparkplug for them. Pure logic: what to publish for the mesh, a node and
// the gateway's own MQTT session, and what a host's NCMD asks; no MQTT here,
// time comes in as arguments (ms since the Unix epoch, UTC).
//
// Topics: spBv1.0/<group_id>/<TYPE>/<edge_node>[/<device>] (4.1).
// Every publication but NDEATH carries the edge node's next seq
// (0..255, wrapping; NBIRTH 0), so each must be published, in the order
// returned. QoS 0 and not retained, but NDEATH: QoS 1, the connection's Will.
//
// Metrics (every one with a datatype and an alias in its birth; data
// messages name a metric by its alias only):
//   NBIRTH  bdSeq (UInt64, no alias), Node Control/Rebirth (Boolean false),
//           Mesh/Phase (Double, engUnit deg), Mesh/Coherence, Mesh/Agreement
//           (Double, 0..1), Mesh/Unified (Boolean), Mesh/Mode (String),
//           Mesh/Nodes Online, Mesh/Nodes Known (Int32)
//   DBIRTH  Properties/Board, Properties/Firmware, Properties/Cluster (String),
//           Status (String), Impedance (Double, score 0..1000),
//           Reliability (Double, 0..1), and per input Inputs/<in>/Value,
//           Inputs/<in>/Phase (engUnit deg), Inputs/<in>/Coherence (Double)
// An absent or non-finite value travels as is_null. Counts are Int32, not
// UInt32: which oneof member carries a UInt32 is disputed (the
// specification says int_value; Tahu's codecs and Ignition use long_value).
// Outputs are not metrics: their state is not reported, and DCMD is not
// served.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "common/core/bytes.h"
#include "gateway/bridges/node_facts.h"

namespace kairos::gw::sparkplug {

struct Settings {
  std::string group_id;   // Sparkplug group: UTF-8, none of + # /
  std::string edge_node;  // the gateway's id, same rules
};

struct Publication {
  std::string topic;
  Bytes payload;  // a Sparkplug B Payload (proto/sparkplug_b.proto)
  int qos = 0;
  bool retained = false;
};

// An input's latest reading, and what a node said in its birth (fixed while
// its session lasts; its outputs are not published, see above): the
// bridges' common view of a node (gateway/bridges/node_facts.h).
using InputState = gw::InputReading;
using DeviceFacts = gw::NodeFacts;

struct DeviceState {
  std::string status;              // COMPLIANT, PROCESSING, ..., OFFLINE
  std::vector<InputState> inputs;  // by name; one not in the device's birth is left out
  double impedance = 0;            // score 0..1000 (docs/DESIGN.md 5.2); NaN: unknown
  double reliability = 0;          // 0..1; NaN: unknown
};

struct MeshState {
  double phase_deg = 0;  // degrees
  double coherence = 0;  // 0..1
  double agreement = 0;  // 0..1
  bool unified = false;
  std::string mode;  // FULL, DEGRADED_LIGHT, ...
  std::uint32_t online = 0;
  std::uint32_t known = 0;
};

// What a host's NCMD asks.
struct Command {
  bool rebirth = false;  // Node Control/Rebirth (by name or alias) set true
  std::string error;     // non-empty: the payload was refused, and nothing is asked
};

// A metric's value: none (null), a Double, a Boolean, an Int32 or UInt64
// (as std::int64_t), a String.
using Value = std::variant<std::monostate, double, bool, std::int64_t, std::string>;

// One metric as the edge node keeps it between messages.
struct Metric {
  std::string name;
  std::uint64_t alias = 0;
  std::uint32_t datatype = 0;  // org_eclipse_tahu_protobuf_DataType
  const char* unit = nullptr;  // its engUnit property, or none
  Value value;                 // the last value published as current
};

class EdgeNode {
 public:
  // bd_seq: this MQTT session's birth/death sequence (the caller persists it
  // and adds one per connect). Throws std::invalid_argument on ids that would
  // make an invalid topic.
  EdgeNode(Settings s, std::uint8_t bd_seq);

  // NDEATH, the connection's Will: bdSeq only, no seq, no timestamp (it is
  // written at connect, long before it is sent). QoS 1.
  Publication death() const;
  // NBIRTH, seq 0: the node's metrics. A rebirth (a host's NCMD) calls it
  // again: seq restarts at 0, every device must be born again.
  Publication birth(const MeshState& m, std::uint64_t now_ms);
  // NDATA: the mesh metrics changed since the last NBIRTH/NDATA; nullopt
  // when none did or before birth().
  std::optional<Publication> node_data(const MeshState& m, std::uint64_t now_ms);

  // Why a node cannot be a device (its id would make an invalid topic, a
  // name or string is over proto/sparkplug_b.options's bounds, an input is
  // listed twice); empty when it can.
  static std::string refusal(const DeviceFacts& f);
  // DBIRTH: every metric of the device with its name, alias, datatype and
  // value. Nullopt when refusal(f) says why, or before birth(). An alias,
  // once given to a device's metric, stays its own for this session.
  std::optional<Publication> device_birth(const DeviceFacts& f, const DeviceState& s, std::uint64_t now_ms);
  // DDATA, metrics by alias, each timestamped sample_ms (when the node took
  // the sample). Current (historical false): only the metrics changed since
  // the device's last DBIRTH/DDATA. Historical (the node's backlog replayed):
  // every metric that has a value, marked is_historical, and the current
  // values the next DDATA compares with stay as they are. Nullopt when
  // nothing is to be said or the device has not been born since birth().
  std::optional<Publication> device_data(const std::string& id, const DeviceState& s, std::uint64_t now_ms,
                                         bool historical, std::uint64_t sample_ms);
  // DDEATH (a node gone offline): forgets the device, so that its next
  // DBIRTH is full. Nullopt when the device is not born.
  std::optional<Publication> device_death(const std::string& id, std::uint64_t now_ms);

  // The topic a host's NCMD for this edge node comes on.
  std::string ncmd_topic() const;
  // An NCMD payload as received: any malformed payload gives an error.
  // Metrics other than Node Control/Rebirth are ignored.
  static Command parse_ncmd(ByteView payload);

  std::uint8_t bd_seq() const { return bd_seq_; }

 private:
  std::string topic(const char* type, const std::string& device = "") const;
  std::uint64_t next_seq();
  std::uint64_t alias_for(const std::string& device, const std::string& metric);

  Settings settings_;
  std::uint8_t bd_seq_;
  std::uint8_t seq_ = 0;  // the next message's
  bool born_ = false;     // NBIRTH sent on this session
  std::vector<Metric> mesh_;
  std::map<std::string, std::vector<Metric>> devices_;  // born since the last NBIRTH
  std::map<std::string, std::uint64_t> aliases_;        // "<device>/<metric>": this session's
  std::uint64_t next_alias_;
};

}  // namespace kairos::gw::sparkplug

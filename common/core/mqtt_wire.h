#pragma once
// The MQTT v5 packets a lean client needs (MQTT 5.0, OASIS standard,
// sections 2 and 3): built and read in place, without the network. Used by
// MqttReader (common/io/mqtt_reader.h), the gateway's connection for node
// frames (docs/DESIGN.md 4, "The ingest connection").
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kairos::mqttw {

enum PacketType : std::uint8_t {
  kConnect = 1, kConnack = 2, kPublish = 3, kPuback = 4, kPubrec = 5, kPubrel = 6, kPubcomp = 7,
  kSubscribe = 8, kSuback = 9, kUnsubscribe = 10, kUnsuback = 11, kPingreq = 12, kPingresp = 13,
  kDisconnect = 14, kAuth = 15,
};

// MQTT v5 reason codes the reader sends or looks for.
inline constexpr std::uint8_t kReasonNormal = 0x00;
inline constexpr std::uint8_t kReasonMalformed = 0x81;
inline constexpr std::uint8_t kReasonProtocolError = 0x82;
inline constexpr std::uint8_t kReasonSessionTakenOver = 0x8E;
inline constexpr std::uint8_t kReasonPacketTooLarge = 0x95;

struct ConnectParams {
  std::string client_id;
  std::string username;  // "" for none
  std::string password;  // "" for none
  std::uint16_t keepalive_s = 10;
  std::uint32_t max_packet_size = 0;  // 0: not sent (no limit)
};

// CONNECT with Clean Start and no session kept after the connection.
std::string connect_packet(const ConnectParams& p);
// One SUBSCRIBE for every filter (its maximum QoS, 0 or 1).
std::string subscribe_packet(std::uint16_t packet_id, const std::vector<std::pair<std::string, int>>& filters);
std::string puback_packet(std::uint16_t packet_id);
// A PUBLISH at QoS 0 or 1 without properties. At QoS 1 its packet id sits
// at publish_id_at(topic) and is set when the packet is sent (set_publish_id).
std::string publish_packet(std::string_view topic, std::span<const std::uint8_t> payload, int qos, bool retain);
std::size_t publish_id_at(std::string_view topic, std::size_t payload_size);
void set_publish_id(std::string& packet, std::size_t at, std::uint16_t packet_id);
std::string pingreq_packet();
std::string disconnect_packet(std::uint8_t reason);

// A whole packet at the front of a buffer.
struct Frame {
  enum class Status { need_more, ok, malformed, too_large };
  Status status = Status::need_more;
  std::uint8_t type = 0;   // the first byte's high nibble
  std::uint8_t flags = 0;  // its low nibble
  std::span<const std::uint8_t> body;  // the variable header and payload
  std::size_t size = 0;    // bytes the packet takes, header included
  std::size_t wanted = 0;  // need_more/too_large: the whole packet's size when known, else 0
};
// Reads the packet at the front of `in`; a packet larger than max_size
// (header included) is too_large, a remaining length of more than four
// bytes malformed.
Frame next_frame(std::span<const std::uint8_t> in, std::size_t max_size);

struct Publish {
  std::string_view topic;
  int qos = 0;
  bool retain = false;
  bool dup = false;
  std::uint16_t packet_id = 0;  // QoS 1
  std::string_view response_topic;
  std::span<const std::uint8_t> correlation;
  std::span<const std::uint8_t> payload;
};
// A PUBLISH's header and properties; nullopt with `why` when malformed
// (QoS 3, QoS 2 which a subscriber at QoS 1 never gets, an empty topic or a
// topic alias, which this client never allows, a property PUBLISH may not carry).
std::optional<Publish> read_publish(const Frame& f, std::string& why);

struct Connack {
  bool session_present = false;
  std::uint8_t reason = 0;
  std::uint16_t server_keepalive_s = 0;  // 0: not given (the client's own stands)
  std::uint32_t max_packet_size = 0;     // the largest packet the broker takes, 0: not given
  std::uint16_t receive_max = 65535;     // QoS 1 publishes it takes unacknowledged at once
};
std::optional<Connack> read_connack(const Frame& f, std::string& why);

struct Suback {
  std::uint16_t packet_id = 0;
  std::vector<std::uint8_t> reasons;  // one per filter: the QoS granted, or >= 0x80 refused
};
std::optional<Suback> read_suback(const Frame& f, std::string& why);

struct Puback {
  std::uint16_t packet_id = 0;
  std::uint8_t reason = 0;  // >= 0x80: the broker did not take the message
};
std::optional<Puback> read_puback(const Frame& f, std::string& why);

// A DISCONNECT's reason (0 when the packet carries none).
std::optional<std::uint8_t> read_disconnect(const Frame& f, std::string& why);

// What an MQTT v5 reason code means, for a log line ("session taken over").
std::string_view reason_name(std::uint8_t reason);

}  // namespace kairos::mqttw

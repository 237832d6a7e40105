#include "common/core/mqtt_wire.h"

namespace kairos::mqttw {

namespace {

void put_u16(std::string& out, std::uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xFF));
}

void put_u32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xFF));
}

void put_varint(std::string& out, std::size_t v) {
  do {
    std::uint8_t b = v % 128;
    v /= 128;
    if (v > 0) b |= 0x80;
    out.push_back(static_cast<char>(b));
  } while (v > 0);
}

void put_str(std::string& out, std::string_view s) {
  put_u16(out, static_cast<std::uint16_t>(s.size()));
  out.append(s);
}

// The fixed header in front of a body.
std::string packet(std::uint8_t first, const std::string& body) {
  std::string out(1, static_cast<char>(first));
  put_varint(out, body.size());
  return out + body;
}

// Reads the fields of a packet's body, front to back; any read past its
// end leaves it failed, and every later read returns zeros.
class Reader {
 public:
  explicit Reader(std::span<const std::uint8_t> b) : b_(b) {}
  bool ok() const { return ok_; }
  std::size_t left() const { return ok_ ? b_.size() - pos_ : 0; }
  std::uint8_t u8() {
    if (!need(1)) return 0;
    return b_[pos_++];
  }
  std::uint16_t u16() {
    if (!need(2)) return 0;
    std::uint16_t v = static_cast<std::uint16_t>(b_[pos_] << 8 | b_[pos_ + 1]);
    pos_ += 2;
    return v;
  }
  std::uint32_t u32() {
    std::uint32_t hi = u16();
    return hi << 16 | u16();
  }
  std::uint32_t varint() {
    std::uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      std::uint8_t b = u8();
      v |= static_cast<std::uint32_t>(b & 0x7F) << (7 * i);
      if (!(b & 0x80)) return v;
    }
    ok_ = false;
    return 0;
  }
  std::span<const std::uint8_t> bytes(std::size_t n) {
    if (!need(n)) return {};
    auto s = b_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  std::span<const std::uint8_t> sized() { return bytes(u16()); }
  std::string_view str() {
    auto s = sized();
    return {reinterpret_cast<const char*>(s.data()), s.size()};
  }
  std::span<const std::uint8_t> rest() { return bytes(left()); }
  void fail() { ok_ = false; }

 private:
  bool need(std::size_t n) {
    if (ok_ && b_.size() - pos_ >= n) return true;
    ok_ = false;
    return false;
  }
  std::span<const std::uint8_t> b_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

// A property's value, whatever its type (MQTT 5.0 section 2.2.2.2).
struct Property {
  std::uint8_t id = 0;
  std::uint32_t number = 0;               // byte, two- and four-byte integers, varint
  std::span<const std::uint8_t> data;     // strings and binary data
};

// Reads one property; false (the reader failed) for an identifier MQTT v5 does not define.
bool read_property(Reader& r, Property& p) {
  p = {};
  p.id = static_cast<std::uint8_t>(r.varint());
  switch (p.id) {
    case 0x01: case 0x17: case 0x19: case 0x24: case 0x25: case 0x28: case 0x29: case 0x2A:
      p.number = r.u8(); break;
    case 0x13: case 0x21: case 0x22: case 0x23: p.number = r.u16(); break;
    case 0x02: case 0x11: case 0x18: case 0x27: p.number = r.u32(); break;
    case 0x0B: p.number = r.varint(); break;
    case 0x03: case 0x08: case 0x09: case 0x12: case 0x15: case 0x16: case 0x1A: case 0x1C: case 0x1F:
      p.data = r.sized(); break;
    case 0x26: r.sized(); p.data = r.sized(); break;  // user property: name, value
    default: r.fail();
  }
  return r.ok();
}

// Walks a property block, calling each(property) until it returns false.
template <typename Each>
bool properties(Reader& r, std::string& why, Each each) {
  std::uint32_t len = r.varint();
  auto block = r.bytes(len);
  if (!r.ok()) {
    why = "properties longer than the packet";
    return false;
  }
  Reader pr(block);
  Property p;
  while (pr.left() > 0) {
    if (!read_property(pr, p)) {
      why = "a property that MQTT v5 does not define, or cut short";
      return false;
    }
    if (!each(p)) return false;
  }
  return true;
}

}  // namespace

std::string connect_packet(const ConnectParams& p) {
  std::string body;
  put_str(body, "MQTT");
  body.push_back(5);  // protocol version
  std::uint8_t flags = 0x02;  // Clean Start
  if (!p.username.empty()) flags |= 0x80;
  if (!p.password.empty()) flags |= 0x40;
  body.push_back(static_cast<char>(flags));
  put_u16(body, p.keepalive_s);
  std::string props;
  if (p.max_packet_size > 0) {
    props.push_back(0x27);
    put_u32(props, p.max_packet_size);
  }
  put_varint(body, props.size());
  body += props;
  put_str(body, p.client_id);
  if (!p.username.empty()) put_str(body, p.username);
  if (!p.password.empty()) put_str(body, p.password);
  return packet(kConnect << 4, body);
}

std::string subscribe_packet(std::uint16_t packet_id, const std::vector<std::pair<std::string, int>>& filters) {
  std::string body;
  put_u16(body, packet_id);
  body.push_back(0);  // no properties
  for (const auto& [filter, qos] : filters) {
    put_str(body, filter);
    body.push_back(static_cast<char>(qos & 0x03));
  }
  return packet(kSubscribe << 4 | 0x02, body);
}

std::string puback_packet(std::uint16_t packet_id) {
  std::string body;
  put_u16(body, packet_id);  // reason 0 and no properties: left out (MQTT 5.0 section 3.4.2.1)
  return packet(kPuback << 4, body);
}

std::size_t publish_id_at(std::string_view topic, std::size_t payload_size) {
  const std::size_t remaining = 2 + topic.size() + 2 + 1 + payload_size;
  std::size_t header = 2;
  for (std::size_t v = remaining; v >= 128; v /= 128) ++header;
  return header + 2 + topic.size();
}

std::string publish_packet(std::string_view topic, std::span<const std::uint8_t> payload, int qos, bool retain) {
  std::string out;
  const std::size_t remaining = 2 + topic.size() + (qos ? 2 : 0) + 1 + payload.size();
  out.reserve(remaining + 5);
  out.push_back(static_cast<char>(kPublish << 4 | (qos ? 0x02 : 0) | (retain ? 0x01 : 0)));
  put_varint(out, remaining);
  put_str(out, topic);
  if (qos) put_u16(out, 0);  // set when sent
  out.push_back(0);          // no properties
  out.append(reinterpret_cast<const char*>(payload.data()), payload.size());
  return out;
}

void set_publish_id(std::string& packet, std::size_t at, std::uint16_t packet_id) {
  packet[at] = static_cast<char>(packet_id >> 8);
  packet[at + 1] = static_cast<char>(packet_id & 0xff);
}

std::string pingreq_packet() { return std::string{static_cast<char>(kPingreq << 4), 0}; }

std::string disconnect_packet(std::uint8_t reason) {
  if (reason == kReasonNormal) return std::string{static_cast<char>(kDisconnect << 4), 0};
  return packet(kDisconnect << 4, std::string{static_cast<char>(reason), 0});
}

Frame next_frame(std::span<const std::uint8_t> in, std::size_t max_size) {
  Frame f;
  if (in.empty()) return f;
  std::size_t len = 0, i = 1;
  for (;; ++i) {
    if (i > 4) {
      f.status = Frame::Status::malformed;
      return f;
    }
    if (i >= in.size()) return f;  // need_more
    len |= static_cast<std::size_t>(in[i] & 0x7F) << (7 * (i - 1));
    if (!(in[i] & 0x80)) break;
  }
  f.type = in[0] >> 4;
  f.flags = in[0] & 0x0F;
  f.wanted = i + 1 + len;
  if (f.wanted > max_size) {
    f.status = Frame::Status::too_large;
    return f;
  }
  if (in.size() < f.wanted) return f;  // need_more
  f.status = Frame::Status::ok;
  f.size = f.wanted;
  f.body = in.subspan(i + 1, len);
  return f;
}

std::optional<Publish> read_publish(const Frame& f, std::string& why) {
  Publish p;
  p.qos = (f.flags >> 1) & 0x03;
  p.retain = f.flags & 0x01;
  p.dup = f.flags & 0x08;
  if (p.qos == 3) {
    why = "PUBLISH with QoS 3";
    return std::nullopt;
  }
  if (p.qos == 2) {
    why = "PUBLISH with QoS 2 on a subscription of QoS 1 at most";
    return std::nullopt;
  }
  Reader r(f.body);
  p.topic = r.str();
  if (p.qos > 0) p.packet_id = r.u16();
  if (!r.ok()) {
    why = "PUBLISH cut short in its header";
    return std::nullopt;
  }
  if (p.topic.empty()) {
    why = "PUBLISH with an empty topic (a topic alias, which this client never allows)";
    return std::nullopt;
  }
  if (p.qos > 0 && p.packet_id == 0) {
    why = "PUBLISH at QoS 1 with packet id 0";
    return std::nullopt;
  }
  bool good = properties(r, why, [&](const Property& prop) {
    switch (prop.id) {
      case 0x08: p.response_topic = {reinterpret_cast<const char*>(prop.data.data()), prop.data.size()}; return true;
      case 0x09: p.correlation = prop.data; return true;
      case 0x01: case 0x02: case 0x03: case 0x0B: case 0x26: return true;
      default:
        why = prop.id == 0x23 ? "PUBLISH with a topic alias, which this client never allows"
                              : "PUBLISH with property " + std::to_string(prop.id) + ", which PUBLISH may not carry";
        return false;
    }
  });
  if (!good) return std::nullopt;
  p.payload = r.rest();
  return p;
}

std::optional<Connack> read_connack(const Frame& f, std::string& why) {
  Connack c;
  Reader r(f.body);
  std::uint8_t ack = r.u8();
  c.reason = r.u8();
  if (!r.ok() || (ack & 0xFE)) {
    why = "CONNACK cut short or with reserved flags set";
    return std::nullopt;
  }
  c.session_present = ack & 0x01;
  if (r.left() == 0) return c;  // a refusal may stop at its reason code
  bool good = properties(r, why, [&](const Property& p) {
    if (p.id == 0x13) c.server_keepalive_s = static_cast<std::uint16_t>(p.number);
    if (p.id == 0x27) c.max_packet_size = p.number;
    if (p.id == 0x21) {
      if (p.number == 0) {
        why = "CONNACK with a Receive Maximum of 0";
        return false;
      }
      c.receive_max = static_cast<std::uint16_t>(p.number);
    }
    return true;
  });
  if (!good) return std::nullopt;
  return c;
}

std::optional<Suback> read_suback(const Frame& f, std::string& why) {
  Suback s;
  Reader r(f.body);
  s.packet_id = r.u16();
  if (!r.ok() || !properties(r, why, [](const Property&) { return true; })) {
    if (why.empty()) why = "SUBACK cut short";
    return std::nullopt;
  }
  auto codes = r.rest();
  s.reasons.assign(codes.begin(), codes.end());
  return s;
}

std::optional<Puback> read_puback(const Frame& f, std::string& why) {
  Puback a;
  Reader r(f.body);
  a.packet_id = r.u16();
  if (r.ok() && r.left() > 0) a.reason = r.u8();
  if (!r.ok() || a.packet_id == 0 || (r.left() > 0 && !properties(r, why, [](const Property&) { return true; }))) {
    if (why.empty()) why = "PUBACK cut short or without a packet id";
    return std::nullopt;
  }
  return a;
}

std::optional<std::uint8_t> read_disconnect(const Frame& f, std::string& why) {
  Reader r(f.body);
  if (r.left() == 0) return kReasonNormal;
  std::uint8_t reason = r.u8();
  if (r.left() > 0 && !properties(r, why, [](const Property&) { return true; })) return std::nullopt;
  return reason;
}

std::string_view reason_name(std::uint8_t reason) {
  switch (reason) {
    case 0x00: return "normal";
    case 0x04: return "disconnect with Will";
    case 0x80: return "unspecified error";
    case 0x81: return "malformed packet";
    case 0x82: return "protocol error";
    case 0x83: return "implementation specific error";
    case 0x87: return "not authorized";
    case 0x89: return "server busy";
    case 0x8B: return "server shutting down";
    case 0x8D: return "keep alive timeout";
    case 0x8E: return "session taken over";
    case 0x8F: return "topic filter invalid";
    case 0x93: return "receive maximum exceeded";
    case 0x95: return "packet too large";
    case 0x97: return "quota exceeded";
    case 0x98: return "administrative action";
    case 0x9C: return "use another server";
    case 0x9D: return "server moved";
    default: return "reason code";
  }
}

}  // namespace kairos::mqttw

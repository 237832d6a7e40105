// libFuzzer target for the ingest connection's packet reader
// (common/core/mqtt_wire.h; docs/DESIGN.md 4, "The ingest connection"): any
// bytes as what a broker sends, read packet after packet as the reader does.
// Invariants: no crash, no sanitizer report; a whole packet lies within the
// bytes held and takes its header's length, and the next one starts after
// it; a packet over the size limit is refused before its body is needed; a
// PUBLISH read has a topic, QoS 0 or 1, a packet id exactly at QoS 1, and
// its topic, properties and payload lie within its body, the payload at its
// end; a CONNACK's, SUBACK's and DISCONNECT's fields lie within theirs.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>

#include "common/core/mqtt_wire.h"

using namespace kairos::mqttw;

namespace {

void require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "INVARIANT BROKEN: %s\n", what);
  std::abort();
}

bool within(std::span<const std::uint8_t> part, std::span<const std::uint8_t> whole) {
  if (part.empty()) return true;
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::uint8_t> in(data, size);
  // The first byte picks the size limit, as a connection's max_packet_size would.
  const std::size_t limit = size > 0 ? 16 + (static_cast<std::size_t>(data[0]) << 4) : 64;
  std::size_t off = size > 0 ? 1 : 0;
  while (off < size) {
    Frame f = next_frame(in.subspan(off), limit);
    if (f.status == Frame::Status::need_more) {
      require(f.wanted == 0 || f.wanted > size - off, "need_more for a packet that is all there");
      break;
    }
    if (f.status == Frame::Status::too_large) {
      require(f.wanted > limit, "too_large for a packet within the limit");
      break;
    }
    if (f.status == Frame::Status::malformed) break;
    require(f.size >= 2 && f.size <= size - off && f.size <= limit, "a packet's size out of what is held");
    require(f.size == f.wanted, "size and wanted differ for a whole packet");
    require(f.body.size() + 2 <= f.size && f.body.data() + f.body.size() == data + off + f.size,
            "a body not at the end of its packet");
    std::string why;
    switch (f.type) {
      case kPublish:
        if (auto p = read_publish(f, why)) {
          require(!p->topic.empty(), "a PUBLISH without a topic");
          require(p->qos == 0 || p->qos == 1, "a PUBLISH read at QoS 2 or 3");
          require((p->qos == 1) == (p->packet_id != 0), "a packet id without QoS 1, or QoS 1 without one");
          std::span<const std::uint8_t> topic(reinterpret_cast<const std::uint8_t*>(p->topic.data()), p->topic.size());
          std::span<const std::uint8_t> resp(reinterpret_cast<const std::uint8_t*>(p->response_topic.data()),
                                             p->response_topic.size());
          require(within(topic, f.body) && within(resp, f.body) && within(p->correlation, f.body) &&
                      within(p->payload, f.body),
                  "a PUBLISH field outside its body");
          require(p->payload.data() + p->payload.size() == f.body.data() + f.body.size() || p->payload.empty(),
                  "a payload that does not end the packet");
        } else {
          require(!why.empty(), "a PUBLISH refused without a reason");
        }
        break;
      case kConnack:
        if (auto c = read_connack(f, why)) {
          require(f.body.size() >= 2, "a CONNACK read from less than 2 bytes");
          require(c->receive_max != 0, "a Receive Maximum of 0 taken");
        } else {
          require(!why.empty(), "a CONNACK refused without a reason");
        }
        break;
      case kPuback:
        if (auto a = read_puback(f, why)) require(a->packet_id != 0 && f.body.size() >= 2, "a PUBACK without its id");
        else require(!why.empty(), "a PUBACK refused without a reason");
        break;
      case kSuback:
        if (auto s = read_suback(f, why)) require(s->reasons.size() + 3 <= f.body.size(), "SUBACK codes beyond its body");
        else require(!why.empty(), "a SUBACK refused without a reason");
        break;
      case kDisconnect:
        if (!read_disconnect(f, why)) require(!why.empty(), "a DISCONNECT refused without a reason");
        break;
      default: break;
    }
    off += f.size;
  }
  return 0;
}

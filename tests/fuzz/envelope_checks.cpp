#include "tests/fuzz/envelope_checks.h"

#include <pb_common.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "common/core/utf8.h"

namespace kairos::fuzz {

void fail(std::string_view what, std::string_view detail) {
  std::fprintf(stderr, "INVARIANT BROKEN: %.*s%s%.*s\n", static_cast<int>(what.size()), what.data(),
               detail.empty() ? "" : ": ", static_cast<int>(detail.size()), detail.data());
  std::abort();
}

std::string topic_of(TopicKind kind) {
  switch (kind) {
    case TopicKind::mesh_state: return mesh_state_topic("m");
    case TopicKind::gw_state: return gw_topic("m", "gw1", kind);
    case TopicKind::sector_summary:
    case TopicKind::sector_req:
    case TopicKind::sector_resp: return sector_topic("m", "north", kind);
    case TopicKind::cluster_summary: return sector_topic("m", "north", kind, "c");
    case TopicKind::ctl_req: return ctl_req_topic("m");
    case TopicKind::ctl_resp: return ctl_resp_topic("m", "ops");
    case TopicKind::alert: return alert_topic("m");
    case TopicKind::ball_head: return ball_head_topic("m", "s1");
    case TopicKind::ball_to: return ball_to_topic("m", "s1", "Ana");
    default: return node_topic("m", "c", "n1", kind);
  }
}

const Key& fuzz_key() {
  static const Key key = [] {
    Key k;
    for (std::size_t i = 0; i < k.bytes.size(); ++i) k.bytes[i] = static_cast<std::uint8_t>(7 * i + 1);
    return k;
  }();
  return key;
}

namespace {

// How many elements of the iterator's field are present.
pb_size_t present(const pb_field_iter_t& f) {
  switch (PB_HTYPE(f.type)) {
    case PB_HTYPE_REQUIRED: return 1;
    case PB_HTYPE_OPTIONAL: return f.pSize == nullptr || *static_cast<const bool*>(f.pSize) ? 1 : 0;
    case PB_HTYPE_REPEATED: {
      pb_size_t n = *static_cast<const pb_size_t*>(f.pSize);
      require(n <= f.array_size, "repeated field over its max_count");
      return n;
    }
    default: return *static_cast<const pb_size_t*>(f.pSize) == f.tag ? 1 : 0;  // oneof: the set member only
  }
}

}  // namespace

void for_each_string(const pb_msgdesc_t* desc, const void* msg, const std::function<void(std::string_view)>& visit) {
  pb_field_iter_t f;
  if (!pb_field_iter_begin_const(&f, desc, msg)) return;
  do {
    if (PB_ATYPE(f.type) != PB_ATYPE_STATIC) continue;  // the Frame's callbacks: views, checked by open()
    const pb_size_t n = present(f);
    for (pb_size_t i = 0; i < n; ++i) {
      const char* item = static_cast<const char*>(f.pData) + static_cast<std::size_t>(i) * f.data_size;
      switch (PB_LTYPE(f.type)) {
        case PB_LTYPE_STRING: {
          const void* end = std::memchr(item, '\0', f.data_size);
          require(end != nullptr, "string not NUL-terminated inside its array");
          visit(std::string_view(item, static_cast<std::size_t>(static_cast<const char*>(end) - item)));
          break;
        }
        case PB_LTYPE_BYTES: {
          pb_size_t size;
          std::memcpy(&size, item, sizeof size);
          require(size <= f.data_size - offsetof(pb_bytes_array_t, bytes), "bytes field over its max_size");
          break;
        }
        case PB_LTYPE_SUBMESSAGE:
        case PB_LTYPE_SUBMSG_W_CB: for_each_string(f.submsg_desc, item, visit); break;
        default: break;
      }
    }
  } while (pb_field_iter_next(&f));
}

void check_opened(const Opened& r) {
  require((r.env != nullptr) != r.drop.has_value(), "open: not exactly one of an envelope and a drop reason");
  if (!r.drop) return;
  require(static_cast<std::size_t>(*r.drop) < static_cast<std::size_t>(DropReason::count_) && to_string(*r.drop) != "?",
          "open: drop reason out of range");
  require(!r.detail.empty(), "open: a drop without detail", to_string(*r.drop));
}

void check_accepted(std::string_view topic, const Envelope& env) {
  auto why = validate(env);
  require(!why, "accepted envelope fails validate()", why.value_or(""));
  int kinds = 0;
  for (int k = 0; k < kKinds; ++k) kinds += kind_matches(static_cast<TopicKind>(k), env) ? 1 : 0;
  // Control requests and answers go on an operator's topics or a sector's (from its root).
  const bool control = env.which_message == kairos_v1_Envelope_ctl_request_tag ||
                       env.which_message == kairos_v1_Envelope_ctl_response_tag;
  require(kinds == (control ? 2 : 1), "message type does not belong on exactly one topic kind (two: control)");
  for_each_string(kairos_v1_Envelope_fields, &env, [](std::string_view s) {
    require(valid_utf8(s), "a string of an accepted envelope is not UTF-8", s);
  });

  // Store and forward keeps envelopes unsealed: bytes and back must not change them.
  const Bytes body = encode_envelope(env);
  require(!body.empty() && body.size() <= kMaxBody, "re-encoded envelope size");
  std::string err;
  auto again = decode_envelope(body, err);
  require(again != nullptr, "re-encoded envelope does not decode", err);
  why = validate(*again);
  require(!why, "re-encoded envelope fails validate()", why.value_or(""));
  require(encode_envelope(*again) == body, "envelope changes when encoded a second time");

  const Bytes sealed = seal(topic, env, fuzz_key());
  auto reopened = open(topic, sealed, fuzz_key());
  check_opened(reopened);
  require(bool(reopened), "sealed again, the envelope does not open", reopened.detail);
  require(encode_envelope(*reopened.env) == body, "sealed and opened, the envelope changed");
  Key other = fuzz_key();
  other.bytes[31] ^= 0x80;
  require(open(topic, sealed, other).drop == DropReason::bad_mac, "a frame opens with another key");
  require(open(std::string(topic) + "x", sealed, fuzz_key()).drop == DropReason::bad_mac,
          "a frame opens on another topic");
}

std::string seed_dir() {
  const char* dir = std::getenv("KAIROS_FUZZ_SEEDS");
  return dir ? dir : "";
}

int seeds_if_asked(void (*write_seeds)(const std::string& dir)) {
  if (auto dir = seed_dir(); !dir.empty()) {
    write_seeds(dir);
    std::exit(0);
  }
  return 0;
}

void write_seed(const std::string& dir, const std::string& name, ByteView data) {
  std::filesystem::create_directories(dir);
  std::ofstream out(dir + "/" + name, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  require(bool(out), "cannot write seed", dir + "/" + name);
}

}  // namespace kairos::fuzz

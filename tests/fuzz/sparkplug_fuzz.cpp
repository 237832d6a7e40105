// libFuzzer target for what the Sparkplug B bridge reads from outside
// (docs/SPARKPLUG.md): any bytes as a host's NCMD payload.
// Invariants: no crash, no sanitizer report; exactly one of a refusal and
// an answer (rebirth asked or not); the same bytes give the same answer; a
// rebirth is asked only by a payload that holds a metric named
// "Node Control/Rebirth" or with its alias (1), whose bytes are then found
// in the input.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "gateway/sparkplug/edge.h"

using namespace kairos;
namespace sp = kairos::gw::sparkplug;

namespace {

void require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "INVARIANT BROKEN: %s\n", what);
  std::abort();
}

// An independent walk of the wire format: does any top-level metric (field
// 2) carry the name "Node Control/Rebirth" (its field 1) or alias 1 (its
// field 2)? Varints of any length count, as the decoder takes them (0x81
// 0x00 is 1; an unknown field's varint is skipped however long it runs).
bool varint(std::string_view& b, std::uint64_t& v) {
  v = 0;
  for (int shift = 0; !b.empty(); shift += 7) {
    const auto byte = static_cast<std::uint8_t>(b.front());
    b.remove_prefix(1);
    if (shift < 64) v |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
    if (!(byte & 0x80)) return true;
  }
  return false;
}

// Walks one message's fields, calling f(field, wire type, varint value, bytes) for each; false if malformed.
template <class F>
bool walk(std::string_view b, F f) {
  while (!b.empty()) {
    std::uint64_t key = 0, v = 0;
    if (!varint(b, key)) return false;
    std::string_view bytes;
    switch (key & 7) {
      case 0: if (!varint(b, v)) return false; break;
      case 1: if (b.size() < 8) return false; b.remove_prefix(8); break;
      case 5: if (b.size() < 4) return false; b.remove_prefix(4); break;
      case 2:
        if (!varint(b, v) || v > b.size()) return false;
        bytes = b.substr(0, v);
        b.remove_prefix(v);
        break;
      default: return false;
    }
    f(key >> 3, key & 7, v, bytes);
  }
  return true;
}

bool names_rebirth(std::string_view payload) {
  bool found = false;
  walk(payload, [&](std::uint64_t field, std::uint64_t type, std::uint64_t, std::string_view metric) {
    if (field != 2 || type != 2) return;
    walk(metric, [&](std::uint64_t f, std::uint64_t t, std::uint64_t v, std::string_view bytes) {
      if ((f == 1 && t == 2 && bytes == "Node Control/Rebirth") || (f == 2 && t == 0 && v == 1)) found = true;
    });
  });
  return found;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView in(data, size);
  const sp::Command c = sp::EdgeNode::parse_ncmd(in);
  require(!(c.rebirth && !c.error.empty()), "a refused NCMD asks for a rebirth");
  const sp::Command again = sp::EdgeNode::parse_ncmd(in);
  require(again.rebirth == c.rebirth && again.error == c.error, "the same bytes read twice differ");
  if (c.rebirth)
    require(names_rebirth(std::string_view(reinterpret_cast<const char*>(data), size)),
            "a rebirth asked without the metric's name or alias in the payload");
  return 0;
}

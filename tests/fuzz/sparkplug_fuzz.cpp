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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView in(data, size);
  const sp::Command c = sp::EdgeNode::parse_ncmd(in);
  require(!(c.rebirth && !c.error.empty()), "a refused NCMD asks for a rebirth");
  const sp::Command again = sp::EdgeNode::parse_ncmd(in);
  require(again.rebirth == c.rebirth && again.error == c.error, "the same bytes read twice differ");
  if (c.rebirth) {
    // By name (its bytes in the input) or by alias 1 (field 2, varint 1: 0x10 0x01).
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    require(bytes.find("Node Control/Rebirth") != std::string_view::npos ||
                bytes.find(std::string_view("\x10\x01", 2)) != std::string_view::npos,
            "a rebirth asked without the metric's name or alias in the payload");
  }
  return 0;
}

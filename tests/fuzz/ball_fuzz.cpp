// libFuzzer target for the Ball parser (docs/DESIGN.md 6): any bytes as a peer's
// input. Invariants: no crash, no sanitizer report, a refusal always says
// why, an accepted handoff always names a peer, an accepted entry chains
// and verifies, and the play replays from its lineage to the same state.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/core/ball.h"

using namespace kairos;
using namespace kairos::ball;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::vector<std::string> peers{"Ana", "Ben", "node-7", "\xC3\x98x"};
  const std::string input(reinterpret_cast<const char*>(data), size);
  auto p = parse_input(input, peers);
  if (p.input.has_value() == !p.error.empty()) std::abort();  // exactly one of an input and a reason
  if (!p.input) return 0;
  const auto& in = *p.input;
  if (in.ball_mode) {
    if (in.ending == Ending::none) std::abort();
    if (in.ending == Ending::handoff) {
      bool known = false;
      for (const auto& peer : peers) known = known || peer == in.handoff_to;
      if (!known) std::abort();
    }
  }
  Entry genesis{0, "fuzz", "genesis", "Ana", 1, "genesis", {}};
  genesis.hash = chain_hash(Digest{}, genesis);
  Entry e{1, "fuzz", "entry", "Ben", 2, in.text, {}};
  e.hash = chain_hash(genesis.hash, e);
  if (verify({genesis, e}, 1, e.hash)) std::abort();
  (void)parse_ack(input);
  // Through a play: the holder's input either appends a chained entry or changes nothing.
  Session play("fuzz", "f00d", {"Ana", "Ben", "node-7"}, {"objective"}, "Ana", 1);
  auto o = play.say("Ana", input, 2);
  if (o.appended.has_value() == !o.error.empty()) {
    if (!o.conversational || !o.error.empty()) std::abort();
  }
  const auto& l = play.lineage();
  if (l.size() != (o.appended ? 2u : 1u)) std::abort();
  if (verify(l, l.back().seq, l.back().hash)) std::abort();
  // A gateway restart rebuilds the play from its lineage: same head, same holder.
  Break why;
  auto again = Session::replay(l, why);
  if (!again || again->lineage().back().hash != l.back().hash || again->holder() != play.holder()) std::abort();
  return 0;
}

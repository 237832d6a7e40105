#pragma once
// Report contents shared by kairos-node and kairos-sim (docs/DESIGN.md 4).
#include "common/core/frame.h"
#include "common/core/kairos.h"

namespace kairos::node {

// A NodeState (online or offline) of a session; the header is filled when it is signed.
EnvelopePtr state_envelope(bool online, std::uint64_t session);
// The same, sealed now with a seq of its own outside the Signer: the offline
// state armed as the MQTT Will, or sent at a clean stop (docs/DESIGN.md 4).
Bytes sealed_state(std::string_view topic, std::string_view sender, std::uint64_t session, std::uint64_t seq,
                   std::int64_t sent_at_us, bool online, const Key& key);

// One input's phase report: z, c and R per scale (none before the first sample).
void fill_scales(kairos_v1_InputPhase& ip, const KairosFilter& filter);

}  // namespace kairos::node

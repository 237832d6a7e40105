#pragma once
// Report contents shared by kairos-node and kairos-sim (docs/DESIGN.md 4): one
// implementation of each frame a node makes; the header is filled when it is signed.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/core/frame.h"
#include "common/core/kairos.h"

namespace kairos::node {

// What a birth announces: fixed for a session.
struct BirthInfo {
  struct Input {
    std::string name;
    std::string kind;
    std::uint32_t sample_period_us = 0;
  };
  std::string cluster;
  std::string board;
  kairos_v1_DeviceClass device_class = kairos_v1_DeviceClass_CLASS_E;
  std::vector<std::string> capabilities;  // at most 16 (NodeBirth.capabilities)
  std::vector<Input> inputs;              // at most 8
  std::vector<Input> outputs;             // at most 8 (no sample period)
  std::vector<double> taus_s;             // the K scales (s), fastest first; at most 8
  std::string firmware_version;
  Digest context_hash{};
  std::uint32_t heartbeat_period_ms = 0;
  std::uint32_t phase_period_ms = 0;
  std::string mesh_input;
  std::uint32_t primary_scale = 0;
};
EnvelopePtr birth_envelope(const BirthInfo& birth);

// What a heartbeat reports of a node, the most serious first.
kairos_v1_NodeStatus node_status(bool quarantined, bool frozen, bool failing, bool processing);
// A heartbeat with its status, context hash and (zero) counters; the caller fills in its numbers.
EnvelopePtr heartbeat_envelope(kairos_v1_NodeStatus status, const Digest& context_hash);

// One input of a phase report: its name and its KAIROS loop.
struct InputFilter {
  std::string_view name;
  const KairosFilter& filter;
  // The input's latest sample and when it came (< 0: none yet); null: not reported.
  const double* value = nullptr;
  const std::int64_t* value_at_us = nullptr;
};
// A phase report: z, c and R per scale of each input (none before its first
// sample), and the node's phase from the mesh input's primary scale.
EnvelopePtr phase_envelope(std::span<const InputFilter> inputs, std::size_t mesh_input, std::size_t primary_scale);

// A NodeState (online or offline) of a session.
EnvelopePtr state_envelope(bool online, std::uint64_t session);
// The same, sealed now with a seq set apart (Signer::seal_reserved): the
// offline state armed as the MQTT Will, or sent at a clean stop (docs/DESIGN.md 4).
Bytes sealed_state(std::string_view topic, const Signer& signer, std::uint64_t seq, std::int64_t sent_at_us,
                   bool online, const Key& key);

}  // namespace kairos::node

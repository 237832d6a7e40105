#include "firmware/reports.h"

#include <algorithm>
#include <iterator>

namespace kairos::node {

namespace {

// One input's phases: z, c and R per scale (none before the first sample).
void fill_scales(kairos_v1_InputPhase& ip, const KairosFilter& filter) {
  if (!filter.has_sample()) return;
  for (std::size_t k = 0; k < filter.scales() && ip.scales_count < 8; ++k) {
    const auto& s = filter.scale(k);
    auto& sp = ip.scales[ip.scales_count++];
    sp.has_z = true;
    sp.z.re = static_cast<float>(s.z.real());
    sp.z.im = static_cast<float>(s.z.imag());
    sp.c = static_cast<float>(s.c);
    sp.r = static_cast<float>(filter.rhythm(k).r());
  }
}

}  // namespace

EnvelopePtr birth_envelope(const BirthInfo& info) {
  auto env = make_envelope("", 0, 0, 0);
  env->which_message = kairos_v1_Envelope_birth_tag;
  auto& b = env->message.birth;
  set_string(b.cluster, info.cluster);
  set_string(b.board, info.board);
  b.device_class = info.device_class;
  for (const auto& c : info.capabilities) set_string(b.capabilities[b.capabilities_count++], c);
  for (const auto& in : info.inputs) {
    auto& a = b.inputs[b.inputs_count++];
    set_string(a.name, in.name);
    set_string(a.kind, in.kind);
    a.sample_period_us = in.sample_period_us;
  }
  for (const auto& out : info.outputs) {
    if (b.outputs_count >= std::size(b.outputs)) break;
    auto& a = b.outputs[b.outputs_count++];
    set_string(a.name, out.name);
    set_string(a.kind, out.kind);
  }
  for (double tau : info.taus_s) b.timescales_s[b.timescales_s_count++] = static_cast<float>(tau);
  set_string(b.firmware_version, info.firmware_version);
  b.context_hash.size = 32;
  std::copy(info.context_hash.begin(), info.context_hash.end(), b.context_hash.bytes);
  b.heartbeat_period_ms = info.heartbeat_period_ms;
  b.phase_period_ms = info.phase_period_ms;
  set_string(b.mesh_input, info.mesh_input);
  b.primary_scale = info.primary_scale;
  return env;
}

kairos_v1_NodeStatus node_status(bool quarantined, bool frozen, bool failing, bool processing) {
  return quarantined  ? kairos_v1_NodeStatus_QUARANTINED
         : frozen     ? kairos_v1_NodeStatus_FROZEN
         : failing    ? kairos_v1_NodeStatus_VARIANCE_WARNING
         : processing ? kairos_v1_NodeStatus_PROCESSING
                      : kairos_v1_NodeStatus_COMPLIANT;
}

EnvelopePtr heartbeat_envelope(kairos_v1_NodeStatus status, const Digest& context_hash) {
  auto env = make_envelope("", 0, 0, 0);
  env->which_message = kairos_v1_Envelope_heartbeat_tag;
  auto& h = env->message.heartbeat;
  h.status = status;
  h.has_counters = true;
  h.context_hash.size = 32;
  std::copy(context_hash.begin(), context_hash.end(), h.context_hash.bytes);
  return env;
}

EnvelopePtr phase_envelope(std::span<const InputFilter> inputs, std::size_t mesh_input, std::size_t primary_scale) {
  auto env = make_envelope("", 0, 0, 0);
  env->which_message = kairos_v1_Envelope_phase_tag;
  auto& p = env->message.phase;
  for (const auto& in : inputs) {
    auto& ip = p.inputs[p.inputs_count++];
    set_string(ip.input, in.name);
    fill_scales(ip, in.filter);
    if (in.value && in.value_at_us && *in.value_at_us >= 0) {
      ip.has_value = true;
      ip.value = *in.value;
    }
  }
  const auto& mesh = inputs[mesh_input].filter;
  if (mesh.has_sample()) {
    const auto& s = mesh.scale(primary_scale);
    p.valid = true;
    p.has_node_z = true;
    p.node_z.re = static_cast<float>(s.z.real());
    p.node_z.im = static_cast<float>(s.z.imag());
    p.node_c = static_cast<float>(s.c);
  }
  return env;
}

EnvelopePtr state_envelope(bool online, std::uint64_t session) {
  auto env = make_envelope("", 0, 0, 0);
  env->which_message = kairos_v1_Envelope_state_tag;
  env->message.state.online = online;
  env->message.state.session_id = session;
  return env;
}

Bytes sealed_state(std::string_view topic, const Signer& signer, std::uint64_t seq, std::int64_t sent_at_us,
                   bool online, const Key& key) {
  auto env = state_envelope(online, signer.session());
  return signer.seal_reserved(topic, *env, key, seq, sent_at_us);
}

}  // namespace kairos::node

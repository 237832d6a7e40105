// libFuzzer target for the frame decoders (docs/PROTOCOL.md, Frames). The first
// byte picks the topic kind (byte % 16, TopicKind order) and the mode:
// bit 0x10 clear, the rest is an MQTT payload as it arrives (its MAC is
// whatever the bytes say); set, the rest is an envelope body, sealed with the
// topic's key before open(), so every message type is decoded and validated
// past the MAC. Invariants: no crash, no sanitizer report; open() gives
// exactly one of an envelope and a drop reason; a sealed body is dropped for
// what it holds, never for its frame or MAC; peek_unverified() agrees with
// open(); an accepted envelope keeps every check of envelope_checks.h.
#include <cstdint>
#include <cstring>
#include <memory>

#include "tests/fuzz/envelope_checks.h"

using namespace kairos;
using namespace kairos::fuzz;

namespace {

constexpr std::uint8_t kSealed = 0x80;

void set_bytes(auto& field, std::size_t n, std::uint8_t fill) {
  field.size = static_cast<pb_size_t>(n);
  std::memset(field.bytes, fill, n);
}

// A message of the type that belongs on kind, filled as a live sender would.
EnvelopePtr sample(TopicKind kind) {
  const bool node = kind < TopicKind::cmd;  // the gateway signs commands
  auto env = make_envelope(node ? "n1" : kind == TopicKind::ctl_req ? "ops" : "gw1", 0x5eed, 7,
                           1'700'000'000'000'000);
  auto& m = env->message;
  switch (kind) {
    case TopicKind::birth: {
      env->which_message = kairos_v1_Envelope_birth_tag;
      auto& b = m.birth;
      set_string(b.cluster, "c");
      set_string(b.board, "pi-4-b");
      b.device_class = kairos_v1_DeviceClass_CLASS_E;
      b.capabilities_count = 2;
      set_string(b.capabilities[0], "read");
      set_string(b.capabilities[1], "job:ball");
      b.inputs_count = 1;
      set_string(b.inputs[0].name, "mic");
      set_string(b.inputs[0].kind, "microphone");
      b.inputs[0].sample_period_us = 10'000;
      b.outputs_count = 1;
      set_string(b.outputs[0].name, "tone");
      set_string(b.outputs[0].kind, "speaker");
      b.timescales_s_count = 2;
      b.timescales_s[0] = 0.1f;
      b.timescales_s[1] = 1.0f;
      set_string(b.firmware_version, "0.1.0");
      set_bytes(b.context_hash, 32, 0xab);
      b.heartbeat_period_ms = 5000;
      b.phase_period_ms = 1000;
      set_string(b.mesh_input, "mic");
      break;
    }
    case TopicKind::state:
      env->which_message = kairos_v1_Envelope_state_tag;
      m.state.online = true;
      m.state.session_id = env->session_id;
      break;
    case TopicKind::hb:
      env->which_message = kairos_v1_Envelope_heartbeat_tag;
      m.heartbeat.status = kairos_v1_NodeStatus_COMPLIANT;
      m.heartbeat.processing_ms = 0.4f;
      m.heartbeat.loop_load = 0.1f;
      m.heartbeat.has_counters = true;
      m.heartbeat.counters.frames_sent = 99;
      m.heartbeat.uptime_ms = 12'000;
      set_bytes(m.heartbeat.context_hash, 32, 0xab);
      break;
    case TopicKind::phase:
      env->which_message = kairos_v1_Envelope_phase_tag;
      m.phase.inputs_count = 1;
      set_string(m.phase.inputs[0].input, "mic");
      m.phase.inputs[0].scales_count = 2;
      m.phase.inputs[0].scales[0] = {true, {0.5f, -0.5f}, 0.9f, 1.0f};
      m.phase.inputs[0].scales[1] = {true, {0.1f, 0.2f}, 0.3f, 2.0f};
      m.phase.has_node_z = true;
      m.phase.node_z = {0.5f, -0.5f};
      m.phase.node_c = 0.9f;
      m.phase.valid = true;
      break;
    case TopicKind::event:
      env->which_message = kairos_v1_Envelope_event_tag;
      m.event.kind = kairos_v1_EventKind_CAT2;
      set_string(m.event.source, "mic");
      set_string(m.event.detail, "no samples for 2 s");
      break;
    case TopicKind::ack:
      env->which_message = kairos_v1_Envelope_ack_tag;
      m.ack.command_id = 3;
      m.ack.state = -1;
      set_string(m.ack.detail, "late by 12 ms");
      m.ack.received_at_us = 1'700'000'000'000'100;
      break;
    case TopicKind::result:
      env->which_message = kairos_v1_Envelope_result_tag;
      m.result.job_id = 4;
      m.result.attempt = 1;
      m.result.status = kairos_v1_JobStatus_JOB_OK;
      set_bytes(m.result.output, 5, 'x');
      m.result.duration_ms = 12;
      break;
    case TopicKind::cmd:
      env->which_message = kairos_v1_Envelope_command_tag;
      m.command.command_id = 9;
      m.command.ttl_ms = 40'000;
      m.command.mandatory = true;
      m.command.execute_at_us = 1'700'000'000'500'000;
      m.command.late_tolerance_ms = 20;
      m.command.which_action = kairos_v1_Command_job_tag;
      m.command.action.job.job_id = 4;
      m.command.action.job.attempt = 1;
      set_string(m.command.action.job.handler, "read");
      set_bytes(m.command.action.job.payload, 3, 'q');
      m.command.action.job.timeout_ms = 10'000;
      break;
    case TopicKind::mesh_state:
      env->which_message = kairos_v1_Envelope_mesh_state_tag;
      m.mesh_state.has_z = true;
      m.mesh_state.z = {0.3f, 0.4f};
      m.mesh_state.coherence = 0.8f;
      m.mesh_state.agreement = 0.7f;
      m.mesh_state.unified = true;
      m.mesh_state.mode = kairos_v1_MeshMode_DEGRADED_LIGHT;
      m.mesh_state.nodes_online = 9;
      m.mesh_state.nodes_known = 10;
      break;
    case TopicKind::sector_summary: {
      env->which_message = kairos_v1_Envelope_sector_summary_tag;
      auto& q = m.sector_summary;
      set_string(q.sector, "north");
      set_string(q.gateway, "gw1");
      q.period_ms = 5000;
      q.mode = kairos_v1_MeshMode_FULL;
      q.has_total = true;
      set_string(q.total.name, "north");
      q.total.known = 10;
      q.total.online = 9;
      q.total.has_sums = true;
      q.total.sums = {4.5, 1.0, -0.5, 3.0, 2.0, 5, 1'700'000'000'000'000, 15.0};
      q.conflicts_open_count = 5;
      q.conflicts_open[4] = 1;
      break;
    }
    case TopicKind::cluster_summary: {
      env->which_message = kairos_v1_Envelope_cluster_summary_tag;
      auto& q = m.cluster_summary;
      set_string(q.sector, "north");
      q.has_cluster = true;
      set_string(q.cluster.name, "c");
      q.cluster.known = 3;
      q.cluster.online = 3;
      q.cluster.by_class_count = 7;
      q.cluster.by_class[1] = 3;
      set_string(q.cluster.slowest, "n1");
      q.cluster.slowest_score = 120;
      break;
    }
    case TopicKind::sector_req:
      env->which_message = kairos_v1_Envelope_ctl_request_tag;
      m.ctl_request.request_id = 0x0102030405060709;
      m.ctl_request.which_verb = kairos_v1_ControlRequest_status_tag;
      break;
    case TopicKind::sector_resp:
      env->which_message = kairos_v1_Envelope_ctl_response_tag;
      m.ctl_response.request_id = 0x0102030405060709;
      m.ctl_response.which_reply = kairos_v1_ControlResponse_sectors_tag;
      m.ctl_response.reply.sectors.total = 1;
      break;
    case TopicKind::gw_state:
      env->which_message = kairos_v1_Envelope_gateway_state_tag;
      m.gateway_state.online = true;
      m.gateway_state.session_id = env->session_id;
      set_string(m.gateway_state.version, "0.1.0");
      break;
    case TopicKind::ctl_req:
      env->which_message = kairos_v1_Envelope_ctl_request_tag;
      m.ctl_request.request_id = 0x0102030405060708;
      m.ctl_request.which_verb = kairos_v1_ControlRequest_nodes_tag;
      m.ctl_request.verb.nodes.limit = 40;
      set_string(m.ctl_request.verb.nodes.state, "online");
      break;
    case TopicKind::ctl_resp: {
      env->which_message = kairos_v1_Envelope_ctl_response_tag;
      auto& r = m.ctl_response;
      r.request_id = 0x0102030405060708;
      r.ok = true;
      r.which_reply = kairos_v1_ControlResponse_status_tag;
      set_string(r.reply.status.gateway, "gw1");
      set_string(r.reply.status.mesh, "m");
      r.reply.status.nodes_known = 10;
      r.reply.status.drops_count = 1;
      set_string(r.reply.status.drops[0].reason, "bad_mac");
      r.reply.status.drops[0].count = 2;
      set_string(r.reply.status.restrictions, "");
      break;
    }
    case TopicKind::alert:
      env->which_message = kairos_v1_Envelope_alert_tag;
      set_string(m.alert.type, "HASH_MISMATCH");
      m.alert.priority = 4;
      set_string(m.alert.node, "n1");
      set_string(m.alert.cluster, "c");
      set_string(m.alert.scope, "operator");
      set_string(m.alert.detail, "frame failed its MAC");
      set_string(m.alert.suggested, "rotate the key");
      break;
    case TopicKind::ball_head:
      env->which_message = kairos_v1_Envelope_ball_head_tag;
      set_string(m.ball_head.session, "s1");
      set_string(m.ball_head.ball_id, "00112233aabbccdd");
      m.ball_head.seq = 3;
      set_bytes(m.ball_head.hash, 32, 0x5a);
      set_string(m.ball_head.holder, "Ana");
      break;
    case TopicKind::ball_to:
      env->which_message = kairos_v1_Envelope_ball_delivery_tag;
      set_string(m.ball_delivery.session, "s1");
      set_string(m.ball_delivery.ball_id, "00112233aabbccdd");
      set_string(m.ball_delivery.from, "Ben");
      m.ball_delivery.has_entry = true;
      m.ball_delivery.entry.seq = 3;
      set_string(m.ball_delivery.entry.kind, "entry");
      set_string(m.ball_delivery.entry.author, "Ben");
      m.ball_delivery.entry.at_us = 1'700'000'000'000'000;
      set_string(m.ball_delivery.entry.text, "MM: plan\n->Ana");
      set_bytes(m.ball_delivery.entry.hash, 32, 0x5a);
      set_string(m.ball_delivery.holder, "Ana");
      break;
  }
  return env;
}

void write_seeds(const std::string& dir) {
  for (int k = 0; k < kKinds; ++k) {
    const auto kind = static_cast<TopicKind>(k);
    auto env = sample(kind);
    const auto topic = topic_of(kind);
    Bytes body{static_cast<std::uint8_t>(k | kSealed)};
    auto encoded = encode_envelope(*env);
    body.insert(body.end(), encoded.begin(), encoded.end());
    write_seed(dir, std::string(to_string(kind)) + "-body", body);
    Bytes frame{static_cast<std::uint8_t>(k)};
    auto sealed = seal(topic, *env, fuzz_key());
    frame.insert(frame.end(), sealed.begin(), sealed.end());
    write_seed(dir, std::string(to_string(kind)) + "-frame", frame);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) { return seeds_if_asked(write_seeds); }

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static_assert(kKinds < kSealed);
  const auto kind = static_cast<TopicKind>((data[0] & (kSealed - 1)) % kKinds);
  const bool sealed = data[0] & kSealed;
  const std::string topic = topic_of(kind);
  const ByteView rest(data + 1, size - 1);
  const Bytes payload = sealed ? seal_body(topic, rest, fuzz_key()) : Bytes(rest.begin(), rest.end());

  auto r = open(topic, payload, fuzz_key());
  check_opened(r);
  if (sealed && !rest.empty() && rest.size() <= kMaxBody)
    require(r.drop != DropReason::oversized_frame && r.drop != DropReason::malformed_frame &&
                r.drop != DropReason::bad_mac,
            "a sealed body dropped for its frame", r.detail);
  // Without a MAC check, the same decoding and validation.
  auto peeked = peek_unverified(payload);
  require(sealed ? bool(r) == bool(peeked) : !r || peeked, "peek_unverified() disagrees with open()");
  if (peeked) {
    require(!validate(*peeked), "peek_unverified() returned an invalid envelope");
    for_each_string(kairos_v1_Envelope_fields, peeked.get(), [](std::string_view) {});
  }
  if (!r) return 0;
  require(encode_envelope(*peeked) == encode_envelope(*r.env), "peek_unverified() decodes another envelope");
  check_accepted(topic, *r.env);
  return 0;
}

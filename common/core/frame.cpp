#include "common/core/frame.h"

#include <pb_common.h>
#include <pb_decode.h>
#include <pb_encode.h>

#include <array>
#include <cstddef>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include "common/core/utf8.h"

namespace kairos {

namespace {

constexpr std::array<std::string_view, static_cast<std::size_t>(DropReason::count_)> kReasonNames{
    "bad_topic",     "oversized_frame", "malformed_frame", "unknown_sender", "bad_mac",
    "oversized_field", "malformed_body", "invalid_value",  "sender_mismatch", "kind_mismatch",
    "replay",        "stale_session",   "unknown_session", "revoked", "queue_full",
};

// Frame fields are captured as views into the received buffer. nanopb hands
// a callback a stream over its own scratch buffer when the wire type is not
// length-delimited, so a view is kept only if it lies inside the payload.
struct Capture {
  ByteView payload;
  ByteView out;
};

bool capture_bytes(pb_istream_t* stream, const pb_field_t*, void** arg) {
  auto* cap = static_cast<Capture*>(*arg);
  std::size_t n = stream->bytes_left;
  if (n > kMaxBody) PB_RETURN_ERROR(stream, "bytes overflow");
  const auto* start = static_cast<const std::uint8_t*>(stream->state);
  const auto* lo = cap->payload.data();
  const auto* hi = lo + cap->payload.size();
  if (start < lo || start > hi || n > static_cast<std::size_t>(hi - start)) PB_RETURN_ERROR(stream, "wrong wire type");
  if (!pb_read(stream, nullptr, n)) return false;
  cap->out = ByteView(start, n);
  return true;
}

// The outer Frame's two fields, as views into payload.
bool split_frame(ByteView payload, ByteView& body, ByteView& mac, std::string& error) {
  Capture body_cap{payload, {}}, mac_cap{payload, {}};
  kairos_v1_Frame frame = kairos_v1_Frame_init_zero;
  frame.body.funcs.decode = capture_bytes;
  frame.body.arg = &body_cap;
  frame.mac.funcs.decode = capture_bytes;
  frame.mac.arg = &mac_cap;
  pb_istream_t in = pb_istream_from_buffer(payload.data(), payload.size());
  if (!pb_decode(&in, kairos_v1_Frame_fields, &frame)) {
    error = PB_GET_ERROR(&in);
    return false;
  }
  body = body_cap.out;
  mac = mac_cap.out;
  return true;
}

bool emit_bytes(pb_ostream_t* stream, const pb_field_t* field, void* const* arg) {
  const auto* in = static_cast<const ByteView*>(*arg);
  return pb_encode_tag_for_field(stream, field) && pb_encode_string(stream, in->data(), in->size());
}

bool finite(float v) { return std::isfinite(v); }
bool finite(const kairos_v1_Complex& z) { return std::isfinite(z.re) && std::isfinite(z.im); }

bool name_ok(const char* s) { return valid_name(s); }


bool in_range(int v, int lo, int hi) { return v >= lo && v <= hi; }

std::optional<std::string> bad(std::string what) { return what; }

}  // namespace

std::string_view to_string(DropReason reason) {
  auto i = static_cast<std::size_t>(reason);
  return i < kReasonNames.size() ? kReasonNames[i] : "?";
}

std::string_view to_string(kairos_v1_MeshMode m) {
  static constexpr std::string_view names[] = {"?", "FULL", "DEGRADED_LIGHT", "DEGRADED_MODERATE", "DEGRADED_SEVERE", "EMERGENCY"};
  int i = raw_enum(m);
  return i >= 0 && i <= 5 ? names[i] : "?";
}

std::string_view to_string(kairos_v1_NodeStatus st) {
  static constexpr std::string_view names[] = {"?", "COMPLIANT", "PROCESSING", "VARIANCE_WARNING", "QUARANTINED", "FROZEN", "OFFLINE"};
  int i = raw_enum(st);
  return i >= 0 && i <= 6 ? names[i] : "?";
}

std::string_view class_letter(kairos_v1_DeviceClass c) {
  static constexpr std::string_view names[] = {"?", "A", "B", "C", "D", "E", "F"};
  int i = raw_enum(c);
  return i >= 0 && i <= 6 ? names[i] : "?";
}

// Every message this protocol can carry fits a frame.
static_assert(kairos_v1_Envelope_size <= kMaxBody);

namespace {

struct EnvelopePool {
  static constexpr std::size_t kKeep = 16;
  std::vector<Envelope*> free;
  bool alive = true;
  ~EnvelopePool() {
    alive = false;
    for (auto* e : free) delete e;
  }
};
thread_local EnvelopePool envelope_pool;

}  // namespace

void EnvelopeRecycler::operator()(Envelope* env) const noexcept {
  auto& pool = envelope_pool;
  if (!pool.alive || pool.free.size() >= EnvelopePool::kKeep) {
    delete env;
    return;
  }
  try {
    pool.free.push_back(env);
  } catch (...) {
    delete env;
  }
}

EnvelopePtr new_envelope() {
  auto& pool = envelope_pool;
  if (!pool.alive || pool.free.empty()) return EnvelopePtr(new Envelope);
  Envelope* e = pool.free.back();
  pool.free.pop_back();
  return EnvelopePtr(e);
}

EnvelopePtr copy_envelope(const Envelope& env) {
  auto e = new_envelope();
  *e = env;
  return e;
}

EnvelopePtr make_envelope(std::string_view sender, std::uint64_t session,
                                        std::uint64_t seq, std::int64_t sent_at_us) {
  auto env = new_envelope();
  *env = kairos_v1_Envelope_init_zero;
  set_string(env->sender, sender);
  env->session_id = session;
  env->seq = seq;
  env->sent_at_us = sent_at_us;
  return env;
}

Bytes encode_envelope(const Envelope& env) {
  Bytes buf(kairos_v1_Envelope_size);
  pb_ostream_t out = pb_ostream_from_buffer(buf.data(), buf.size());
  if (!pb_encode(&out, kairos_v1_Envelope_fields, &env))
    throw std::runtime_error(std::string("envelope encode failed: ") + PB_GET_ERROR(&out));
  buf.resize(out.bytes_written);
  return buf;
}

namespace {

// Decodes body into env. Only the fields before the message are cleared
// first: nanopb clears a oneof member (and sets its defaults) when it
// decodes it, so the 14 KB union is not filled for a frame of a few hundred
// bytes, and a member the frame does not carry is never read (which_message
// names the one that was decoded; validate() refuses none).
bool decode_into(ByteView body, Envelope& env, std::string& error) {
  static_assert(offsetof(kairos_v1_Envelope, message) > offsetof(kairos_v1_Envelope, which_message));
  std::memset(static_cast<void*>(&env), 0, offsetof(kairos_v1_Envelope, message));
  pb_istream_t in = pb_istream_from_buffer(body.data(), body.size());
  if (pb_decode_ex(&in, kairos_v1_Envelope_fields, &env, PB_DECODE_NOINIT)) return true;
  error = PB_GET_ERROR(&in);
  return false;
}

}  // namespace

EnvelopePtr decode_envelope(ByteView body, std::string& error) {
  auto env = new_envelope();
  if (!decode_into(body, *env, error)) return nullptr;
  return env;
}

Bytes seal(std::string_view topic, const Envelope& env, const Key& key) {
  std::array<std::uint8_t, kairos_v1_Envelope_size> body_buf;
  pb_ostream_t body_stream = pb_ostream_from_buffer(body_buf.data(), body_buf.size());
  if (!pb_encode(&body_stream, kairos_v1_Envelope_fields, &env))
    throw std::runtime_error(std::string("envelope encode failed: ") + PB_GET_ERROR(&body_stream));
  return seal_body(topic, ByteView(body_buf.data(), body_stream.bytes_written), key);
}

Bytes seal_body(std::string_view topic, ByteView body, const Key& key) {
  const std::uint8_t zero = 0;
  Digest mac = hmac_sha256(key, {as_bytes(topic), ByteView(&zero, 1), body});
  ByteView mac_view(mac);

  kairos_v1_Frame frame = kairos_v1_Frame_init_zero;
  frame.body.funcs.encode = emit_bytes;
  frame.body.arg = &body;
  frame.mac.funcs.encode = emit_bytes;
  frame.mac.arg = &mac_view;
  Bytes out(body.size() + mac.size() + 16);
  pb_ostream_t out_stream = pb_ostream_from_buffer(out.data(), out.size());
  if (!pb_encode(&out_stream, kairos_v1_Frame_fields, &frame))
    throw std::runtime_error(std::string("frame encode failed: ") + PB_GET_ERROR(&out_stream));
  out.resize(out_stream.bytes_written);
  return out;
}

Opened open(std::string_view topic, ByteView payload, const Key& key) {
  Opened r;
  if (payload.size() > kMaxPayload) {
    r.drop = DropReason::oversized_frame;
    r.detail = "payload of " + std::to_string(payload.size()) + " bytes";
    return r;
  }
  ByteView body, mac;
  if (!split_frame(payload, body, mac, r.detail)) {
    r.drop = DropReason::malformed_frame;
    return r;
  }
  if (mac.size() != sizeof(Digest) || body.empty()) {
    r.drop = DropReason::malformed_frame;
    r.detail = "mac of " + std::to_string(mac.size()) + " bytes, body of " +
               std::to_string(body.size());
    return r;
  }
  const std::uint8_t zero = 0;
  Digest expect = hmac_sha256(key, {as_bytes(topic), ByteView(&zero, 1), body});
  if (!equal_constant_time(expect, mac)) {
    r.drop = DropReason::bad_mac;
    r.detail = "MAC does not match";
    return r;
  }
  auto env = new_envelope();
  if (std::string err; !decode_into(body, *env, err)) {
    r.drop = err.find("overflow") != std::string::npos || err.find("too many") != std::string::npos
                 ? DropReason::oversized_field
                 : DropReason::malformed_body;
    r.detail = err;
    return r;
  }
  if (auto why = validate(*env)) {
    r.drop = DropReason::invalid_value;
    r.detail = *why;
    return r;
  }
  r.env = std::move(env);
  return r;
}

EnvelopePtr peek_unverified(ByteView payload) {
  if (payload.size() > kMaxPayload) return nullptr;
  ByteView body, mac;
  std::string err;
  if (!split_frame(payload, body, mac, err)) return nullptr;
  auto env = decode_envelope(body, err);
  if (!env || validate(*env)) return nullptr;
  return env;
}

namespace {

// Walks every present string field of a decoded message, submessages and
// repeated fields included, as nanopb decides presence (no pSize: a proto3 field without has_). where
// gets the tag path (e.g. "10.3") of the first one that is not UTF-8.
// Whether a message type holds a string field, itself or in a submessage
// type: the walk below skips those that cannot (most of a phase report).
// Per thread, computed once per type.
bool may_hold_strings(const pb_msgdesc_t* desc) {
  thread_local std::unordered_map<const pb_msgdesc_t*, bool> known;
  if (auto it = known.find(desc); it != known.end()) return it->second;
  known[desc] = false;  // a recursive type is settled by its other fields
  bool holds = false;
  static const char zero[1] = {};
  pb_field_iter_t it;
  if (pb_field_iter_begin_const(&it, desc, zero)) {
    do {
      if (PB_ATYPE(it.type) != PB_ATYPE_STATIC) continue;
      holds = PB_LTYPE(it.type) == PB_LTYPE_STRING || (PB_LTYPE_IS_SUBMSG(it.type) && may_hold_strings(it.submsg_desc));
    } while (!holds && pb_field_iter_next(&it));
  }
  return known[desc] = holds;
}

bool strings_are_utf8(const pb_msgdesc_t* desc, const void* msg, std::string& where) {
  if (!may_hold_strings(desc)) return true;
  pb_field_iter_t it;
  if (!pb_field_iter_begin_const(&it, desc, msg)) return true;
  do {
    if (PB_ATYPE(it.type) != PB_ATYPE_STATIC) continue;
    const auto htype = PB_HTYPE(it.type);
    const auto ltype = PB_LTYPE(it.type);
    if (ltype != PB_LTYPE_STRING && !PB_LTYPE_IS_SUBMSG(ltype)) continue;
    pb_size_t count = 1;
    if (htype == PB_HTYPE_ONEOF) {
      if (*static_cast<const pb_size_t*>(it.pSize) != it.tag) continue;
    } else if (htype == PB_HTYPE_REPEATED) {
      count = *static_cast<const pb_size_t*>(it.pSize);
    } else if (htype == PB_HTYPE_OPTIONAL && it.pSize != nullptr && !*static_cast<const bool*>(it.pSize)) {
      continue;  // a has_ flag that is false
    }
    for (pb_size_t i = 0; i < count; ++i) {
      const char* p = static_cast<const char*>(it.pData) + static_cast<std::size_t>(i) * it.data_size;
      bool ok = ltype == PB_LTYPE_STRING ? valid_utf8(std::string_view(p, ::strnlen(p, it.data_size)))
                                         : strings_are_utf8(it.submsg_desc, p, where);
      if (!ok) {
        where = std::to_string(it.tag) + (where.empty() ? "" : "." + where);
        return false;
      }
    }
  } while (pb_field_iter_next(&it));
  return true;
}

// What is wrong with a group summary's figures, or nullopt.
std::optional<std::string> group_problem(const kairos_v1_GroupSummary& g) {
  if (g.online > g.known) return "online above known";
  if (!finite(g.impedance_mean) || !finite(g.impedance_p95) || !finite(g.clock_rtt_p95_ms)) return "figures";
  if (!g.has_sums) return std::nullopt;
  const auto& s = g.sums;
  for (double v : {s.w, s.z_re, s.z_im, s.c, s.zz, s.stale_after_s})
    if (!std::isfinite(v)) return "sums";
  if (s.w < 0 || s.zz < 0 || s.c < 0 || s.stale_after_s <= 0) return "sums";
  if (s.contributors > g.online) return "sums.contributors";
  return std::nullopt;
}

}  // namespace

std::optional<std::string> validate(const Envelope& e) {
  if (std::string where; !strings_are_utf8(kairos_v1_Envelope_fields, &e, where))
    return "a string that is not UTF-8 (field " + where + ")";
  if (!name_ok(e.sender)) return bad("sender name");
  if (e.seq == 0) return bad("seq 0");
  if (e.session_id == 0) return bad("session 0");
  switch (e.which_message) {
    case kairos_v1_Envelope_birth_tag: {
      const auto& b = e.message.birth;
      if (!name_ok(b.cluster)) return bad("birth.cluster");
      if (!in_range(raw_enum(b.device_class), _kairos_v1_DeviceClass_MIN, _kairos_v1_DeviceClass_MAX))
        return bad("birth.device_class");
      for (pb_size_t i = 0; i < b.timescales_s_count; ++i)
        if (!finite(b.timescales_s[i]) || b.timescales_s[i] <= 0) return bad("birth.timescales_s");
      if (b.context_hash.size != 0 && b.context_hash.size != 32) return bad("birth.context_hash");
      if (b.heartbeat_period_ms > 3'600'000) return bad("birth.heartbeat_period_ms");
      return std::nullopt;
    }
    case kairos_v1_Envelope_state_tag:
      if (e.message.state.session_id != e.session_id) return bad("state.session_id");
      return std::nullopt;
    case kairos_v1_Envelope_heartbeat_tag: {
      const auto& h = e.message.heartbeat;
      if (!in_range(raw_enum(h.status), _kairos_v1_NodeStatus_MIN, kairos_v1_NodeStatus_FROZEN))
        return bad("heartbeat.status");
      if (!finite(h.processing_ms) || !finite(h.loop_load) || h.processing_ms < 0 || h.loop_load < 0)
        return bad("heartbeat timing");
      return std::nullopt;
    }
    case kairos_v1_Envelope_phase_tag: {
      const auto& p = e.message.phase;
      if (!finite(p.node_z) || !finite(p.node_c) || p.node_c < 0 || p.node_c > 1)
        return bad("phase.node");
      for (pb_size_t i = 0; i < p.inputs_count; ++i)
        for (pb_size_t k = 0; k < p.inputs[i].scales_count; ++k) {
          const auto& s = p.inputs[i].scales[k];
          if (!finite(s.z) || !finite(s.c) || !finite(s.r)) return bad("phase.inputs.scales");
        }
      return std::nullopt;
    }
    case kairos_v1_Envelope_event_tag:
      if (!in_range(raw_enum(e.message.event.kind), _kairos_v1_EventKind_MIN, _kairos_v1_EventKind_MAX))
        return bad("event.kind");
      return std::nullopt;
    case kairos_v1_Envelope_ack_tag:
      if (e.message.ack.state < -1 || e.message.ack.state > 1) return bad("ack.state");
      return std::nullopt;
    case kairos_v1_Envelope_mesh_state_tag: {
      const auto& m = e.message.mesh_state;
      if (!finite(m.z) || !finite(m.coherence) || !finite(m.agreement)) return bad("mesh_state");
      if (!in_range(raw_enum(m.mode), _kairos_v1_MeshMode_MIN, _kairos_v1_MeshMode_MAX)) return bad("mesh_state.mode");
      return std::nullopt;
    }
    case kairos_v1_Envelope_result_tag: {
      const auto& r = e.message.result;
      if (r.job_id == 0 || r.attempt == 0) return bad("result: job id or attempt 0");
      if (!in_range(raw_enum(r.status), kairos_v1_JobStatus_JOB_OK, _kairos_v1_JobStatus_MAX)) return bad("result.status");
      return std::nullopt;
    }
    case kairos_v1_Envelope_alert_tag:
      if (e.message.alert.priority > 4) return bad("alert.priority");
      return std::nullopt;
    case kairos_v1_Envelope_ball_head_tag:
      if (e.message.ball_head.hash.size != 32) return bad("ball_head.hash");
      return std::nullopt;
    case kairos_v1_Envelope_ball_delivery_tag:
      if (e.message.ball_delivery.has_entry && e.message.ball_delivery.entry.hash.size != 32)
        return bad("ball_delivery.entry.hash");
      return std::nullopt;
    case kairos_v1_Envelope_command_tag: {
      // A rekey carries a 32-byte key wrapped (RFC 3394: 40 bytes) for a generation above the provisioned 0.
      const auto& c = e.message.command;
      if (c.which_action == kairos_v1_Command_rekey_tag &&
          (c.action.rekey.generation == 0 || c.action.rekey.wrapped_key.size != 40))
        return bad("command.rekey");
      return std::nullopt;
    }
    case kairos_v1_Envelope_gateway_state_tag:
    case kairos_v1_Envelope_ctl_request_tag: {
      const auto& r = e.message.ctl_request;
      if (r.which_verb == kairos_v1_ControlRequest_ball_tag) {
        const auto& b = r.verb.ball;
        if (!in_range(raw_enum(b.verb), _kairos_v1_BallVerb_MIN, _kairos_v1_BallVerb_MAX)) return bad("ball.verb");
        if (!in_range(raw_enum(b.level), _kairos_v1_BallAck_MIN, _kairos_v1_BallAck_MAX)) return bad("ball.level");
      }
      return std::nullopt;
    }
    case kairos_v1_Envelope_ctl_response_tag:
      return std::nullopt;
    case kairos_v1_Envelope_sector_summary_tag: {
      const auto& m = e.message.sector_summary;
      if (!name_ok(m.sector) || !name_ok(m.gateway)) return bad("sector_summary names");
      if (!in_range(raw_enum(m.mode), _kairos_v1_MeshMode_MIN, _kairos_v1_MeshMode_MAX)) return bad("sector_summary.mode");
      if (m.period_ms == 0 || m.period_ms > 3'600'000) return bad("sector_summary.period_ms");
      if (!m.has_total) return bad("sector_summary: no total");
      if (auto why = group_problem(m.total)) return bad("sector_summary.total." + *why);
      return std::nullopt;
    }
    case kairos_v1_Envelope_cluster_summary_tag: {
      const auto& m = e.message.cluster_summary;
      if (!name_ok(m.sector) || !m.has_cluster || !name_ok(m.cluster.name)) return bad("cluster_summary names");
      if (auto why = group_problem(m.cluster)) return bad("cluster_summary." + *why);
      return std::nullopt;
    }
    default:
      return bad("no message");
  }
}

bool kind_matches(TopicKind kind, const Envelope& env) {
  switch (kind) {
    case TopicKind::birth: return env.which_message == kairos_v1_Envelope_birth_tag;
    case TopicKind::state: return env.which_message == kairos_v1_Envelope_state_tag;
    case TopicKind::hb: return env.which_message == kairos_v1_Envelope_heartbeat_tag;
    case TopicKind::phase: return env.which_message == kairos_v1_Envelope_phase_tag;
    case TopicKind::event: return env.which_message == kairos_v1_Envelope_event_tag;
    case TopicKind::ack: return env.which_message == kairos_v1_Envelope_ack_tag;
    case TopicKind::result: return env.which_message == kairos_v1_Envelope_result_tag;
    case TopicKind::alert: return env.which_message == kairos_v1_Envelope_alert_tag;
    case TopicKind::cmd: return env.which_message == kairos_v1_Envelope_command_tag;
    case TopicKind::mesh_state: return env.which_message == kairos_v1_Envelope_mesh_state_tag;
    case TopicKind::gw_state: return env.which_message == kairos_v1_Envelope_gateway_state_tag;
    case TopicKind::ctl_req: return env.which_message == kairos_v1_Envelope_ctl_request_tag;
    case TopicKind::ctl_resp: return env.which_message == kairos_v1_Envelope_ctl_response_tag;
    case TopicKind::ball_head: return env.which_message == kairos_v1_Envelope_ball_head_tag;
    case TopicKind::ball_to: return env.which_message == kairos_v1_Envelope_ball_delivery_tag;
    case TopicKind::sector_summary: return env.which_message == kairos_v1_Envelope_sector_summary_tag;
    case TopicKind::cluster_summary: return env.which_message == kairos_v1_Envelope_cluster_summary_tag;
    case TopicKind::sector_req: return env.which_message == kairos_v1_Envelope_ctl_request_tag;
    case TopicKind::sector_resp: return env.which_message == kairos_v1_Envelope_ctl_response_tag;
    default: return false;
  }
}

}  // namespace kairos

namespace kairos {

Bytes Signer::seal(std::string_view topic, Envelope& env, const Key& key, std::int64_t sent_at_us) {
  return seal_reserved(topic, env, key, next_++, sent_at_us);
}

Bytes Signer::seal_reserved(std::string_view topic, Envelope& env, const Key& key, std::uint64_t seq,
                            std::int64_t sent_at_us) const {
  set_string(env.sender, sender_);
  env.session_id = session_;
  env.seq = seq;
  env.sent_at_us = sent_at_us;
  return kairos::seal(topic, env, key);
}

}  // namespace kairos

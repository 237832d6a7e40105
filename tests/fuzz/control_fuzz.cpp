// libFuzzer target for control RPC requests (docs/PROTOCOL.md, Control RPC):
// the input is an encoded ControlRequest. It is put in an operator's envelope,
// sealed with the operator key on _ctl/req and opened as the gateway opens
// it, so the request's decoding and validation run past the MAC. The
// gateway's verbs are Gateway methods that need its broker link and
// database; what they hand the request to without either is driven here
// with the same arguments: the schedule strategy and quorum, job targets,
// the commands a request makes the gateway send to nodes, and the Ball play.
// Invariants: no crash, no sanitizer report; a request is dropped only for
// what it holds; an accepted one keeps every check of envelope_checks.h;
// every command built from it opens at a node without truncating the
// request; a Ball verb appends one chained entry or changes nothing.
#include <pb_encode.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "common/core/ball.h"
#include "common/core/keywrap.h"
#include "gateway/schedule/scheduler.h"
#include "tests/fuzz/envelope_checks.h"

using namespace kairos;
using namespace kairos::fuzz;

namespace {

constexpr std::int64_t kNow = 1'700'000'000'000'000;  // us since the epoch

// An operator's envelope around the encoded request: header fields, then
// field 19 (ctl_request), length-delimited.
Bytes request_body(ByteView request) {
  static const Bytes header = encode_envelope(*make_envelope("ops", 0x5eed, 7, kNow));
  Bytes body = header;
  body.push_back(0x9a);
  body.push_back(0x01);
  for (std::size_t n = request.size();; n >>= 7) {
    body.push_back(static_cast<std::uint8_t>(n < 0x80 ? n : (n & 0x7f) | 0x80));
    if (n < 0x80) break;
  }
  body.insert(body.end(), request.begin(), request.end());
  return body;
}


// A command the gateway sends to a node for this request, signed with the
// node's key on its cmd topic: the node must be able to open it.
void check_sent(const kairos_v1_Command& cmd) {
  auto env = make_envelope("gw1", 0x5eed, 1, kNow);
  env->which_message = kairos_v1_Envelope_command_tag;
  env->message.command = cmd;
  const auto topic = topic_of(TopicKind::cmd);
  auto r = open(topic, seal(topic, *env, fuzz_key()), fuzz_key());
  check_opened(r);
  require(bool(r), "a command built from a request does not open at the node", r.detail);
  check_accepted(topic, *r.env);
}

template <std::size_t N>
void require_fits(const char (&dst)[N], std::string_view src, std::string_view what) {
  require(src.size() < N && std::string_view(dst) == src, "request field truncated on its way to a node", what);
}

void schedule(const kairos_v1_ScheduleRequest& req) {
  auto strategy = gw::parse_strategy(req.strategy);
  if (!strategy) return;  // refused by the gateway
  require(gw::parse_strategy(gw::to_string(*strategy)) == strategy, "strategy name does not read back");
  gw::Quorum q;
  for (float v : {req.ready_quorum, req.conflict_max, req.transit_wait})
    if (!(v >= 0 && v <= 1)) return;
  if (req.ready_quorum > 0) q.ready = req.ready_quorum;
  if (req.conflict_max > 0) q.conflict = req.conflict_max;
  if (req.transit_wait > 0) q.transit = req.transit_wait;
  for (std::size_t ready = 0; ready <= 20; ready += 5)
    require(std::string_view(gw::to_string(gw::quorum(20, ready, 20 - ready, 0, q))) != "?", "quorum verdict");
  // Every target in exactly one wave, whatever the strategy.
  static const std::vector<std::pair<std::string, gw::TargetView>> targets{
      {"n1", {.cluster = "c", .device_class = 1}}, {"n2", {.cluster = "c", .device_class = 4}},
      {"n3", {.cluster = "d", .device_class = 6}}, {"n4", {.cluster = "e", .device_class = 0}}};
  std::vector<int> seen(targets.size());
  for (const auto& w : gw::make_waves(*strategy, targets, q))
    for (auto i : w.members) ++seen.at(i);
  require(std::all_of(seen.begin(), seen.end(), [](int n) { return n == 1; }), "a target not in exactly one wave");
  if (!req.has_command || req.command.which_action == 0 || req.command.which_action == kairos_v1_Command_ping_tag)
    return;
  kairos_v1_Command cmd = req.command;
  cmd.command_id = 1;
  cmd.execute_at_us = kNow + 500'000;
  cmd.late_tolerance_ms = req.late_tolerance_ms ? req.late_tolerance_ms : 20;
  check_sent(cmd);
}

void job(std::string_view handler, std::string_view to, ByteView payload, std::uint32_t timeout_ms) {
  if (!valid_name(handler) || !valid_job_target(to)) return;  // refused by the gateway
  kairos_v1_Command cmd = kairos_v1_Command_init_zero;
  cmd.which_action = kairos_v1_Command_job_tag;
  auto& j = cmd.action.job;
  j.job_id = 1;
  j.attempt = 1;
  set_string(j.handler, handler);
  require_fits(j.handler, handler, "job handler");
  require(payload.size() <= sizeof j.payload.bytes, "request field truncated on its way to a node", "job payload");
  j.payload.size = static_cast<pb_size_t>(payload.size());
  std::memcpy(j.payload.bytes, payload.data(), payload.size());
  j.timeout_ms = timeout_ms;
  check_sent(cmd);
}

// The play a Ball verb other than hut works on: Ana, Ben and Cy, one
// objective, Ana's ball-mode entry 1 handing the Ball to Ben.
const ball::Session& base_play() {
  static const ball::Session play = [] {
    ball::Session s("s1", "00112233aabbccdd", {"Ana", "Ben", "Cy"}, {"ship it"}, "operator", kNow);
    auto o = s.say("Ana", "MM: the plan\n->Ben", kNow + 1);
    require(o.appended && s.holder() == "Ben", "the base play", o.error);
    return s;
  }();
  return play;
}

// A play after a verb: its lineage verifies and replays to the same head and holder.
void check_play(const ball::Session& s, std::size_t before, const ball::Session::Outcome& o) {
  require(o.appended.has_value() + !o.error.empty() + o.conversational == 1,
          "a Ball verb not exactly one of appended, refused and conversational");
  const auto& l = s.lineage();
  require(l.size() == before + (o.appended ? 1 : 0), "lineage length after a Ball verb");
  require(!ball::verify(l, l.back().seq, l.back().hash), "lineage does not verify");
  ball::Break why;
  auto again = ball::Session::replay(l, why);
  require(again && again->lineage().back().hash == l.back().hash && again->holder() == s.holder() &&
              again->closed() == s.closed(),
          "lineage does not replay to the same play", why.reason);
}

void ball_verb(const kairos_v1_BallRequest& req) {
  const int verb = raw_enum(req.verb);
  if (verb == kairos_v1_BallVerb_BALL_LIST || !valid_name(req.session)) return;
  if (verb == kairos_v1_BallVerb_BALL_HUT) {
    std::vector<std::string> peers(req.peers, req.peers + req.peers_count);
    std::vector<std::string> objectives(req.objectives, req.objectives + req.objectives_count);
    if (!ball::check_hut(peers, objectives).empty()) return;
    require(ball::check_node_peers(peers, {}).empty(), "a hut of people only refused for its nodes");
    const std::string author = req.as[0] ? req.as : "operator";
    if (!valid_name(author)) return;
    ball::Session s(req.session, "00112233aabbccdd", peers, objectives, author, kNow);
    require(s.holder() == peers.front() && s.lineage().size() == 1 && s.objectives() == objectives,
            "a new play: the first peer holds the Ball, one genesis entry");
    check_play(s, 0, {.appended = s.lineage().front()});
    return;
  }
  ball::Session s = base_play();
  const std::string as = req.as;
  if (!valid_name(as) || !s.is_peer(as)) return;
  const std::size_t before = s.lineage().size();
  ball::Session::Outcome o;
  switch (verb) {
    case kairos_v1_BallVerb_BALL_SAY: {
      const std::string to = req.to, text = req.text;
      const bool ball_mode = text.rfind("MM:", 0) == 0;
      if (ball_mode != to.empty() || (!to.empty() && (!s.is_peer(to) || to == as))) return;
      o = s.say(as, text, kNow + 2);
      break;
    }
    case kairos_v1_BallVerb_BALL_ACK: {
      const int level = raw_enum(req.level);
      if (level < static_cast<int>(ball::AckLevel::read) || level > static_cast<int>(ball::AckLevel::implement)) return;
      o = s.ack(as, req.seq, static_cast<ball::AckLevel>(level), kNow + 2);
      break;
    }
    case kairos_v1_BallVerb_BALL_DONE: o = s.done(as, req.objective, kNow + 2); break;
    default: return;
  }
  check_play(s, before, o);
}

void verbs(const kairos_v1_ControlRequest& req) {
  const auto& v = req.verb;
  switch (req.which_verb) {
    case kairos_v1_ControlRequest_schedule_tag: return schedule(v.schedule);
    case kairos_v1_ControlRequest_delegate_tag:
      if (v.delegate.timeout_ms > 3'600'000 || v.delegate.redundancy > 8 || v.delegate.retries > 100) return;
      for (pb_size_t i = 0; i < v.delegate.needs_count; ++i) (void)valid_name(v.delegate.needs[i]);
      return job(v.delegate.handler, v.delegate.to, ByteView(v.delegate.payload.bytes, v.delegate.payload.size),
                 v.delegate.timeout_ms ? v.delegate.timeout_ms : 10'000);
    case kairos_v1_ControlRequest_ask_tag:
      if (v.ask.sample > 1000 || v.ask.timeout_ms > 600'000) return;
      return job(v.ask.handler[0] ? v.ask.handler : "read", v.ask.to, as_bytes(v.ask.question),
                 v.ask.timeout_ms ? v.ask.timeout_ms : 5000);
    case kairos_v1_ControlRequest_broadcast_tag: {
      kairos_v1_Command cmd = kairos_v1_Command_init_zero;
      cmd.which_action = kairos_v1_Command_notice_tag;
      set_string(cmd.action.notice, v.broadcast.text);
      require_fits(cmd.action.notice, v.broadcast.text, "broadcast text");
      return check_sent(cmd);
    }
    case kairos_v1_ControlRequest_heal_tag: {
      if (!valid_name(v.heal.node)) return;
      kairos_v1_Command cmd = kairos_v1_Command_init_zero;
      cmd.which_action = kairos_v1_Command_heal_tag;
      cmd.action.heal = true;
      return check_sent(cmd);
    }
    case kairos_v1_ControlRequest_ball_tag: return ball_verb(v.ball);
    case kairos_v1_ControlRequest_rotate_key_tag: {
      if (!valid_name(v.rotate_key.node) || v.rotate_key.timeout_ms > 600'000) return;
      // The rekey the gateway sends: the next key wrapped for this node and
      // generation, under its current one; the node unwraps it back.
      Key next;
      next.bytes.fill(0x5a);
      const Key kek = rekey_kek(fuzz_key(), v.rotate_key.node, 1);
      auto wrapped = wrap_key(kek, next);
      kairos_v1_Command cmd = kairos_v1_Command_init_zero;
      cmd.which_action = kairos_v1_Command_rekey_tag;
      cmd.action.rekey.generation = 1;
      cmd.action.rekey.wrapped_key.size = static_cast<pb_size_t>(wrapped.size());
      std::copy(wrapped.begin(), wrapped.end(), cmd.action.rekey.wrapped_key.bytes);
      auto back = unwrap_key(kek, ByteView(cmd.action.rekey.wrapped_key.bytes, cmd.action.rekey.wrapped_key.size));
      require(back && back->bytes == next.bytes, "a wrapped key does not unwrap back");
      return check_sent(cmd);
    }
    default: return;  // status, nodes, conflicts, jobs, breakers, freeze, resolve: answered from the gateway's state
  }
}

// Seeds: one request of each verb, as kairosctl sends them.
void write_seeds(const std::string& dir) {
  auto put = [&](const std::string& name, auto fill) {
    kairos_v1_ControlRequest req = kairos_v1_ControlRequest_init_zero;
    req.request_id = 0x0102030405060708;
    fill(req);
    Bytes buf(kairos_v1_ControlRequest_size);
    pb_ostream_t out = pb_ostream_from_buffer(buf.data(), buf.size());
    require(pb_encode(&out, kairos_v1_ControlRequest_fields, &req), "seed encodes", PB_GET_ERROR(&out));
    buf.resize(out.bytes_written);
    write_seed(dir, name, buf);
  };
  using R = kairos_v1_ControlRequest;
  put("status", [](R& r) { r.which_verb = kairos_v1_ControlRequest_status_tag; });
  put("nodes", [](R& r) {
    r.which_verb = kairos_v1_ControlRequest_nodes_tag;
    r.verb.nodes.limit = 40;
    set_string(r.verb.nodes.cluster, "c");
    set_string(r.verb.nodes.state, "online");
  });
  put("schedule", [](R& r) {
    r.which_verb = kairos_v1_ControlRequest_schedule_tag;
    auto& s = r.verb.schedule;
    s.has_command = true;
    s.command.which_action = kairos_v1_Command_set_output_tag;
    set_string(s.command.action.set_output.output, "tone");
    s.command.action.set_output.has_z = true;
    s.command.action.set_output.z = {0.5f, 0.5f};
    s.command.action.set_output.c = 1;
    s.command.action.set_output.hold_ms = 1000;
    s.in_ms = 500;
    set_string(s.targets, "cluster:c");
    set_string(s.strategy, "wave");
    s.window_ms = 1000;
    s.ready_quorum = 0.9f;
  });
  put("heal", [](R& r) {
    r.which_verb = kairos_v1_ControlRequest_heal_tag;
    set_string(r.verb.heal.node, "n1");
  });
  put("forget", [](R& r) {
    r.which_verb = kairos_v1_ControlRequest_forget_tag;
    set_string(r.verb.forget.node, "n1");
  });
  put("conflicts", [](R& r) {
    r.which_verb = kairos_v1_ControlRequest_conflicts_tag;
    r.verb.conflicts.limit = 5;
    r.verb.conflicts.queue = true;
  });
  put("delegate", [](R& r) {
    r.which_verb = kairos_v1_ControlRequest_delegate_tag;
    auto& d = r.verb.delegate;
    set_string(d.handler, "sha");
    d.needs_count = 1;
    set_string(d.needs[0], "job-sha");
    set_string(d.to, "cluster:c");
    d.payload.size = 3;
    std::memcpy(d.payload.bytes, "abc", 3);
    d.timeout_ms = 1000;
    d.redundancy = 3;
    d.has_retries = true;
    d.retries = 2;
    d.wait = true;
  });
  put("jobs", [](R& r) {
    r.which_verb = kairos_v1_ControlRequest_jobs_tag;
    r.verb.jobs.job_id = 4;
  });
  put("breakers", [](R& r) { r.which_verb = kairos_v1_ControlRequest_breakers_tag; });
  put("broadcast", [](R& r) {
    r.which_verb = kairos_v1_ControlRequest_broadcast_tag;
    set_string(r.verb.broadcast.text, "maintenance at noon");
    r.verb.broadcast.ack = true;
    r.verb.broadcast.window_ms = 2000;
    set_string(r.verb.broadcast.targets, "class:A");
  });
  put("freeze", [](R& r) {
    r.which_verb = kairos_v1_ControlRequest_freeze_tag;
    set_string(r.verb.freeze.scope, "all");
    r.verb.freeze.thaw = true;
    r.verb.freeze.confirm = true;
  });
  put("ask", [](R& r) {
    r.which_verb = kairos_v1_ControlRequest_ask_tag;
    set_string(r.verb.ask.question, "temperature?");
    r.verb.ask.sample = 5;
    set_string(r.verb.ask.handler, "read");
    set_string(r.verb.ask.to, "class:A");
  });
  put("rotate-key", [](R& r) {
    r.which_verb = kairos_v1_ControlRequest_rotate_key_tag;
    set_string(r.verb.rotate_key.node, "n1");
    r.verb.rotate_key.timeout_ms = 15'000;
  });
  put("resolve", [](R& r) {
    r.which_verb = kairos_v1_ControlRequest_resolve_tag;
    r.verb.resolve.task = 3;
    set_string(r.verb.resolve.note, "checked the wiring");
  });
  auto ball = [&](const std::string& name, kairos_v1_BallVerb verb, auto fill) {
    put("ball-" + name, [&](R& r) {
      r.which_verb = kairos_v1_ControlRequest_ball_tag;
      r.verb.ball.verb = verb;
      set_string(r.verb.ball.session, "s1");
      fill(r.verb.ball);
    });
  };
  using B = kairos_v1_BallRequest;
  ball("hut", kairos_v1_BallVerb_BALL_HUT, [](B& b) {
    set_string(b.as, "Ana");
    b.peers_count = 3;
    set_string(b.peers[0], "Ana");
    set_string(b.peers[1], "Ben");
    set_string(b.peers[2], "Cy");
    b.objectives_count = 2;
    set_string(b.objectives[0], "ship it");
    set_string(b.objectives[1], "write it down");
  });
  ball("say", kairos_v1_BallVerb_BALL_SAY, [](B& b) {
    set_string(b.as, "Ben");
    set_string(b.text, "MM: done my part\nAction Items:\n- Cy reviews\n");
  });
  ball("handoff", kairos_v1_BallVerb_BALL_SAY, [](B& b) {
    set_string(b.as, "Ben");
    set_string(b.text, "MM: over to you\n->Cy");
  });
  ball("talk", kairos_v1_BallVerb_BALL_SAY, [](B& b) {
    set_string(b.as, "Ana");
    set_string(b.to, "Cy");
    set_string(b.text, "are you there?");
  });
  ball("ack", kairos_v1_BallVerb_BALL_ACK, [](B& b) {
    set_string(b.as, "Cy");
    b.seq = 1;
    b.level = kairos_v1_BallAck_ACK_CONCUR;
  });
  ball("done", kairos_v1_BallVerb_BALL_DONE, [](B& b) {
    set_string(b.as, "Ben");
    b.objective = 1;
  });
  ball("show", kairos_v1_BallVerb_BALL_SHOW, [](B& b) { b.from_seq = 1; });
  ball("list", kairos_v1_BallVerb_BALL_LIST, [](B&) {});
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) { return seeds_if_asked(write_seeds); }

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto topic = topic_of(TopicKind::ctl_req);
  const Bytes body = request_body(ByteView(data, size));
  auto r = open(topic, seal_body(topic, body, fuzz_key()), fuzz_key());
  check_opened(r);
  if (body.size() <= kMaxBody)
    require(r.drop == DropReason::oversized_field || r.drop == DropReason::malformed_body ||
                r.drop == DropReason::invalid_value || !r.drop,
            "a request dropped for its frame", r.detail);
  if (!r) return 0;
  check_accepted(topic, *r.env);
  require(kind_matches(TopicKind::ctl_req, *r.env), "a request that is not a ControlRequest");
  verbs(r.env->message.ctl_request);
  return 0;
}

// What reaches a node from the gateway (docs/DESIGN.md 3.6, 3.7, 5.4): commands
// through the intake, run, held or refused and acknowledged; jobs; the
// gateway's and the mesh's state.
#include "firmware/node.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <type_traits>

#include "common/core/utf8.h"
#include "common/io/clock.h"
#include "common/io/files.h"
#include "common/io/log.h"
#include "common/io/process.h"
#include "firmware/drivers/capture.h"
#include "firmware/drivers/gpio_input.h"
#include "firmware/drivers/pipe.h"
#include "firmware/drivers/synthetic.h"
#include "firmware/reports.h"
#include "firmware/drivers/sysfs_sensor.h"

namespace kairos::node {

void Node::on_message(const Inbound& msg) {
  auto drop = [&](DropReason reason, const std::string& detail) {
    rx_drops_.add(reason);
    wire_log_.write(log::Level::warn, "node",
                    "dropped frame on " + log_safe(msg.topic) + ": " + std::string(to_string(reason)) + " (" +
                        log_safe(detail, 160) + ")",
                    mono_us());
  };
  for (auto& slot : inputs_) {
    if (slot.lines && msg.topic == slot.config.pipe.topic) {
      slot.lines->feed(std::string_view(reinterpret_cast<const char*>(msg.payload.data()), msg.payload.size()));
      return;
    }
  }
  auto t = parse_topic(msg.topic);
  if (t && t->kind == TopicKind::mesh_state && broadcast_key_) return on_mesh_state(msg);
  if (t && t->kind == TopicKind::gw_state) return on_gateway_state(msg);
  if (!t || t->kind != TopicKind::cmd || t->name != config_.id) return drop(DropReason::bad_topic, "not our command topic");
  // t2 is the frame's arrival (Paho's callback), not when the loop got to it.
  const std::int64_t received = wall_us() - (mono_us() - msg.received_mono_us);
  auto r = intake_.receive(msg.topic, msg.payload, received, quarantined_);
  switch (r.kind) {
    case CommandIntake::Result::Kind::dropped:
      wire_log_.write(log::Level::warn, "node",
                      "dropped frame on " + log_safe(msg.topic) + ": " + std::string(to_string(r.drop)) + " (" +
                          log_safe(r.detail, 160) + ")",
                      mono_us());
      if (r.breach) cat1(r.drop == DropReason::bad_mac ? "command with a bad MAC" : r.detail + " (" + std::string(to_string(r.drop)) + ")");
      return;
    case CommandIntake::Result::Kind::refused: return refuse(r.env->message.command, r.detail, received);
    case CommandIntake::Result::Kind::held: {
      const auto& cmd = r.env->message.command;
      if (cmd.which_action == kairos_v1_Command_set_output_tag) start_output_at(cmd);
      return ack(cmd, kAckTransit, "held", received, 0);
    }
    case CommandIntake::Result::Kind::run: return perform(*r.env, received);
  }
}

void Node::cat1(const std::string& why) {
  log::error("node", "CAT-1: " + why + ": quarantined until healed");
  bool was = quarantined_;
  quarantined_ = true;
  for (auto& o : outputs_) o.output->safe_state(mono_us());
  publish_event(kairos_v1_EventKind_CAT1, "command", why);
  if (!was) publish_heartbeat(mono_us());  // QUARANTINED is known at once
}

void Node::ack(const kairos_v1_Command& cmd, int state, const std::string& detail, std::int64_t received_us,
               std::int64_t executed_us) {
  publish(TopicKind::ack, *make_ack(cmd, state, detail, received_us, executed_us), 1, false);
}

void Node::refuse(const kairos_v1_Command& cmd, const std::string& why, std::int64_t received_us) {
  ack(cmd, kAckConflict, why, received_us, 0);
  // A result without a job id or attempt would be dropped by every receiver.
  const auto& job = cmd.action.job;
  if (cmd.which_action == kairos_v1_Command_job_tag && job.job_id != 0 && job.attempt != 0)
    publish_result(job_outcome(job, kairos_v1_JobStatus_JOB_REFUSED, why));
}

void Node::publish_result(const JobOutcome& o) {
  log::info("node", "job " + std::to_string(o.job_id) + "." + std::to_string(o.attempt) + ": " +
                        (o.status == kairos_v1_JobStatus_JOB_OK        ? "ok"
                         : o.status == kairos_v1_JobStatus_JOB_TIMEOUT ? "timeout"
                         : o.status == kairos_v1_JobStatus_JOB_REFUSED ? "refused"
                                                                       : "error") +
                        " in " + std::to_string(o.duration_ms) + " ms" + (o.error.empty() ? "" : " (" + printable(o.error) + ")"));
  publish(TopicKind::result, *result_envelope(o), 1, false);
}

bool Node::force_output(std::string_view name, const SourceValue& v, std::uint32_t hold_ms) {
  for (auto& o : outputs_) {
    if (o.config.name != name) continue;
    o.forced = v;
    o.forced_until_us = mono_us() + static_cast<std::int64_t>(hold_ms ? hold_ms : 1000) * 1000;
    return true;
  }
  return false;
}

void Node::start_output_at(const kairos_v1_Command& cmd) {
  // An output that can start at an instant (a speaker, on its audio clock)
  // is told now, ahead of its buffer; the command still runs at execute_at
  // and holds the value from there as any set_output does.
  if (quarantined_ || frozen_) return;
  const auto& so = cmd.action.set_output;
  for (auto& o : outputs_)
    if (o.config.name == so.output && o.ready && o.output->start_at(cmd.execute_at_us, {so.z.re, so.z.im, so.c}))
      log::info("node", "output " + o.config.name + " starts on its own clock at " + std::to_string(cmd.execute_at_us));
}

JobOutcome Node::read_job(const kairos_v1_Job& job) const {
  std::string_view name(reinterpret_cast<const char*>(job.payload.bytes), job.payload.size);
  while (!name.empty() && std::string_view(" \t\r\n").find(name.back()) != std::string_view::npos) name.remove_suffix(1);
  for (const auto& slot : inputs_) {
    if (slot.config.name != name) continue;
    // A failing input has no current sample: absent, never a stale value.
    if (slot.failed) return job_outcome(job, kairos_v1_JobStatus_JOB_ERROR, "input '" + slot.config.name + "' is failing");
    if (slot.last_sample_us < 0) return job_outcome(job, kairos_v1_JobStatus_JOB_ERROR, "input '" + slot.config.name + "' has no sample yet");
    char text[48];
    if (slot.last_b != 0.0) std::snprintf(text, sizeof text, "%.6g %.6g", slot.last_a, slot.last_b);
    else std::snprintf(text, sizeof text, "%.6g", slot.last_a);
    auto o = job_outcome(job, kairos_v1_JobStatus_JOB_OK);
    o.output = text;
    return o;
  }
  return job_outcome(job, kairos_v1_JobStatus_JOB_ERROR, "no input '" + printable(name) + "'");
}

JobOutcome Node::actuate_job(const kairos_v1_Job& job) {
  std::string why;
  auto req = parse_actuate(std::string_view(reinterpret_cast<const char*>(job.payload.bytes), job.payload.size), why);
  if (!req) return job_outcome(job, kairos_v1_JobStatus_JOB_ERROR, why);
  if (!force_output(req->output, {req->re, req->im, req->c}, req->hold_ms))
    return job_outcome(job, kairos_v1_JobStatus_JOB_ERROR, "no output '" + printable(req->output) + "' on this node");
  return job_outcome(job, kairos_v1_JobStatus_JOB_OK);
}

void Node::run_job(const kairos_v1_Command& cmd, std::int64_t received) {
  const auto& job = cmd.action.job;
  if (job.job_id == 0 || job.attempt == 0) return refuse(cmd, "a job needs a job_id and an attempt above 0", received);
  if (frozen_) return refuse(cmd, "frozen: no jobs until thaw", received);
  const std::string_view name = job.handler;
  std::optional<JobOutcome> answer;  // a built-in's answer, or a handler that did not start
  auto handler = std::find_if(config_.jobs.begin(), config_.jobs.end(), [&](const auto& j) { return j.name == name; });
  if (handler != config_.jobs.end()) answer = jobs_.start(*handler, job, mono_us());
  else if (name == "read") answer = read_job(job);
  else if (name == "actuate") answer = actuate_job(job);
  else {
    std::string why = "no handler '" + printable(name) + "'";
    refuse(cmd, why, received);
    if (cmd.mandatory) cat1("mandatory command outside this node's capabilities: " + why);
    return;
  }
  if (answer && answer->status == kairos_v1_JobStatus_JOB_REFUSED) return refuse(cmd, answer->error, received);
  ack(cmd, kAckReady, answer ? "" : "started", received, wall_us());
  if (answer) publish_result(*answer);
}

std::int64_t Node::run_held(std::int64_t now_mono_us) {
  while (intake_.held()) {
    std::int64_t due_mono = now_mono_us + (intake_.next_due_us() - wall_us());
    if (due_mono - now_mono_us > kSpinUs) return due_mono;
    // Within the last stretch: spin to the exact microsecond, then run.
    while (wall_us() < intake_.next_due_us()) {
    }
    std::int64_t received = 0;
    auto env = intake_.take_due(wall_us(), &received);
    perform(*env, received);  // the READY ack says when it arrived and when it ran
    now_mono_us = mono_us();
  }
  return INT64_MAX;
}

void Node::perform(const Envelope& env, std::int64_t received) {
  const auto& cmd = env.message.command;
  constexpr int kReady = kAckReady, kConflict = kAckConflict;
  // In quarantine only heal is obeyed, and config_reload: it validates the
  // file and starts the node over, the way out of a config changed under it.
  if (quarantined_ && cmd.which_action != kairos_v1_Command_heal_tag &&
      cmd.which_action != kairos_v1_Command_config_reload_tag)
    return refuse(cmd, "quarantined: only heal and config_reload are obeyed", received);
  switch (cmd.which_action) {
    case kairos_v1_Command_rebirth_tag:
      wire_log_.write(log::Level::info, "node", "rebirth requested by " + std::string(env.sender), mono_us());
      publish_birth();
      return ack(cmd, kReady, "", received, wall_us());
    case kairos_v1_Command_ping_tag:
      // t2 = received, t3 = now: the gateway's clock filter needs both (docs/DESIGN.md 5.1)
      return ack(cmd, kReady, "pong", received, wall_us());
    case kairos_v1_Command_set_output_tag: {
      const auto& so = cmd.action.set_output;
      if (force_output(so.output, {so.z.re, so.z.im, so.c}, so.hold_ms)) return ack(cmd, kReady, "", received, wall_us());
      std::string why = "no output '" + std::string(so.output) + "' on this node";
      ack(cmd, kConflict, why, received, 0);
      if (cmd.mandatory) cat1("mandatory command outside this node's capabilities: " + why);
      return;
    }
    case kairos_v1_Command_job_tag: return run_job(cmd, received);
    case kairos_v1_Command_rekey_tag: return rekey(cmd, received);  // firmware/rekey.cpp
    case kairos_v1_Command_freeze_tag:
      frozen_ = true;
      for (auto& o : outputs_) o.output->safe_state(mono_us());
      wire_log_.write(log::Level::info, "node", "frozen by " + std::string(env.sender), mono_us());
      return ack(cmd, kReady, "frozen", received, wall_us());
    case kairos_v1_Command_thaw_tag:
      frozen_ = false;
      wire_log_.write(log::Level::info, "node", "thawed by " + std::string(env.sender), mono_us());
      return ack(cmd, kReady, "", received, wall_us());
    case kairos_v1_Command_notice_tag:
      // An operator's broadcast (kairosctl broadcast): logged, acknowledged.
      wire_log_.write(log::Level::info, "node", "notice: " + log_safe(cmd.action.notice, 256), mono_us());
      return ack(cmd, kReady, "notice", received, wall_us());
    case kairos_v1_Command_heal_tag:
      if (quarantined_) log::info("node", "healed by " + std::string(env.sender) + ": leaving quarantine");
      quarantined_ = false;
      publish_event(kairos_v1_EventKind_CAT1, "heal", "left quarantine");
      return ack(cmd, kReady, "healed", received, wall_us());
    case kairos_v1_Command_config_reload_tag: {
      // Validated first: a bad file is refused and the running config stays.
      try {
        auto next = load_node_config(config_path_, boards_override_);
        (void)next;
      } catch (const std::exception& e) {
        log::warn("node", std::string("config_reload refused: ") + e.what());
        return ack(cmd, kConflict, std::string("config refused: ") + e.what(), received, 0);
      }
      ack(cmd, kReady, "reloading", received, wall_us());
      restart_requested_ = true;  // a clean stop, then the process starts over on the new file
      return;
    }
    default:
      ack(cmd, kConflict, "unknown command", received, 0);
      if (cmd.mandatory) cat1("mandatory command this firmware does not know");
  }
}

void Node::on_gateway_state(const Inbound& msg) {
  // Verified with the broadcast key when the node has it; without it the
  // frame is only a hint for when to send held frames, never a command.
  EnvelopePtr env;
  if (broadcast_key_) {
    auto opened = open(msg.topic, msg.payload, *broadcast_key_);
    if (!opened) {
      rx_drops_.add(*opened.drop);
      return;
    }
    env = std::move(opened.env);
  } else {
    env = peek_unverified(msg.payload);
    if (!env) return;
  }
  if (env->which_message != kairos_v1_Envelope_gateway_state_tag) return;
  bool online = env->message.gateway_state.online;
  if (online != gateway_online_)
    wire_log_.write(log::Level::info, "node", "gateway " + log_safe(env->sender) + (online ? " online" : " offline"),
                    mono_us());
  gateway_online_ = online;
}

void Node::on_mesh_state(const Inbound& msg) {
  auto opened = open(msg.topic, msg.payload, *broadcast_key_);
  if (!opened || !kind_matches(TopicKind::mesh_state, *opened.env)) {
    rx_drops_.add(opened.drop.value_or(DropReason::kind_mismatch));
    return;
  }
  const auto& env = *opened.env;
  if (mesh_guard_.check(env.sender, env.session_id, env.seq, true).drop) {
    rx_drops_.add(DropReason::replay);
    return;
  }
  const auto& m = env.message.mesh_state;
  mesh_value_ = {m.z.re, m.z.im, m.coherence};
  // A retained copy may be old: it counts as fresh only once a live one arrives.
  mesh_at_us_ = msg.retained ? -1 : msg.received_mono_us;
}

}  // namespace kairos::node

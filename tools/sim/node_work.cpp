// kairos-sim: one simulated node's work, through the node's own builders
// (firmware/reports.h, firmware/intake.h, firmware/jobs.h).
#include "tools/sim/sim.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "common/io/clock.h"
#include "common/io/log.h"
#include "firmware/jobs.h"
#include "firmware/reports.h"

namespace kairos::sim {

namespace {

// A `lying` node reports executing this much earlier than it did.
constexpr std::int64_t kLieUs = 50'000;

}  // namespace

void Simulator::deliver(std::uint32_t i, std::uint32_t slot, std::int64_t due) {
  Frame f = take(slot);
  auto& n = nodes_[i];
  if (n.crashed) {
    ++stats_.to_crashed;
    return;
  }
  const std::int64_t t0 = mono_us();
  // The node received it at the modelled instant, whenever the loop got here.
  Received rx{due + wall_off_, n.clock.node_us(due + wall_off_)};
  auto r = n.intake.receive(f.topic, f.payload, rx.node_us, false);
  switch (r.kind) {
    case node::CommandIntake::Result::Kind::dropped:
      stats_.drops.add(r.drop);
      if (log_limit_.allow(t0))
        log::warn("sim", n.id + ": dropped a command: " + std::string(to_string(r.drop)) + " (" + r.detail + ")");
      break;
    case node::CommandIntake::Result::Kind::refused: {
      const auto& cmd = r.env->message.command;
      ack(i, cmd, node::kAckConflict, r.detail, rx.node_us, 0, mono_us());
      ledger_conflict(n, cmd.command_id, rx.true_us, r.detail);
      break;
    }
    case node::CommandIntake::Result::Kind::held: {
      const auto& cmd = r.env->message.command;
      ack(i, cmd, node::kAckTransit, "held", rx.node_us, 0, mono_us());
      const std::int64_t target = n.clock.true_us(cmd.execute_at_us);
      held_.push({target - wall_off_, order_++, i, target});
      held_rx_[{i, cmd.command_id}] = rx;
      break;
    }
    case node::CommandIntake::Result::Kind::run: perform(i, *r.env, rx, wall_us()); break;
  }
  const float ms = static_cast<float>(mono_us() - t0) / 1000.0f;
  n.processing_ms = n.processing_ms == 0 ? ms : n.processing_ms + 0.05f * (ms - n.processing_ms);
}

void Simulator::perform(std::uint32_t i, const Envelope& env, Received rx, std::int64_t exec_wall) {
  auto& n = nodes_[i];
  const auto& cmd = env.message.command;
  const std::int64_t exec_mono = exec_wall - wall_off_;
  const std::int64_t exec_node = n.clock.node_us(exec_wall);
  if (cmd.which_action == kairos_v1_Command_ping_tag) {
    // t2 = arrival, t3 = reply (docs/DESIGN.md 5.1)
    ++stats_.pings;
    return ack(i, cmd, node::kAckReady, "pong", rx.node_us, node_now(n, mono_us()), mono_us());
  }
  const char* detail = "";
  switch (cmd.which_action) {
    case kairos_v1_Command_rebirth_tag: publish_birth(i, exec_mono); break;
    case kairos_v1_Command_set_output_tag: break;
    case kairos_v1_Command_freeze_tag:
      n.frozen = true;
      detail = "frozen";
      break;
    case kairos_v1_Command_thaw_tag: n.frozen = false; break;
    case kairos_v1_Command_heal_tag: detail = "healed"; break;
    case kairos_v1_Command_notice_tag: detail = "notice"; break;
    case kairos_v1_Command_job_tag: return start_job(i, cmd, rx, exec_mono);
    default: {
      const std::string why = "not supported by the simulator";
      ack(i, cmd, node::kAckConflict, why, rx.node_us, 0, exec_mono);
      ledger_conflict(n, cmd.command_id, exec_wall, why);
      return;
    }
  }
  const std::int64_t reported = n.lying ? exec_node - kLieUs : exec_node;
  ack(i, cmd, node::kAckReady, detail, rx.node_us, reported, exec_mono);
  ledger_exec(n, cmd.command_id, exec_wall, reported, rx.true_us, cmd.execute_at_us);
  if (cmd.execute_at_us == 0) {
    ++stats_.executed_now;
    return;
  }
  ++stats_.executed_held;
  const std::int64_t error = std::abs(exec_wall - n.clock.true_us(cmd.execute_at_us));
  stats_.held_error_sum_us += static_cast<double>(error);
  stats_.held_error_max_us = std::max(stats_.held_error_max_us, error);
}

void Simulator::start_job(std::uint32_t i, const kairos_v1_Command& cmd, Received rx, std::int64_t exec_mono) {
  auto& n = nodes_[i];
  const auto& job = cmd.action.job;
  const std::string handler = job.handler;
  std::string refused;
  if (handler != "echo" && handler != "hash" && handler != "sleep") refused = "no handler '" + handler + "'";
  if (n.frozen) refused = "frozen";
  if (!refused.empty()) {
    ++stats_.jobs_refused;
    ack(i, cmd, node::kAckConflict, refused, rx.node_us, 0, exec_mono);
    auto env = node::result_envelope(node::job_outcome(job, kairos_v1_JobStatus_JOB_REFUSED, refused));
    return send(i, TopicKind::result, *env, 1, false, exec_mono);
  }
  ack(i, cmd, node::kAckReady, "job started", rx.node_us, node_now(n, exec_mono), exec_mono);
  RunningJob rj{job.job_id, job.attempt, handler, Bytes(job.payload.bytes, job.payload.bytes + job.payload.size)};
  std::int64_t run_us = static_cast<std::int64_t>(opt_.job_ms * 1000);
  if (handler == "sleep") run_us = std::strtoll(std::string(rj.payload.begin(), rj.payload.end()).c_str(), nullptr, 10) * 1000;
  std::uint32_t slot;
  if (!free_jobs_.empty()) {
    slot = free_jobs_.back();
    free_jobs_.pop_back();
    jobs_[slot] = std::move(rj);
  } else {
    slot = static_cast<std::uint32_t>(jobs_.size());
    jobs_.push_back(std::move(rj));
  }
  push(exec_mono + std::max<std::int64_t>(0, run_us), Ev::job, i, slot);
}

void Simulator::finish_job(std::uint32_t i, std::uint32_t slot, std::int64_t now) {
  RunningJob rj = std::move(jobs_[slot]);
  free_jobs_.push_back(slot);
  auto& n = nodes_[i];
  if (n.crashed) return;  // it died with its work
  node::JobOutcome o;
  o.job_id = rj.job_id;
  o.attempt = rj.attempt;
  o.status = kairos_v1_JobStatus_JOB_OK;
  if (rj.handler == "hash") o.output = to_hex(sha256(rj.payload));
  else if (rj.handler == "echo") o.output.assign(rj.payload.begin(), rj.payload.end());
  // A `lying` node returns a wrong result, as a faulty or hostile node would.
  if (n.lying) o.output = "lie:" + o.output;
  o.duration_ms = static_cast<std::uint32_t>(opt_.job_ms);
  auto env = node::result_envelope(o);
  ++stats_.jobs;
  if (ledger_)
    std::fprintf(ledger_, "job %s %llu %u %lld\n", n.id.c_str(), static_cast<unsigned long long>(rj.job_id), rj.attempt,
                 static_cast<long long>(now + wall_off_));
  // A `paradox` node stamps the result 10 s before it ran the job.
  send(i, TopicKind::result, *env, 1, false, n.paradox ? now - 10'000'000 : now);
}

void Simulator::crash(std::uint32_t i, std::int64_t now) {
  auto& n = nodes_[i];
  if (n.crashed) return;
  n.crashed = true;
  n.phases.reset();
  ++stats_.crashed;
  if (!n.announced) {
    ++gone_unannounced_;
    note_announced();
  }
  if (log_limit_.allow(now)) log::info("sim", n.id + ": crashed; its Will goes out");
  // Nodes sharing a connection cannot each have an MQTT Will: the
  // simulator sends what the broker would, the offline state the node
  // sealed for this connection, after the frames already on their way.
  ++stats_.offline_states;
  queue_out(i, Frame(topic(n, TopicKind::state), state_frame(i, false, n.will_seq, now), TopicKind::state, 1, true),
            now);
}

void Simulator::heartbeat(std::uint32_t i, std::int64_t due) {
  auto& n = nodes_[i];
  if (n.crashed) return;
  const std::int64_t period = static_cast<std::int64_t>(opt_.hb_period_s * 1e6);
  const std::int64_t now = mono_us();
  push(due + period > now ? due + period : now + period, Ev::heartbeat, i);
  const auto& link = *links_[n.link];
  if (!link.connected()) return;
  if (now - due > kShedAfterUs || congested(n.link, now)) return shed();
  auto env = node::heartbeat_envelope(node::node_status(false, n.frozen, false, false),
                                     n.diverge ? divergent_hash_ : context_hash_);
  auto& h = env->message.heartbeat;
  h.processing_ms = n.processing_ms;
  h.queue_depth = static_cast<std::uint32_t>(n.intake.held());
  h.counters.frames_sent = n.sent;
  h.counters.frames_rx_dropped = n.intake.drops().total();
  h.counters.reconnects = link.counters().reconnects;
  h.counters.samples = n.samples;
  h.uptime_ms = static_cast<std::uint64_t>((now - start_mono_) / 1000);
  send(i, TopicKind::hb, *env, 0, false, now);
}

void Simulator::report_phase(std::uint32_t i, std::int64_t due) {
  auto& n = nodes_[i];
  if (n.crashed || !n.phases) return;
  const std::int64_t period = static_cast<std::int64_t>(opt_.phase_period_s * 1e6);
  const std::int64_t now = mono_us();
  push(due + period > now ? due + period : now + period, Ev::phase, i);
  // The samples since the last report, at their own 10 Hz instants.
  auto& p = *n.phases;
  for (; p.next_sample_us <= now; p.next_sample_us += kSamplePeriodUs) {
    auto r = p.input.read(p.next_sample_us);
    if (r.status != node::ReadResult::Status::sample) continue;
    p.filter.update({normalise(r.reading.x, 0.0, 1.0), std::clamp(r.reading.b, 0.0, 1.0)},
                    static_cast<double>(p.next_sample_us - start_mono_) / 1e6);
    ++n.samples;
  }
  if (!links_[n.link]->connected()) return;
  if (now - due > kShedAfterUs || congested(n.link, now)) return shed();
  const node::InputFilter main[] = {{"main", p.filter}};
  auto env = node::phase_envelope(main, 0, 0);
  send(i, TopicKind::phase, *env, 0, false, now);
}

void Simulator::publish_birth(std::uint32_t i, std::int64_t at_mono) {
  const auto& n = nodes_[i];
  node::BirthInfo b = birth_;
  b.cluster = cluster_names_[n.cluster];
  b.device_class = static_cast<kairos_v1_DeviceClass>(kairos_v1_DeviceClass_CLASS_A + n.cls);
  b.context_hash = n.diverge ? divergent_hash_ : context_hash_;
  send(i, TopicKind::birth, *node::birth_envelope(b), 1, true, at_mono);
}

void Simulator::ack(std::uint32_t i, const kairos_v1_Command& cmd, int state, const std::string& detail,
                    std::int64_t received_us, std::int64_t executed_us, std::int64_t at_mono) {
  ++stats_.acks[static_cast<std::size_t>(state + 1)];
  auto& n = nodes_[i];
  // Its seq is taken now, so it keeps its place among the node's frames;
  // make_ack and the signature follow in publish_now.
  Frame f(topic(n, TopicKind::ack), {}, TopicKind::ack, 1, false);
  f.draft =
      AckDraft{cmd.command_id, state, detail, received_us, executed_us, n.signer.take_seq(), node_now(n, at_mono)};
  queue_out(i, std::move(f), at_mono);
}

Bytes Simulator::state_frame(std::uint32_t i, bool online, std::uint64_t seq, std::int64_t at_mono) {
  // As node.cpp's state_frame: sealed with a seq set apart (the Will's) or taken now.
  const auto& n = nodes_[i];
  return node::sealed_state(topic(n, TopicKind::state), n.signer, seq, node_now(n, at_mono), online, n.key);
}

}  // namespace kairos::sim

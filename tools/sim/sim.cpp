#include "tools/sim/sim.h"

#include "common/io/session_file.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <thread>

#include "common/io/clock.h"
#include "common/io/files.h"
#include "firmware/reports.h"
#include "common/io/keygen.h"
#include "common/io/log.h"
#include "common/io/process.h"
#include "common/io/session_file.h"

namespace kairos::sim {

namespace {

constexpr const char* kFirmwareVersion = "0.1.0-sim";
// As node.cpp: the offline state sealed for the Will sits this far above the
// live counter (the gateway checks Wills apart from the live window).
constexpr std::uint64_t kWillSeqGap = 1ULL << 40;
// The last stretch before a held command's instant is spun, not slept:
// a timed wait wakes up to a few hundred us late, a spin within a few us.
constexpr std::int64_t kSpinUs = 1500;
// Work the loop does before it looks at the connections again (us).
constexpr std::int64_t kTurnUs = 1'000;
// The loop looks at the stop flag at least this often.
constexpr std::int64_t kMaxSleepUs = 50'000;
// Frames the MQTT client refused (its buffer full) are offered again this soon.
constexpr std::int64_t kRetryUs = 1'000;
// No frame is handed to the MQTT client this close before a held execution:
// a publish may wait for Paho's lock while its threads work through a burst
// (a thousand acks), and the execution behind it would run late. Real nodes
// have a client each; the simulator's shared one must not set their timing.
constexpr std::int64_t kQuietUs = 15'000;
// Frames handed to the MQTT client, per millisecond. Paho runs one send
// thread for all connections and its cost per queued command grows with
// the queue (it scans the whole command list), so the simulator offers
// frames at a pace that thread keeps up with: at most kFramesPerMs in all,
// and at most kAckedPerLinkMs QoS 1 frames per connection. The latter
// because that thread is woken by new commands only, never by a PUBACK:
// once the broker's receive maximum is reached (Mosquitto: 20 QoS 1 frames
// in flight) and the client's buffer is full (100 commands), new frames
// are refused and nothing wakes it for up to a second.
constexpr int kFramesPerMs = 24;
constexpr int kAckedPerLinkMs = 8;
// Heartbeats and phase reports are made and sent on this grid (us): see push, queue_out.
constexpr std::int64_t kBatchUs = 5'000;
// A report that would leave later than this (us) is dropped: see shed().
constexpr std::int64_t kShedAfterUs = 1'000'000;
// Inputs are sampled at 10 Hz (in catch-up batches at each phase report).
constexpr std::int64_t kSamplePeriodUs = 100'000;
// A `lying` node reports executing this much earlier than it did.
constexpr std::int64_t kLieUs = 50'000;
// The KAIROS scales of every simulated node (s), fastest first.
constexpr double kTauBaseS = 1.0, kTauMaxS = 30.0;

std::string hex16(std::uint64_t v) {
  char b[20];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(v));
  return b;
}

char class_char(std::uint8_t cls) { return static_cast<char>('A' + cls); }

// The first point of the kBatchUs grid at or after t (us).
std::int64_t on_grid(std::int64_t t) { return (t + kBatchUs - 1) / kBatchUs * kBatchUs; }

}  // namespace

Simulator::Simulator(SimOptions options) : opt_(std::move(options)), seed_(opt_.seed ? *opt_.seed : random_u64()) {
  log_spaced_taus(kTauBaseS, kTauMaxS, taus_s_.size(), taus_s_);
  // Every simulated node runs the same "configuration": one shared context hash.
  context_hash_ = sha256(as_bytes("kairos-sim context"));
  divergent_hash_ = sha256(as_bytes("kairos-sim context, edited by hand"));
  for (int c = 1; c <= opt_.clusters; ++c) cluster_names_.push_back(opt_.cluster_prefix + std::to_string(c));

  const auto n = static_cast<std::size_t>(opt_.nodes);
  const auto links = static_cast<std::uint32_t>(opt_.effective_connections());
  auto crash = pick_nodes(seed_, 1, n, opt_.fail.crash);
  auto slow = pick_nodes(seed_, 2, n, opt_.fail.slow);
  auto lying = pick_nodes(seed_, 3, n, opt_.fail.lying);
  auto badmac = pick_nodes(seed_, 4, n, opt_.fail.badmac);
  auto diverge = pick_nodes(seed_, 5, n, opt_.fail.diverge);
  auto paradox = pick_nodes(seed_, 6, n, opt_.fail.paradox);

  namespace fs = std::filesystem;
  const std::string key_dir = opt_.keys_dir + "/nodes";
  std::error_code ec;
  fs::create_directories(key_dir, ec);
  if (ec) throw std::runtime_error(key_dir + ": cannot create (" + ec.message() + ")");

  nodes_.reserve(n);
  by_id_.reserve(n);
  std::string roster;
  for (std::size_t i = 0; i < n; ++i) {
    const std::string id = opt_.node_id(i);
    const std::string key_path = key_dir + "/" + id + ".key";
    Key key;
    if (fs::exists(key_path)) {
      key = load_key_file(key_path);
    } else {
      key = generate_key();
      write_file_atomic(key_path, to_hex(key.bytes) + "\n", 0600);
      ++keys_made_;
    }
    // A session is new at every start, as a node's at every boot: never from
    // the seed, and above the last one (the wall clock; docs/DESIGN.md 4).
    auto& node = nodes_.emplace_back(id, key, next_session_id(0, static_cast<std::uint64_t>(wall_us())));
    by_id_.emplace(id, static_cast<std::uint32_t>(i));
    const auto d = draw_node(seed_, i, opt_.offset_max_ms, opt_.drift_ppm);
    node.clock.offset_us = d.offset_us;
    node.clock.drift_ppm = d.drift_ppm;
    node.in = DelayLine(d.in_seed);
    node.out = DelayLine(d.out_seed);
    node.link = static_cast<std::uint32_t>(i % links);
    node.cluster = static_cast<std::uint16_t>(i % cluster_names_.size());
    node.cls = static_cast<std::uint8_t>(opt_.classes[i % opt_.classes.size()]);
    node.crash = crash[i];
    node.slow = slow[i];
    node.lying = lying[i];
    node.badmac = badmac[i];
    node.diverge = diverge[i];
    node.paradox = paradox[i];
    node.base_ms = opt_.latency_ms[node.cls] * (node.slow ? kSlowFactor : 1.0);
    node.will_seq = node.signer.next_seq() + kWillSeqGap;
    if (opt_.phase_period_s > 0) {
      node::SyntheticConfig sc;
      sc.waveform = "sine";
      sc.period_s = d.wave_period_s;
      sc.phase_deg = d.wave_phase_deg;
      sc.seed = d.wave_seed;
      node.phases =
          std::make_unique<Phases>(Phases{node::SyntheticInput(sc), KairosFilter(taus_s_, {0.0, 0.5, 0.8}), 0});
    }
    if (!opt_.roster.empty()) {
      const std::pair<bool, const char*> failures[] = {
          {node.crash, "crash"}, {node.slow, "slow"}, {node.lying, "lying"}, {node.badmac, "badmac"},
          {node.diverge, "diverge"}, {node.paradox, "paradox"}};
      std::string flags;
      for (auto [on, name] : failures)
        if (on) flags += (flags.empty() ? "" : ",") + std::string(name);
      char line[200];
      std::snprintf(line, sizeof line, "%s %s %c %lld %.3f %g %s\n", id.c_str(), cluster_names_[node.cluster].c_str(),
                    class_char(node.cls), static_cast<long long>(node.clock.offset_us), node.clock.drift_ppm,
                    node.base_ms, flags.empty() ? "-" : flags.c_str());
      roster += line;
    }
  }
  if (!opt_.roster.empty()) write_file_atomic(opt_.roster, roster, 0644);
  if (!opt_.ledger.empty()) {
    ledger_ = std::fopen(opt_.ledger.c_str(), "w");
    if (!ledger_) throw std::runtime_error(opt_.ledger + ": cannot write the ledger");
  }

  for (std::uint32_t k = 0; k < links; ++k) {
    MqttOptions mo;
    mo.uri = opt_.broker;
    mo.client_id = "kairos-sim-" + opt_.mesh + "-" + opt_.prefix + "-" + std::to_string(k) + "-" +
                   hex16(random_u64()).substr(0, 6);
    mo.reconnect_min_s = 0.5;
    mo.reconnect_max_s = 5;
    // Bursts of thousands of nodes (births at connect, acks of a schedule
    // to every node) go through a handful of connections.
    mo.max_inflight = 4096;
    mo.backlog_limit = 200'000;
    mo.inbound_limit = 1'000'000;
    mo.on_event = [this] {
      {
        std::lock_guard lock(wake_mu_);
        ++wake_gen_;
      }
      wake_cv_.notify_one();
    };
    links_.push_back(std::make_unique<MqttLink>(std::move(mo)));
  }
  outq_.resize(links_.size());
  pace_.resize(links_.size());
  for (std::uint32_t i = 0; i < nodes_.size(); ++i)
    links_[nodes_[i].link]->add_subscription(topic(nodes_[i], TopicKind::cmd), 1);
}

Simulator::~Simulator() {
  links_.clear();
  if (ledger_) std::fclose(ledger_);
}

std::string Simulator::topic(const Node& n, TopicKind kind) const {
  return node_topic(opt_.mesh, cluster_names_[n.cluster], n.id, kind);
}

// ---- timers and frames in flight ----

void Simulator::push(std::int64_t due, Ev kind, std::uint32_t node, std::uint32_t arg) {
  // Heartbeats and phase reports of many nodes are made together on a grid:
  // one wake-up of the loop for many nodes instead of one each.
  if (kind == Ev::heartbeat || kind == Ev::phase) due = on_grid(due);
  (kind == Ev::deliver ? inbound_ : timers_).push({due, order_++, node, arg, kind});
}

std::uint32_t Simulator::store(Frame f) {
  if (free_slots_.empty()) {
    frames_.push_back(std::move(f));
    return static_cast<std::uint32_t>(frames_.size() - 1);
  }
  auto slot = free_slots_.back();
  free_slots_.pop_back();
  frames_[slot] = std::move(f);
  return slot;
}

Simulator::Frame Simulator::take(std::uint32_t slot) {
  Frame f = std::move(frames_[slot]);
  frames_[slot] = Frame{};
  free_slots_.push_back(slot);
  return f;
}

// ---- the loop ----

int Simulator::run() {
  start_mono_ = mono_us();
  start_wall_ = wall_us();
  wall_off_ = start_wall_ - start_mono_;
  for (auto& n : nodes_) n.clock.start_us = start_wall_;
  std::printf("kairos-sim: %zu nodes on %zu connections\n", nodes_.size(), links_.size());
  std::printf("kairos-sim: seed %llu\n", static_cast<unsigned long long>(seed_));
  std::fflush(stdout);
  if (keys_made_) log::info("sim", "made " + std::to_string(keys_made_) + " node keys in " + opt_.keys_dir + "/nodes");
  start_timers();

  const std::int64_t end =
      opt_.duration_s > 0 ? start_mono_ + static_cast<std::int64_t>(opt_.duration_s * 1e6) : INT64_MAX;
  while (!stop_requested()) {
    std::int64_t now = mono_us();
    if (now >= end) break;
    wall_off_ = wall_us() - now;
    bool waiting = false;  // frames the MQTT client could not take yet
    for (auto& l : links_) l->service(now);
    // Round-robin: under the global pace no connection waits behind the others.
    const auto links = static_cast<std::uint32_t>(links_.size());
    rr_ = (rr_ + 1) % links;
    const bool quiet = !held_.empty() && held_.top().due - now < kQuietUs;
    for (std::uint32_t j = 0; j < links && !quiet; ++j) waiting = !flush((rr_ + j) % links) || waiting;
    poll_links();
    run_held();
    run_timers();
    // The ledger is written through at every turn: a reader sees each line within milliseconds.
    if (ledger_) std::fflush(ledger_);

    std::int64_t next = std::min(end, mono_us() + (waiting ? kRetryUs : kMaxSleepUs));
    if (!executed_.empty()) next = 0;
    if (!timers_.empty()) next = std::min(next, timers_.top().due);
    if (!inbound_.empty()) next = std::min(next, inbound_.top().due);
    if (!held_.empty()) next = std::min(next, held_.top().due - kSpinUs);
    wait_until(next);
  }
  log::info("sim", "stopping");
  shutdown();
  print_summary(static_cast<double>(mono_us() - start_mono_) / 1e6);
  return 0;
}

void Simulator::start_timers() {
  const auto hb_us = static_cast<std::int64_t>(opt_.hb_period_s * 1e6);
  const auto phase_us = static_cast<std::int64_t>(opt_.phase_period_s * 1e6);
  for (std::uint32_t i = 0; i < nodes_.size(); ++i) {
    // Spread over a period, so that thousands of nodes do not report at one instant.
    const auto d = draw_node(seed_, i, opt_.offset_max_ms, opt_.drift_ppm);
    push(start_mono_ + static_cast<std::int64_t>(d.hb_phase * static_cast<double>(hb_us)), Ev::heartbeat, i);
    if (nodes_[i].phases) {
      nodes_[i].phases->next_sample_us = start_mono_;
      push(start_mono_ + static_cast<std::int64_t>(d.report_phase * static_cast<double>(phase_us)), Ev::phase, i);
    }
    if (nodes_[i].crash) push(start_mono_ + static_cast<std::int64_t>(opt_.crash_after_s * 1e6), Ev::crash, i);
  }
  for (std::uint32_t j = 0; j < opt_.jumps.size(); ++j)
    push(start_mono_ + static_cast<std::int64_t>(opt_.jumps[j].at_s * 1e6), Ev::jump, 0, j);
}

void Simulator::poll_links() {
  {
    std::lock_guard lock(wake_mu_);
    if (wake_gen_ == seen_gen_) return;
    seen_gen_ = wake_gen_;
  }
  if (stopping_) {
    // Only the connection state matters now: messages are for nodes that are gone.
    for (auto& l : links_) l->wait(0);
    return;
  }
  for (std::uint32_t k = 0; k < links_.size(); ++k) {
    for (auto& ev : links_[k]->wait(0)) {
      switch (ev.type) {
        case LinkEvent::Type::connected: on_link_up(k); break;
        case LinkEvent::Type::lost:
        case LinkEvent::Type::connect_failed:
          if (log_limit_.allow(mono_us()))
            log::warn("sim", "connection " + std::to_string(k) + ": " + ev.detail + ", retrying");
          break;
        case LinkEvent::Type::message: on_inbound(k, ev.msg); break;
      }
    }
  }
}

void Simulator::wait_until(std::int64_t deadline) {
  std::unique_lock lock(wake_mu_);
  const std::int64_t now = mono_us();
  if (deadline <= now) return;
  wake_cv_.wait_for(lock, std::chrono::microseconds(deadline - now), [this] { return wake_gen_ != seen_gen_; });
}

void Simulator::run_held() {
  // Each execution at its instant. Only the time is taken here: the ack,
  // the ledger line and the rest follow in run_timers, so that a thousand
  // nodes due at once are not each late by the others' work.
  while (!held_.empty()) {
    const Held h = held_.top();
    if (h.due - mono_us() > kSpinUs) break;
    while (wall_us() < h.target_wall) {
    }
    held_.pop();
    executed_.emplace_back(h.node, wall_us());
  }
}

void Simulator::finish_execution(std::uint32_t i, std::int64_t exec_wall) {
  auto& n = nodes_[i];
  if (n.crashed) return;
  auto env = n.intake.take_due(n.clock.node_us(exec_wall));
  if (!env) return;  // a stale entry: its command was taken with an earlier one
  Received rx;
  if (auto it = held_rx_.find({i, env->message.command.command_id}); it != held_rx_.end()) {
    rx = it->second;
    held_rx_.erase(it);
  }
  perform(i, *env, rx, exec_wall);
}

void Simulator::run_timers() {
  // In order of urgency: executions (run_held), commands reaching their
  // node (one handled late may run late), the work after an execution,
  // then reports and frames leaving (late costs nothing but their timing).
  // After kTurnUs of work the loop turns, so that frames that arrived
  // meanwhile are seen.
  const std::int64_t start = mono_us();
  for (std::int64_t now = start; now - start < kTurnUs; now = mono_us()) {
    if (!held_.empty() && held_.top().due - now <= kSpinUs) return;
    if (!inbound_.empty() && inbound_.top().due <= now) {
      const Timer t = inbound_.top();
      inbound_.pop();
      stats_.late_in.add(now - t.due);
      deliver(t.node, t.arg, t.due);
      continue;
    }
    if (!executed_.empty()) {
      auto [i, exec_wall] = executed_.front();
      executed_.pop_front();
      finish_execution(i, exec_wall);
      continue;
    }
    if (timers_.empty() || timers_.top().due > now) return;
    const Timer t = timers_.top();
    timers_.pop();
    switch (t.kind) {
      case Ev::deliver: break;  // never here: in inbound_
      case Ev::publish: publish_now(t.node, t.arg); break;
      case Ev::heartbeat: heartbeat(t.node, t.due); break;
      case Ev::phase: report_phase(t.node, t.due); break;
      case Ev::crash: crash(t.node, now); break;
      case Ev::job: finish_job(t.node, t.arg, now); break;
      case Ev::jump: {
        const auto& j = opt_.jumps[t.arg];
        auto& n = nodes_[by_id_.at(j.node)];
        n.base_ms = std::max(0.0, n.base_ms + j.delta_ms);
        char what[64];
        std::snprintf(what, sizeof what, ": base latency now %.1f ms each way", n.base_ms);
        log::info("sim", n.id + what);
        break;
      }
    }
  }
}

// ---- connections ----

void Simulator::on_link_up(std::uint32_t k) {
  auto& link = *links_[k];
  link.drain_backlog();
  const std::int64_t now = mono_us();
  // Every node of this connection announces itself again, as a node does
  // after each connect: birth (opens the session at the gateway), then state.
  for (std::uint32_t i = k; i < nodes_.size(); i += static_cast<std::uint32_t>(links_.size())) {
    auto& n = nodes_[i];
    if (n.crashed) continue;
    n.will_seq = n.signer.next_seq() + kWillSeqGap;
    publish_birth(i, now);
    send(i, TopicKind::state, *node::state_envelope(true, n.signer.session()), 1, true, now);
  }
}

void Simulator::on_inbound(std::uint32_t k, Inbound& msg) {
  ++stats_.received;
  auto t = parse_topic(msg.topic);
  auto it = t && t->kind == TopicKind::cmd && t->mesh == opt_.mesh ? by_id_.find(t->name) : by_id_.end();
  if (it == by_id_.end() || nodes_[it->second].link != k) {
    ++stats_.unrouted;
    return;
  }
  auto& n = nodes_[it->second];
  if (n.crashed) {
    ++stats_.to_crashed;
    return;
  }
  // Paho stamped the moment the broker's frame arrived; the node gets it one
  // modelled delay later.
  const std::int64_t due = n.in.pass(msg.received_mono_us, n.base_ms, opt_.jitter);
  push(due, Ev::deliver, it->second,
       store(Frame(std::move(msg.topic), std::move(msg.payload), TopicKind::cmd, 1, false)));
}

// ---- one node's work ----

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

namespace {

// An unsigned JobResult envelope, sealed by send().
EnvelopePtr result_envelope(std::uint64_t job_id, std::uint32_t attempt, kairos_v1_JobStatus status) {
  auto env = make_envelope("", 0, 0, 0);
  env->which_message = kairos_v1_Envelope_result_tag;
  env->message.result.job_id = job_id;
  env->message.result.attempt = attempt;
  env->message.result.status = status;
  return env;
}

}  // namespace

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
    auto env = result_envelope(job.job_id, job.attempt, kairos_v1_JobStatus_JOB_REFUSED);
    set_string(env->message.result.error, refused);
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
  auto env = result_envelope(rj.job_id, rj.attempt, kairos_v1_JobStatus_JOB_OK);
  auto& r = env->message.result;
  std::string out;
  if (rj.handler == "hash") {
    auto d = sha256(rj.payload);
    static const char* hex = "0123456789abcdef";
    for (auto b : d) {
      out += hex[b >> 4];
      out += hex[b & 15];
    }
  } else if (rj.handler == "echo") {
    out.assign(rj.payload.begin(), rj.payload.end());
  }
  // A `lying` node returns a wrong result, as a faulty or hostile node would.
  if (n.lying) out = "lie:" + out;
  r.output.size = static_cast<pb_size_t>(std::min(out.size(), sizeof r.output.bytes));
  std::copy_n(out.begin(), r.output.size, r.output.bytes);
  r.duration_ms = static_cast<std::uint32_t>(opt_.job_ms);
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
  auto env = make_envelope("", 0, 0, 0);
  env->which_message = kairos_v1_Envelope_heartbeat_tag;
  auto& h = env->message.heartbeat;
  h.status = n.frozen ? kairos_v1_NodeStatus_FROZEN : kairos_v1_NodeStatus_COMPLIANT;
  h.processing_ms = n.processing_ms;
  h.queue_depth = static_cast<std::uint32_t>(n.intake.held());
  h.has_counters = true;
  h.counters.frames_sent = n.sent;
  h.counters.frames_rx_dropped = n.intake.drops().total();
  h.counters.reconnects = link.counters().reconnects;
  h.counters.samples = n.samples;
  h.uptime_ms = static_cast<std::uint64_t>((now - start_mono_) / 1000);
  h.context_hash.size = 32;
  const Digest& ch = n.diverge ? divergent_hash_ : context_hash_;
  std::copy(ch.begin(), ch.end(), h.context_hash.bytes);
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
  auto env = make_envelope("", 0, 0, 0);
  env->which_message = kairos_v1_Envelope_phase_tag;
  auto& pr = env->message.phase;
  auto& ip = pr.inputs[pr.inputs_count++];
  set_string(ip.input, "main");
  node::fill_scales(ip, p.filter);
  if (p.filter.has_sample()) {
    const auto& s = p.filter.scale(0);  // primary scale
    pr.valid = true;
    pr.has_node_z = true;
    pr.node_z.re = static_cast<float>(s.z.real());
    pr.node_z.im = static_cast<float>(s.z.imag());
    pr.node_c = static_cast<float>(s.c);
  }
  send(i, TopicKind::phase, *env, 0, false, now);
}

// ---- frames out ----

void Simulator::publish_birth(std::uint32_t i, std::int64_t at_mono) {
  auto env = make_envelope("", 0, 0, 0);
  env->which_message = kairos_v1_Envelope_birth_tag;
  auto& b = env->message.birth;
  const auto& n = nodes_[i];
  set_string(b.cluster, cluster_names_[n.cluster]);
  set_string(b.board, "sim");
  b.device_class = static_cast<kairos_v1_DeviceClass>(kairos_v1_DeviceClass_CLASS_A + n.cls);
  for (const char* cap : {"sim", "job:echo", "job:hash", "job:sleep"}) set_string(b.capabilities[b.capabilities_count++], cap);
  auto& a = b.inputs[b.inputs_count++];
  set_string(a.name, "main");
  set_string(a.kind, "synthetic");
  a.sample_period_us = static_cast<std::uint32_t>(kSamplePeriodUs);
  for (double tau : taus_s_) b.timescales_s[b.timescales_s_count++] = static_cast<float>(tau);
  set_string(b.firmware_version, kFirmwareVersion);
  b.context_hash.size = 32;
  const Digest& ch = n.diverge ? divergent_hash_ : context_hash_;
  std::copy(ch.begin(), ch.end(), b.context_hash.bytes);
  b.heartbeat_period_ms = static_cast<std::uint32_t>(opt_.hb_period_s * 1000);
  b.phase_period_ms = static_cast<std::uint32_t>(opt_.phase_period_s * 1000);
  set_string(b.mesh_input, "main");
  b.primary_scale = 0;
  send(i, TopicKind::birth, *env, 1, true, at_mono);
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
  // As node.cpp's state_frame: sealed with a seq of its own, outside the Signer.
  const auto& n = nodes_[i];
  return node::sealed_state(topic(n, TopicKind::state), n.id, n.signer.session(), seq, node_now(n, at_mono), online, n.key);
}

void Simulator::send(std::uint32_t i, TopicKind kind, Envelope& env, int qos, bool retain, std::int64_t at_mono) {
  auto& n = nodes_[i];
  Frame f(topic(n, kind), {}, kind, qos, retain);
  f.payload = n.signer.seal(f.topic, env, n.key, node_now(n, at_mono));
  queue_out(i, std::move(f), at_mono);
}

void Simulator::queue_out(std::uint32_t i, Frame f, std::int64_t at_mono) {
  auto& n = nodes_[i];
  // Periodic reports leave in batches: every frame handed to the MQTT
  // client wakes its send thread, and a wake per frame costs more than the
  // rest of the simulator together. Timing-critical frames (acks, states)
  // keep their exact instant.
  const bool batched = f.kind == TopicKind::hb || f.kind == TopicKind::phase;
  f.due = n.out.pass(at_mono, n.base_ms, opt_.jitter, batched ? kBatchUs : 0);
  push(f.due, Ev::publish, i, store(std::move(f)));
}

void Simulator::publish_now(std::uint32_t i, std::uint32_t slot) {
  auto& n = nodes_[i];
  Frame f = take(slot);
  // A simulator that cannot keep up sheds reports, as a congested network
  // drops QoS 0 frames, instead of queueing without bound.
  if (f.qos == 0 && mono_us() - f.due > kShedAfterUs) return shed();
  if (f.draft) {
    const auto& d = *f.draft;
    kairos_v1_Command cmd = kairos_v1_Command_init_zero;
    cmd.command_id = d.command_id;
    auto env = node::make_ack(cmd, d.state, d.detail, d.received_us, d.executed_us);
    set_string(env->sender, n.id);
    env->session_id = n.signer.session();
    env->seq = d.seq;
    env->sent_at_us = d.sent_at_us;
    f.payload = seal(f.topic, *env, n.key);
    f.draft.reset();
  }
  // The MAC is the frame's last field: its last byte is a MAC byte.
  if (n.badmac && !f.payload.empty()) f.payload.back() ^= 0x5A;
  outq_[n.link].emplace_back(i, std::move(f));
  if (held_.empty() || held_.top().due - mono_us() >= kQuietUs) flush(n.link);
}

bool Simulator::flush(std::uint32_t k) {
  auto& q = outq_[k];
  auto& link = *links_[k];
  auto& pace = pace_[k];
  while (!q.empty()) {
    const std::int64_t now = mono_us();
    if (q.front().second.qos == 0 && now - q.front().second.due > kShedAfterUs) {
      shed();
      q.pop_front();
      continue;
    }
    if (now - pace.window_start >= 1000) pace = {now, 0};
    if (now - pace_all_.window_start >= 1000) pace_all_ = {now, 0};
    const bool acked = q.front().second.qos != 0;
    if (pace_all_.frames >= kFramesPerMs || (acked && pace.frames >= kAckedPerLinkMs)) return false;
    ++pace_all_.frames;
    if (acked) ++pace.frames;
    const bool up = link.connected();
    // QoS 1 frames the client refused wait in the link's backlog: they go first.
    if (up && link.backlog_size()) {
      link.drain_backlog();
      if (link.backlog_size()) return false;
    }
    auto& [i, f] = q.front();
    const auto failures = link.counters().publish_failures;
    const bool ok = link.publish(f.topic, f.payload, f.qos, f.retain);
    // Paho holds at most maxBufferedMessages unsent commands, even while
    // connected: a burst of thousands of nodes fills that. The frame waits
    // for the next turn of the loop (a QoS 1 frame in the link's backlog).
    if (!ok && up && link.counters().publish_failures > failures) {
      ++stats_.deferred;
      if (f.qos == 0) return false;
    }
    auto& n = nodes_[i];
    if (up) {
      if (f.qos) stats_.late_out.add(now - f.due);  // reports leave in batches anyway
      ++n.sent;
      ++stats_.sent[static_cast<std::size_t>(f.kind)];
      if (f.kind == TopicKind::birth && !n.announced) {
        n.announced = true;
        ++announced_;
        note_announced();
      }
    } else if (f.qos == 0) {
      ++stats_.not_sent;  // a QoS 1 frame waits in the link's backlog for the reconnect
    }
    q.pop_front();
  }
  return true;
}

bool Simulator::congested(std::uint32_t k, std::int64_t now) const {
  return !outq_[k].empty() && now - outq_[k].front().second.due > kShedAfterUs / 2;
}

void Simulator::shed() {
  if (stats_.shed++ == 0)
    log::warn("sim", "falling behind: reports more than " + std::to_string(kShedAfterUs / 1000) +
                         " ms late are dropped (fewer nodes, longer report periods or more CPU help)");
}

void Simulator::note_announced() {
  if (all_announced_ || announced_ + gone_unannounced_ < nodes_.size()) return;
  all_announced_ = true;
  std::printf("kairos-sim: all %zu nodes announced\n", nodes_.size());
  std::fflush(stdout);
}

// ---- ledger ----

void Simulator::ledger_exec(const Node& n, std::uint64_t command_id, std::int64_t exec_wall, std::int64_t node_exec,
                            std::int64_t received_wall, std::int64_t execute_at) {
  if (!ledger_) return;
  std::fprintf(ledger_, "exec %s %s %c %lld %lld %lld %lld\n", n.id.c_str(), hex16(command_id).c_str(),
               class_char(n.cls), static_cast<long long>(exec_wall), static_cast<long long>(node_exec),
               static_cast<long long>(received_wall), static_cast<long long>(execute_at));
}

void Simulator::ledger_conflict(const Node& n, std::uint64_t command_id, std::int64_t wall, const std::string& detail) {
  if (!ledger_) return;
  std::string d = detail.empty() ? "-" : detail;
  std::replace(d.begin(), d.end(), ' ', '_');
  std::fprintf(ledger_, "conflict %s %s %c %lld %s\n", n.id.c_str(), hex16(command_id).c_str(), class_char(n.cls),
               static_cast<long long>(wall), d.c_str());
}

// ---- the end ----

void Simulator::shutdown() {
  stopping_ = true;
  // Executions already done are acknowledged; frames already on their way
  // out still arrive, in order; commands on their way in are lost with the
  // nodes.
  for (; !executed_.empty(); executed_.pop_front()) finish_execution(executed_.front().first, executed_.front().second);
  while (!timers_.empty()) {
    const Timer t = timers_.top();
    timers_.pop();
    if (t.kind == Ev::publish) publish_now(t.node, t.arg);
  }
  // Every live node says it goes offline, as node.cpp does at a clean stop
  // (with the seq of the Will it armed). The last one of each connection is
  // kept for MqttLink::close, which sends it and disconnects once the
  // frames before it are through.
  const auto stride = static_cast<std::uint32_t>(links_.size());
  std::vector<std::optional<std::uint32_t>> last_live(links_.size());
  for (std::uint32_t i = 0; i < nodes_.size(); ++i)
    if (!nodes_[i].crashed) last_live[nodes_[i].link] = i;
  std::vector<Bytes> last(links_.size());
  for (std::uint32_t i = 0; i < nodes_.size(); ++i) {
    auto& n = nodes_[i];
    if (n.crashed) continue;
    Bytes frame = state_frame(i, false, n.will_seq, mono_us());
    if (n.badmac) frame.back() ^= 0x5A;
    ++stats_.offline_states;
    if (last_live[n.link] == i)
      last[n.link] = std::move(frame);
    else {
      Frame f(topic(n, TopicKind::state), std::move(frame), TopicKind::state, 1, true);
      f.due = mono_us();
      outq_[n.link].emplace_back(i, std::move(f));
    }
  }
  const std::int64_t give_up = mono_us() + 10'000'000;
  bool flushed = false;
  while (!flushed && mono_us() < give_up) {
    flushed = true;
    for (std::uint32_t k = 0; k < links_.size(); ++k) flushed = flush(k) && flushed;
    if (!flushed) std::this_thread::sleep_for(std::chrono::microseconds(kRetryUs));
  }
  // Room in the client's buffer for the last frame of each connection.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::size_t not_sent = 0;
  for (std::uint32_t k = 0; k < links_.size(); ++k) {
    // A lost connection is known only from its event: a close on a link
    // whose broker is gone would wait out its timeout.
    poll_links();
    auto& link = *links_[k];
    for (std::uint32_t i = k; i < nodes_.size(); i += stride)
      if (!nodes_[i].crashed && !link.connected()) ++not_sent;
    if (!last_live[k] || !link.connected()) continue;
    auto& n = nodes_[*last_live[k]];
    ++stats_.sent[static_cast<std::size_t>(TopicKind::state)];
    ++n.sent;
    link.close(topic(n, TopicKind::state), last[k], 2000);
  }
  if (not_sent) log::warn("sim", std::to_string(not_sent) + " offline states not sent: their connection was down");
}

void Simulator::print_summary(double seconds) const {
  std::uint64_t sent = 0, failures = 0, offline = stats_.not_sent, reconnects = 0, inbound_dropped = 0;
  for (auto v : stats_.sent) sent += v;
  for (const auto& l : links_) {
    failures += l->counters().publish_failures;
    offline += l->counters().backlog_dropped;  // its offline_dropped are frames flush() offered again
    reconnects += l->counters().reconnects;
    inbound_dropped += l->counters().inbound_dropped;
  }
  auto kind = [&](TopicKind k) { return static_cast<unsigned long long>(stats_.sent[static_cast<std::size_t>(k)]); };
  std::printf("kairos-sim: summary after %.1f s, %zu nodes (%llu crashed), seed %llu\n", seconds, nodes_.size(),
              static_cast<unsigned long long>(stats_.crashed), static_cast<unsigned long long>(seed_));
  std::printf("  frames sent      %llu: birth %llu, state %llu (offline %llu), hb %llu, phase %llu, ack %llu\n",
              static_cast<unsigned long long>(sent), kind(TopicKind::birth), kind(TopicKind::state),
              static_cast<unsigned long long>(stats_.offline_states), kind(TopicKind::hb), kind(TopicKind::phase),
              kind(TopicKind::ack));
  std::printf("  not sent         %llu (connection down), %llu (reports shed: the simulator fell behind)\n",
              static_cast<unsigned long long>(offline), static_cast<unsigned long long>(stats_.shed));
  std::printf("  connections      reconnects %llu, frames held back for a full client buffer %llu (%llu retries)\n",
              static_cast<unsigned long long>(reconnects), static_cast<unsigned long long>(stats_.deferred),
              static_cast<unsigned long long>(failures));
  std::string drops;
  for (std::size_t r = 0; r < static_cast<std::size_t>(DropReason::count_); ++r) {
    auto v = stats_.drops.by_reason[r];
    if (v) drops += ", " + std::string(to_string(static_cast<DropReason>(r))) + " " + std::to_string(v);
  }
  std::printf(
      "  frames received  %llu, dropped %llu%s, to crashed nodes %llu, on no node's topic %llu, over the inbound limit "
      "%llu\n",
      static_cast<unsigned long long>(stats_.received), static_cast<unsigned long long>(stats_.drops.total()),
      drops.c_str(), static_cast<unsigned long long>(stats_.to_crashed),
      static_cast<unsigned long long>(stats_.unrouted), static_cast<unsigned long long>(inbound_dropped));
  std::printf("  acks             READY %llu, TRANSIT %llu, CONFLICT %llu (pings answered %llu)\n",
              static_cast<unsigned long long>(stats_.acks[2]), static_cast<unsigned long long>(stats_.acks[1]),
              static_cast<unsigned long long>(stats_.acks[0]), static_cast<unsigned long long>(stats_.pings));
  double mean = stats_.executed_held ? stats_.held_error_sum_us / static_cast<double>(stats_.executed_held) : 0.0;
  std::printf(
      "  executions       %llu at once, %llu held until execute_at (|true - target| mean %.1f us, max %lld us)\n",
      static_cast<unsigned long long>(stats_.executed_now), static_cast<unsigned long long>(stats_.executed_held), mean,
      static_cast<long long>(stats_.held_error_max_us));
  std::printf("  jobs             %llu results, %llu refused\n", static_cast<unsigned long long>(stats_.jobs),
              static_cast<unsigned long long>(stats_.jobs_refused));
  std::printf(
      "  loop lateness    commands in: max %.1f ms, %llu over 1 ms; QoS 1 frames out: max %.1f ms, %llu over 1 ms\n",
      static_cast<double>(stats_.late_in.max_us) / 1000.0, static_cast<unsigned long long>(stats_.late_in.over_1ms),
      static_cast<double>(stats_.late_out.max_us) / 1000.0, static_cast<unsigned long long>(stats_.late_out.over_1ms));
  std::fflush(stdout);
}

}  // namespace kairos::sim

#include "tools/sim/sim.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <thread>

#include "common/io/clock.h"
#include "common/io/files.h"
#include "common/io/keygen.h"
#include "common/io/log.h"
#include "common/io/process.h"
#include "common/io/session_file.h"
#include "firmware/reports.h"

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
// The KAIROS scales of every simulated node (s), fastest first.
constexpr double kTauBaseS = 1.0, kTauMaxS = 30.0;

std::string hex16(std::uint64_t v) {
  char b[20];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(v));
  return b;
}

char class_char(std::uint8_t cls) { return static_cast<char>('A' + cls); }

}  // namespace

Simulator::Simulator(SimOptions options) : opt_(std::move(options)), seed_(opt_.seed ? *opt_.seed : random_u64()) {
  log_spaced_taus(kTauBaseS, kTauMaxS, taus_s_.size(), taus_s_);
  // Every simulated node runs the same "configuration": one shared context hash.
  context_hash_ = sha256(as_bytes("kairos-sim context"));
  divergent_hash_ = sha256(as_bytes("kairos-sim context, edited by hand"));
  // Every node's birth says the same but for its cluster, class and context hash.
  birth_.board = "sim";
  birth_.capabilities = {"sim", "job:echo", "job:hash", "job:sleep"};
  birth_.inputs = {{"main", "synthetic", static_cast<std::uint32_t>(kSamplePeriodUs)}};
  birth_.taus_s.assign(taus_s_.begin(), taus_s_.end());
  birth_.firmware_version = kFirmwareVersion;
  birth_.heartbeat_period_ms = static_cast<std::uint32_t>(opt_.hb_period_s * 1000);
  birth_.phase_period_ms = static_cast<std::uint32_t>(opt_.phase_period_s * 1000);
  birth_.mesh_input = "main";
  birth_.primary_scale = 0;
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
    node.steps = Rng(d.step_seed);
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
    mo.on_event = waker_.signal();
    links_.push_back(make_link(opt_.client, std::move(mo)));
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
    if (opt_.clock_step_ms > 0)
      push(start_mono_ + static_cast<std::int64_t>(nodes_[i].steps.exponential(opt_.clock_step_every_s) * 1e6), Ev::step,
           i);
  }
  for (std::uint32_t j = 0; j < opt_.jumps.size(); ++j)
    push(start_mono_ + static_cast<std::int64_t>(opt_.jumps[j].at_s * 1e6), Ev::jump, 0, j);
}

void Simulator::poll_links() {
  if (!waker_.take()) return;
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

void Simulator::wait_until(std::int64_t deadline) { waker_.wait_until(deadline); }

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
      case Ev::step: {  // an NTP correction: the node's clock jumps, then runs on
        auto& n = nodes_[t.node];
        n.clock.offset_us += std::llround(n.steps.uniform(-opt_.clock_step_ms, opt_.clock_step_ms) * 1000.0);
        push(now + static_cast<std::int64_t>(n.steps.exponential(opt_.clock_step_every_s) * 1e6), Ev::step, t.node);
        break;
      }
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
  const std::int64_t due = n.in.pass(msg.received_mono_us, n.base_ms, opt_.delay);
  push(due, Ev::deliver, it->second,
       store(Frame(std::move(msg.topic), std::move(msg.payload), TopicKind::cmd, 1, false)));
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

}  // namespace kairos::sim

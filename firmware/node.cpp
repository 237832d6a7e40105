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

namespace {

constexpr const char* kVersion = "0.1.0";
// Gap between the seq sealed into the MQTT Will and the live counter: the
// Will is signed at connect but may be published much later.
constexpr std::uint64_t kWillSeqGap = 1ULL << 40;

std::unique_ptr<Input> make_input(const InputConfig& c) {
  if (c.kind == "synthetic") return std::make_unique<SyntheticInput>(c.synthetic);
  if (c.kind == "pipe" || c.kind == "llm") return std::make_unique<PipeInput>(c.pipe);
  if (c.kind == "gpio")
    return std::make_unique<GpioInput>(std::make_unique<GpiodEdges>(c.gpio), c.gpio.debounce_ms,
                                       "gpio " + c.gpio.line + " on " + c.gpio.chip_label);
  if (c.kind == "microphone") {
    // "wav:<file>" replays a recording in real time instead of an ALSA device
    if (c.device.rfind("wav:", 0) == 0)
      return std::make_unique<MicrophoneInput>(std::make_unique<WavFileCapture>(c.device.substr(4), mono_us), c.rate_hz,
                                               "microphone replaying " + c.device.substr(4));
    return std::make_unique<MicrophoneInput>(std::make_unique<AlsaCapture>(c.device), c.rate_hz, "microphone " + c.device);
  }
  if (c.kind == "camera")
    return std::make_unique<CameraInput>(
        std::make_unique<V4l2Source>(c.device, c.width, c.height, c.grey ? FrameView::Format::grey : FrameView::Format::yuyv),
        "camera " + c.device);
  return std::make_unique<SysfsSensorInput>(c.sysfs);
}

// Modification time and size of a file as text ("" when absent).
std::string file_stamp(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "";
  return std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + ":" + std::to_string(st.st_size);
}

// Where the node's sessions persist: node.state_file, else the directory
// systemd gives the service (StateDirectory=), else nowhere.
std::string state_file(const NodeConfig& c) {
  if (!c.state_file.empty()) return c.state_file;
  const char* dir = std::getenv("STATE_DIRECTORY");
  return dir && *dir ? std::string(dir) + "/" + c.id + ".session" : std::string();
}

constexpr std::int64_t kRetryMinUs = 500'000;
constexpr std::int64_t kRetryMaxUs = 30'000'000;

}  // namespace

Node::Node(NodeConfig config, NodeKey key, std::string config_path, std::string boards_override)
    : config_(std::move(config)), key_(std::move(key)), config_path_(std::move(config_path)), boards_override_(std::move(boards_override)),
      sessions_(state_file(config_)), session_(sessions_.next_session(static_cast<std::uint64_t>(wall_us()))),
      intake_(config_.id, key_.current.key, session_, &sessions_), signer_(config_.id, session_),
      backlog_(config_.broker.backlog, config_.backlog_file) {
  for (const auto& ic : config_.inputs) {
    InputSlot slot;
    slot.config = ic;
    slot.input = make_input(ic);
    if (!ic.pipe.topic.empty()) slot.lines = static_cast<PipeInput*>(slot.input.get());
    slot.filter = KairosFilter(config_.taus_s, {ic.omega, config_.collapse_threshold, 0.8});
    slot.period_us = static_cast<std::int64_t>(ic.sample_period_s * 1e6);
    inputs_.push_back(std::move(slot));
  }
  // The inputs as a phase report names them, once: inputs_ is not changed after this.
  for (const auto& slot : inputs_)
    phase_inputs_.push_back({slot.config.name, slot.filter, &slot.last_a, &slot.last_sample_us});
  for (const auto& oc : config_.outputs) {
    OutputSlot slot;
    slot.config = oc;
    slot.output = make_output(oc, [this](const std::string& t, const Bytes& payload) {
      link_->publish(t, payload, 0, false);
    });
    for (std::size_t i = 0; i < inputs_.size(); ++i)
      if (inputs_[i].config.name == oc.input) slot.input = static_cast<int>(i);
    outputs_.push_back(std::move(slot));
  }
  if (!config_.broadcast_key_file.empty()) broadcast_key_ = load_key_file(config_.broadcast_key_file);
  // The birth advertises every job handler as job:<name> after the configured capabilities.
  constexpr std::size_t kMaxCapabilities = std::extent_v<decltype(kairos_v1_NodeBirth::capabilities)>;
  birth_.capabilities = config_.capabilities;
  std::vector<std::string> handlers(std::begin(kBuiltinJobs), std::end(kBuiltinJobs));
  for (const auto& j : config_.jobs) handlers.push_back(j.name);
  std::string left_out;
  for (const auto& h : handlers) {
    if (birth_.capabilities.size() < kMaxCapabilities) birth_.capabilities.push_back("job:" + h);
    else left_out += " job:" + h;
  }
  if (!left_out.empty())
    log::warn("node", "the birth holds " + std::to_string(kMaxCapabilities) + " capabilities; not advertised:" + left_out);
  birth_.cluster = config_.cluster;
  birth_.board = config_.board.name;
  birth_.device_class = config_.board.device_class;
  for (const auto& slot : inputs_)
    birth_.inputs.push_back({slot.config.name, slot.config.kind, static_cast<std::uint32_t>(slot.period_us)});
  for (const auto& o : config_.outputs) birth_.outputs.push_back({o.name, o.kind, 0});
  birth_.taus_s = config_.taus_s;
  birth_.firmware_version = kVersion;
  birth_.context_hash = config_.context_hash;
  birth_.heartbeat_period_ms = static_cast<std::uint32_t>(config_.heartbeat_period_s * 1000);
  birth_.phase_period_ms = static_cast<std::uint32_t>(config_.phase_period_s * 1000);
  birth_.mesh_input = config_.inputs[config_.mesh_input].name;
  birth_.primary_scale = static_cast<std::uint32_t>(config_.primary_scale);
  if (!config_path_.empty()) config_stamp_ = file_stamp(config_path_) + "|" + file_stamp(config_.board_file);
  link_ = std::make_unique<MqttLink>(mqtt_options(config_.broker, config_.mesh + "-" + config_.id));
  arm_will();
  link_->add_subscription(topic(TopicKind::cmd), 1);
  if (broadcast_key_) link_->add_subscription(mesh_state_topic(config_.mesh), 0);
  link_->add_subscription(kTopicRoot.data() + config_.mesh + "/_gw/+/state", 1);
  for (const auto& slot : inputs_)
    if (slot.lines) link_->add_subscription(slot.config.pipe.topic, 0);
}

std::string Node::topic(TopicKind kind) const {
  return node_topic(config_.mesh, config_.cluster, config_.id, kind);
}

Bytes Node::state_frame(bool online, std::uint64_t seq) {
  return sealed_state(topic(TopicKind::state), signer_, seq, wall_us(), online, key_.current.key);
}

void Node::arm_will() {
  // The Will says "offline" for this session. It is sealed now and published
  // by the broker later, so its seq sits above any frame of this connection;
  // the gateway checks Wills apart from the live window (SessionGuard::check_will).
  will_seq_ = signer_.next_seq() + kWillSeqGap;
  MqttOptions::Will will{topic(TopicKind::state), state_frame(false, will_seq_), 1, true};
  link_->set_will(std::move(will));
}

void Node::publish(TopicKind kind, Envelope& env, int qos, bool retain) {
  auto t = topic(kind);
  bool announce = kind == TopicKind::birth || kind == TopicKind::state;
  if (link_->connected() && (backlog_.empty() || announce)) {
    link_->publish(t, signer_.seal(t, env, key_.current.key, wall_us()), qos, retain);
    return;
  }
  // Offline, or older frames still waiting: keep it, in order (docs/DESIGN.md 3.8).
  // Heartbeats and announcements are not worth keeping: they are sent anew.
  if (kind == TopicKind::hb || announce) return;
  // Before the first connection there is nothing to catch up on but events.
  if (!connected_once_ && kind == TopicKind::phase) return;
  env.historical = true;
  env.sent_at_us = wall_us();
  if (kind == TopicKind::phase) ++phase_queued_;
  bool was_full = backlog_.size() >= config_.broker.backlog;
  backlog_.push({kind, t, encode_envelope(env)});
  if (!was_full && backlog_.size() >= config_.broker.backlog)
    log::warn("node", "backlog full (" + std::to_string(backlog_.size()) + " frames): thinning phase reports");
}

void Node::drain_backlog() {
  // Oldest first, signed now in this session, a bounded number per loop turn,
  // once a gateway is there to take them.
  if (!gateway_online_ && mono_us() - connected_at_us_ < kDrainWaitUs) return;
  for (int n = 0; n < 200 && link_->connected() && !backlog_.empty(); ++n) {
    const auto& f = backlog_.front();
    std::string err;
    auto env = decode_envelope(f.envelope, err);
    if (env) {
      std::int64_t sent_at = env->sent_at_us;
      link_->publish(f.topic, signer_.seal(f.topic, *env, key_.current.key, sent_at), f.important() ? 1 : 0, false);
    } else {
      log::warn("node", "backlog: dropped an unreadable frame (" + err + ")");
    }
    backlog_.pop();
  }
}

void Node::on_connected() {
  log::info("node", "connected to " + config_.broker.uri);
  connected_once_ = true;
  connected_at_us_ = mono_us();
  // Birth first: it opens the session at the gateway; then the state.
  publish_birth();
  publish(TopicKind::state, *state_envelope(true, session_), 1, true);
  link_->drain_backlog();
}

void Node::publish_birth() { publish(TopicKind::birth, *birth_envelope(birth_), 1, true); }

void Node::publish_heartbeat(std::int64_t now_us) {
  bool failing = std::any_of(inputs_.begin(), inputs_.end(), [](const auto& s) { return s.failed; });
  auto env = heartbeat_envelope(node_status(quarantined_, frozen_, failing, jobs_.running() > 0), config_.context_hash);
  auto& h = env->message.heartbeat;
  h.processing_ms = static_cast<float>(processing_ms_ema_);
  h.queue_depth = static_cast<std::uint32_t>(link_->backlog_size() + backlog_.size());
  h.loop_load = static_cast<float>(loop_load_);
  const auto& lc = link_->counters();
  h.counters.frames_sent = lc.published;
  h.counters.frames_rx_dropped = rx_drops_.total() + intake_.drops().total();
  h.counters.publish_failures = lc.publish_failures;
  h.counters.reconnects = lc.reconnects;
  h.counters.backlog_dropped = lc.backlog_dropped + lc.offline_dropped;
  h.counters.cat2_events = cat2_;
  h.counters.samples = samples_;
  h.counters.phase_queued = phase_queued_;
  h.counters.phase_dropped = backlog_.phase_dropped();
  h.counters.events_dropped = backlog_.important_dropped();
  h.uptime_ms = static_cast<std::uint64_t>((now_us - start_us_) / 1000);
  for (const auto& o : outputs_)
    if (auto a = o.output->audio()) {  // the first speaker's: what a frame written now waits to sound
      h.audio_delay_ms = static_cast<float>(a->delay_ms);
      h.audio_underruns = static_cast<std::uint32_t>(a->underruns);
      break;
    }
  publish(TopicKind::hb, *env, 0, false);
}

void Node::publish_phase() {
  publish(TopicKind::phase, *phase_envelope(phase_inputs_, config_.mesh_input, config_.primary_scale), 0, false);
}

void Node::publish_event(kairos_v1_EventKind kind, const std::string& source, const std::string& detail) {
  auto env = make_envelope("", 0, 0, 0);
  env->which_message = kairos_v1_Envelope_event_tag;
  env->message.event.kind = kind;
  set_string(env->message.event.source, source);
  set_string(env->message.event.detail, detail);
  publish(TopicKind::event, *env, 1, false);
}

void Node::sample(InputSlot& slot, std::int64_t now_us) {
  if (slot.failed) {
    // CAT-2 snapback: reopen the adapter, backing off while it keeps failing.
    if (now_us < slot.retry_at_us) return;
    if (!slot.input->setup()) {
      slot.retry_us = std::min(kRetryMaxUs, std::max(kRetryMinUs, slot.retry_us * 2));
      slot.retry_at_us = now_us + slot.retry_us;
      return;
    }
  }
  auto r = slot.input->read(now_us);
  const bool was_failed = slot.failed;
  if (r.status == ReadResult::Status::failed) {
    // CAT-2: skip the sample, never reuse a stale value
    ++cat2_;
    ++slot.failures;
    slot.failed = true;
    slot.retry_us = std::min(kRetryMaxUs, std::max(kRetryMinUs, slot.retry_us * 2));
    slot.retry_at_us = now_us + slot.retry_us;
    wire_log_.write(log::Level::warn, "node", "input " + slot.config.name + ": " + r.error, now_us);
    if (!was_failed) {
      log::info("node", "input " + slot.config.name + ": failing: " + r.error);
      publish_event(kairos_v1_EventKind_CAT2, "input:" + slot.config.name, r.error);
    }
    return;
  }
  if (slot.failed) {
    log::info("node", "input " + slot.config.name + ": reading again");
    publish_event(kairos_v1_EventKind_CAT2, "input:" + slot.config.name, "reading again");
  }
  slot.failed = false;
  slot.retry_us = 0;
  if (r.status == ReadResult::Status::none) return;
  const auto* reading = &r.reading;
  double a = normalise(reading->x, slot.config.lo, slot.config.hi);
  double b = std::clamp(reading->b, 0.0, 1.0);
  auto changed = slot.filter.update({a, b}, static_cast<double>(now_us) / 1e6);
  slot.last_sample_us = now_us;
  slot.last_a = a;
  slot.last_b = b;
  for (std::size_t k = 0; changed != 0; ++k, changed >>= 1) {
    if (!(changed & 1u)) continue;
    const auto& rh = slot.filter.rhythm(k);
    char detail[96];
    std::snprintf(detail, sizeof detail, "tau %.3g s, R %.3f", config_.taus_s[k], rh.r());
    publish_event(rh.collapsed() ? kairos_v1_EventKind_COLLAPSE : kairos_v1_EventKind_RELEASE,
                  slot.config.name + "/" + std::to_string(k), detail);
  }
  ++samples_;
}

void Node::check_config() {
  // The running config must stay the one on disk: a file changed without a
  // config_reload is a breach (CAT-1), reported once.
  if (config_path_.empty() || config_changed_) return;
  // Re-read only when a file's modification time moved: a stat per
  // heartbeat, not a parse.
  auto stamp = file_stamp(config_path_) + "|" + file_stamp(config_.board_file);
  if (stamp == config_stamp_) return;
  config_stamp_ = stamp;
  std::string why;
  try {
    auto now = load_node_config(config_path_, boards_override_);
    if (now.context_hash != config_.context_hash) why = "context hash " + to_hex(now.context_hash).substr(0, 16);
  } catch (const std::exception& e) {
    why = e.what();
  }
  if (why.empty()) return;
  config_changed_ = true;
  cat1("config changed under the running node (" + why + "); send config_reload to take it");
}

void Node::drive_outputs(std::int64_t now_us) {
  for (auto& o : outputs_) {
    if (!o.ready && !(o.ready = o.output->setup())) continue;
    if (quarantined_ || frozen_) {
      o.output->safe_state(now_us);
      continue;
    }
    if (o.forced && now_us < o.forced_until_us) {
      o.output->update(now_us, &*o.forced);
      continue;
    }
    o.forced.reset();
    const auto failsafe_us = static_cast<std::int64_t>(o.config.failsafe_ms * 1000);
    SourceValue v;
    bool fresh = false;
    if (o.input < 0) {
      v = mesh_value_;
      fresh = mesh_at_us_ >= 0 && now_us - mesh_at_us_ <= failsafe_us;
    } else {
      const auto& in = inputs_[static_cast<std::size_t>(o.input)];
      if (in.filter.has_sample() && in.last_sample_us >= 0 && now_us - in.last_sample_us <= failsafe_us) {
        const auto& sc = in.filter.scale(o.config.scale);
        v = {sc.z.real(), sc.z.imag(), sc.c};
        fresh = true;
      }
    }
    o.output->update(now_us, fresh ? &v : nullptr);
  }
}

void Node::tick(std::int64_t now_us) {
  for (auto& slot : inputs_) {
    if (now_us < slot.next_us) continue;
    sample(slot, now_us);
    slot.next_us += slot.period_us;
    if (slot.next_us <= now_us) slot.next_us = now_us + slot.period_us;  // overrun: skip, do not burst
  }
  drive_outputs(now_us);
  for (const auto& o : jobs_.poll(now_us)) publish_result(o);
  if (now_us >= next_phase_us_) {
    publish_phase();
    next_phase_us_ = now_us + static_cast<std::int64_t>(config_.phase_period_s * 1e6);
  }
  if (now_us >= next_hb_us_) {
    double window = static_cast<double>(now_us - load_window_start_us_);
    loop_load_ = window > 0 ? std::min(1.0, busy_us_ / window) : 0.0;
    busy_us_ = 0;
    load_window_start_us_ = now_us;
    check_config();
    if (link_->connected()) publish_heartbeat(now_us);
    next_hb_us_ = now_us + static_cast<std::int64_t>(config_.heartbeat_period_s * 1e6);
  }
}

int Node::run() {
  start_us_ = mono_us();
  load_window_start_us_ = start_us_;
  backlog_.load();
  if (!backlog_.empty()) log::info("node", std::to_string(backlog_.size()) + " frames from the last run wait to be sent");
  for (auto& slot : inputs_) {
    if (!slot.input->setup()) {
      slot.failed = true;
      log::warn("node", "input " + slot.config.name + ": setup failed, will retry");
    }
    slot.next_us = start_us_;
    log::info("node", "input " + slot.config.name + ": " + slot.input->dump_config());
  }
  for (auto& o : outputs_) log::info("node", "output " + o.config.name + ": " + o.output->dump_config() + ", from " + o.config.source);
  for (const auto& j : config_.jobs) {
    std::string argv;
    for (const auto& a : j.command) argv += (argv.empty() ? "" : " ") + a;
    log::info("node", "job " + j.name + ": " + argv + ", timeout " + std::to_string(j.timeout_ms) + " ms, output " +
                          std::to_string(j.max_output) + " bytes");
    if (::access(j.command[0].c_str(), X_OK) != 0)
      log::warn("node", "job " + j.name + ": " + j.command[0] + ": " + std::strerror(errno) + "; its jobs will be refused");
  }
  next_hb_us_ = start_us_;
  next_phase_us_ = start_us_;
  while (!stop_requested() && !restart_requested_) {
    std::int64_t now = mono_us();
    link_->service(now);
    std::int64_t t0 = mono_us();
    tick(now);
    double busy = static_cast<double>(mono_us() - t0);
    busy_us_ += busy;
    processing_ms_ema_ += 0.05 * (busy / 1000.0 - processing_ms_ema_);

    std::int64_t deadline = std::min(next_hb_us_, next_phase_us_);
    for (const auto& slot : inputs_) deadline = std::min(deadline, slot.next_us);
    // Outputs follow their sources every 10 ms; signals are noticed within 100 ms.
    deadline = std::min(deadline, now + (outputs_.empty() ? 100'000 : 10'000));
    if (jobs_.running() > 0) deadline = std::min(deadline, now + kJobPollUs);
    drain_backlog();
    std::int64_t next_held = run_held(mono_us());
    if (next_held != INT64_MAX) deadline = std::min(deadline, next_held - kSpinUs);
    for (auto& ev : link_->wait(deadline)) {
      switch (ev.type) {
        case LinkEvent::Type::connected: on_connected(); break;
        case LinkEvent::Type::lost:
        case LinkEvent::Type::connect_failed:
          gateway_online_ = false;  // known again from its retained state after the reconnect
          arm_will();  // for the next attempt
          wire_log_.write(log::Level::warn, "node",
                          "broker: " + describe(ev, origin_of(config_.broker, config_path_)) + "; retrying", mono_us());
          break;
        case LinkEvent::Type::message: on_message(ev.msg); break;
      }
    }
  }
  log::info("node", "stopping");
  for (auto& o : outputs_) o.output->safe_state(mono_us());
  for (const auto& o : jobs_.stop(mono_us())) publish_result(o);
  drain_backlog();
  if (link_->connected()) publish_heartbeat(mono_us());  // the final counters
  // The Will armed for this connection says the same; sending its seq keeps
  // the gateway's Will check simple (one offline frame per connection).
  link_->close(topic(TopicKind::state), state_frame(false, will_seq_), 2000);
  return restart_requested_ ? kRestartStatus : 0;
}

}  // namespace kairos::node

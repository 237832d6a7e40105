#include "common/io/mqtt.h"

#include <mqtt/async_client.h>

#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>

#include "common/core/frame.h"
#include "common/io/clock.h"
#include "common/io/log.h"

namespace kairos {

namespace {

class ConnectListener : public mqtt::iaction_listener {
 public:
  explicit ConnectListener(std::function<void(int)> on_fail) : on_fail_(std::move(on_fail)) {}
  // Paho puts the CONNACK reason code (MQTT v5) or its own client code in the return code.
  void on_failure(const mqtt::token& tok) override { on_fail_(tok.get_return_code()); }
  void on_success(const mqtt::token&) override {}

 private:
  std::function<void(int)> on_fail_;
};

// Paho C never sets TCP_NODELAY and offers no hook to do it. With Nagle on,
// a small frame sent while an earlier one is unacknowledged waits for the
// broker's delayed ACK (40 ms on Linux): pongs and acks would come back late
// and skew every clock offset. So, once connected, every TCP socket of the
// process gets TCP_NODELAY (the daemons own no other TCP sockets).
void disable_nagle_on_tcp_sockets() {
  DIR* d = ::opendir("/proc/self/fd");
  if (!d) return;
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    long fd = std::strtol(e->d_name, &end, 10);
    if (end == e->d_name || *end != '\0' || fd == ::dirfd(d)) continue;
    struct stat st {};
    if (::fstat(static_cast<int>(fd), &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    int type = 0, domain = 0;
    socklen_t len = sizeof type;
    if (::getsockopt(static_cast<int>(fd), SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) continue;
    len = sizeof domain;
    if (::getsockopt(static_cast<int>(fd), SOL_SOCKET, SO_DOMAIN, &domain, &len) != 0 ||
        (domain != AF_INET && domain != AF_INET6))
      continue;
    int one = 1;
    ::setsockopt(static_cast<int>(fd), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ::closedir(d);
}

}  // namespace

MqttOptions mqtt_options(const BrokerConfig& broker, std::string client_id) {
  MqttOptions o;
  o.uri = broker.uri;
  o.client_id = std::move(client_id);
  o.username = broker.username;
  if (!broker.password_file.empty()) {
    std::ifstream in(broker.password_file);
    if (!in) throw std::runtime_error(broker.password_file + ": cannot read the broker password file");
    std::getline(in, o.password);
    if (!o.password.empty() && o.password.back() == '\r') o.password.pop_back();
  }
  o.keepalive_s = broker.keepalive_s;
  o.reconnect_max_s = broker.reconnect_max_s;
  o.backlog_limit = broker.backlog;
  o.max_packet_size = static_cast<std::uint32_t>(kMaxPacket);
  o.max_payload = kMaxPayload;
  return o;
}

std::string describe(const LinkEvent& ev, const BrokerOrigin& origin) {
  if (ev.type != LinkEvent::Type::connect_failed || ev.code == 0) return ev.detail;
  return ev.detail + ": " + connect_hint(ev.code, origin);
}

MqttLink::MqttLink(MqttOptions options)
    : opt_(std::move(options)), backoff_s_(opt_.reconnect_min_s), jitter_state_(random_u64()) {
  // Paho queues the publishes it cannot put on the wire yet (the broker's
  // receive maximum is reached) and refuses more than maxBufferedMessages
  // of them, 100 by default: far too few for a gateway pinging thousands
  // of nodes. Our own backlog is the bound while offline; this is only
  // the queue of a connected link.
  client_ = std::make_unique<mqtt::async_client>(opt_.uri, opt_.client_id,
                                                 mqtt::create_options(MQTTVERSION_5, opt_.max_buffered), nullptr);
  connect_listener_ = std::make_unique<ConnectListener>([this](int code) {
    push_event(LinkEvent{LinkEvent::Type::connect_failed, connect_failure(opt_.uri, code), code});
  });
  client_->set_connected_handler([this](const std::string&) {
    push_event(LinkEvent{LinkEvent::Type::connected});
  });
  client_->set_connection_lost_handler([this](const std::string& cause) {
    push_event(LinkEvent{LinkEvent::Type::lost, cause.empty() ? "connection lost" : cause});
  });
  client_->set_message_callback([this](mqtt::const_message_ptr m) {
    LinkEvent ev{LinkEvent::Type::message};
    ev.msg.topic = m->get_topic();
    const auto& pl = m->get_payload_ref();
    // An oversized payload is kept only as far as its drop needs.
    std::size_t keep = pl.size() > opt_.max_payload ? opt_.max_payload + 1 : pl.size();
    ev.msg.payload.assign(pl.data(), pl.data() + keep);
    ev.msg.retained = m->is_retained();
    const auto& props = m->get_properties();
    if (props.contains(mqtt::property::RESPONSE_TOPIC))
      ev.msg.response_topic = mqtt::get<std::string>(props, mqtt::property::RESPONSE_TOPIC);
    if (props.contains(mqtt::property::CORRELATION_DATA)) {
      auto c = mqtt::get<std::string>(props, mqtt::property::CORRELATION_DATA);
      ev.msg.correlation.assign(c.begin(), c.end());
    }
    ev.msg.received_mono_us = mono_us();
    push_event(std::move(ev));
  });
}

MqttLink::~MqttLink() {
  mqtt::token_ptr disconnecting;
  try {
    client_->disable_callbacks();
    if (client_->is_connected()) {
      disconnecting = client_->disconnect(0);
      disconnecting->wait_for(std::chrono::milliseconds(500));
    }
  } catch (...) {
  }
  // Paho's threads may still hold `this` in a callback: end the client
  // before the queue and listener it points to. The disconnect token lives
  // until then, since Paho's thread may still be signalling it.
  client_.reset();
}

void MqttLink::push_event(LinkEvent ev) {
  {
    std::lock_guard lock(mu_);
    if (ev.type == LinkEvent::Type::message) {
      if (queued_messages_ >= opt_.inbound_limit) {
        ++dropped_inbound_;
        return;
      }
      ++queued_messages_;
    }
    events_.push_back(std::move(ev));
  }
  cv_.notify_one();
  if (opt_.on_event) opt_.on_event();
}

void MqttLink::add_subscription(std::string filter, int qos) {
  subs_.emplace_back(filter, qos);
  if (connected_) {
    try {
      client_->subscribe(filter, qos);
    } catch (const mqtt::exception& e) {
      log::warn("mqtt", "subscribe " + filter + ": " + e.what());
    }
  }
}

void MqttLink::schedule_retry(std::int64_t now_us) {
  // xorshift for jitter: 50..100 % of the current backoff
  jitter_state_ ^= jitter_state_ << 13;
  jitter_state_ ^= jitter_state_ >> 7;
  jitter_state_ ^= jitter_state_ << 17;
  double jitter = 0.5 + 0.5 * static_cast<double>(jitter_state_ % 1000) / 1000.0;
  next_attempt_us_ = now_us + static_cast<std::int64_t>(backoff_s_ * jitter * 1e6);
  backoff_s_ = std::min(opt_.reconnect_max_s, backoff_s_ * 2);
}

void MqttLink::service(std::int64_t now_us) {
  if (connected_ || connecting_ || now_us < next_attempt_us_) return;
  auto builder = mqtt::connect_options_builder()
                     .mqtt_version(MQTTVERSION_5)
                     .clean_start(true)
                     .keep_alive_interval(std::chrono::seconds(opt_.keepalive_s))
                     .connect_timeout(std::chrono::seconds(5))
                     .max_inflight(opt_.max_inflight)
                     .automatic_reconnect(false);
  if (!opt_.username.empty()) builder.user_name(opt_.username).password(opt_.password);
  if (opt_.max_packet_size) {
    mqtt::properties props;
    props.add({mqtt::property::MAXIMUM_PACKET_SIZE, static_cast<int32_t>(opt_.max_packet_size)});
    builder.properties(props);
  }
  if (opt_.will) {
    mqtt::message will(opt_.will->topic, opt_.will->payload.data(), opt_.will->payload.size(),
                       opt_.will->qos, opt_.will->retain);
    builder.will(will);
  }
  connecting_ = true;
  try {
    client_->connect(builder.finalize(), nullptr, *connect_listener_);
  } catch (const mqtt::exception& e) {
    connecting_ = false;
    log::warn("mqtt", std::string("connect: ") + e.what());
    schedule_retry(now_us);
  }
}

std::vector<LinkEvent> MqttLink::wait(std::int64_t deadline_us) {
  std::vector<LinkEvent> out;
  {
    std::unique_lock lock(mu_);
    auto now = mono_us();
    if (events_.empty() && deadline_us > now)
      cv_.wait_for(lock, std::chrono::microseconds(deadline_us - now), [this] { return !events_.empty(); });
    out.assign(std::make_move_iterator(events_.begin()), std::make_move_iterator(events_.end()));
    events_.clear();
    queued_messages_ = 0;
    counters_.inbound_dropped = dropped_inbound_;
  }
  for (auto& ev : out) {
    switch (ev.type) {
      case LinkEvent::Type::connected:
        connected_ = true;
        connecting_ = false;
        if (ever_connected_) ++counters_.reconnects;
        ever_connected_ = true;
        connected_since_us_ = mono_us();
        disable_nagle_on_tcp_sockets();
        for (const auto& [filter, qos] : subs_) {
          try {
            client_->subscribe(filter, qos);
          } catch (const mqtt::exception& e) {
            log::warn("mqtt", "subscribe " + filter + ": " + e.what());
          }
        }
        break;
      case LinkEvent::Type::lost:
      case LinkEvent::Type::connect_failed: {
        // The backoff starts over only after a link that held for a while:
        // two clients fighting over one client id must not flap at full speed.
        auto now = mono_us();
        if (ev.type == LinkEvent::Type::lost && now - connected_since_us_ >= kStableLinkUs)
          backoff_s_ = opt_.reconnect_min_s;
        connected_ = false;
        connecting_ = false;
        schedule_retry(now);
        break;
      }
      case LinkEvent::Type::message:
        break;
    }
  }
  return out;
}

bool MqttLink::send(const std::string& topic, const Bytes& payload, int qos, bool retain,
                    const PublishProps& props) {
  mqtt::properties mp;
  if (props.expiry_s) mp.add({mqtt::property::MESSAGE_EXPIRY_INTERVAL, static_cast<int32_t>(props.expiry_s)});
  if (!props.response_topic.empty()) mp.add({mqtt::property::RESPONSE_TOPIC, props.response_topic});
  if (!props.correlation.empty())
    mp.add({mqtt::property::CORRELATION_DATA,
            std::string(props.correlation.begin(), props.correlation.end())});
  try {
    client_->publish(mqtt::message::create(topic, payload.data(), payload.size(), qos, retain, mp));
    ++counters_.published;
    return true;
  } catch (const mqtt::exception& e) {
    ++counters_.publish_failures;
    // Rare, and a sign of overload: say so, at most every 10 s.
    auto now = mono_us();
    if (now - last_failure_log_us_ >= 10'000'000) {
      last_failure_log_us_ = now;
      log::warn("mqtt", "publish on " + topic + " refused: " + e.what() + " (" +
                            std::to_string(counters_.publish_failures) + " so far); kept in the backlog");
    }
    return false;
  }
}

bool MqttLink::publish(const std::string& topic, const Bytes& payload, int qos, bool retain,
                       const PublishProps& props) {
  if (connected_ && backlog_.empty() && send(topic, payload, qos, retain, props)) return true;
  if (qos == 0) {
    ++counters_.offline_dropped;
    return false;
  }
  if (backlog_.size() >= opt_.backlog_limit) {
    backlog_.pop_front();
    ++counters_.backlog_dropped;
  }
  backlog_.push_back({topic, payload, retain, props});
  if (connected_) drain_backlog();
  return false;
}

void MqttLink::drain_backlog() {
  while (connected_ && !backlog_.empty()) {
    auto& o = backlog_.front();
    if (!send(o.topic, o.payload, 1, o.retain, o.props)) break;
    backlog_.pop_front();
  }
}

void MqttLink::close(const std::string& last_topic, const Bytes& last_payload, int timeout_ms) {
  if (!connected_) return;
  try {
    auto tok = client_->publish(
        mqtt::message::create(last_topic, last_payload.data(), last_payload.size(), 1, true));
    tok->wait_for(std::chrono::milliseconds(timeout_ms));
    auto disconnecting = client_->disconnect(timeout_ms);
    disconnecting->wait_for(std::chrono::milliseconds(timeout_ms));
    held_tokens_ = {tok, disconnecting};  // released after the client itself
  } catch (const mqtt::exception& e) {
    log::warn("mqtt", std::string("close: ") + e.what());
  }
  connected_ = false;
}

}  // namespace kairos

#include "common/io/mqtt.h"

#include <MQTTAsync.h>
#include <mqtt/async_client.h>

#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <fstream>
#include <sstream>

#include "common/core/frame.h"
#include "common/core/x509.h"
#include "common/io/clock.h"
#include "common/io/log.h"
#include "common/io/paho_wake.h"

namespace kairos {

std::mutex& fd_walk_mutex() {
  static std::mutex walk;
  return walk;
}

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
// One walk at a time: links serviced from several threads (the gateway's
// bridges) would otherwise see, and probe, each other's directory fd as it closes.
void disable_nagle_on_tcp_sockets() {
  std::lock_guard lock(fd_walk_mutex());
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

// Paho's TLS trace lines, process-wide. Paho C reports every failed TLS
// handshake as -1; what went wrong is only in its trace: the alert OpenSSL
// sent or received, the OpenSSL call that failed, and its own host check
// after the handshake (SSLSocket.c). (Paho C++ 1.2's ssl error_handler is
// not used: the C library keeps a pointer to the connect options that
// async_client::connect was given by value, gone when OpenSSL reports.)
// Trace output is on only while some attempt runs, so that a connected
// client formats nothing.
class TlsTrace {
 public:
  static TlsTrace& get() {
    static TlsTrace* trace = new TlsTrace;  // never destroyed: Paho's threads may trace during exit
    return *trace;
  }
  // An attempt starts (or ends): output on while any runs.
  void begin() {
    std::lock_guard lock(mu_);
    if (running_++ == 0) MQTTAsync_setTraceLevel(MQTTASYNC_TRACE_MINIMUM);
  }
  void end() {
    std::lock_guard lock(mu_);
    if (running_ > 0 && --running_ == 0) MQTTAsync_setTraceLevel(MQTTASYNC_TRACE_FATAL);
  }
  std::uint64_t mark() const {
    std::lock_guard lock(mu_);
    return seq_;
  }
  // The lines kept since mark, oldest first.
  std::vector<std::string> since(std::uint64_t mark) const {
    std::lock_guard lock(mu_);
    std::vector<std::string> out;
    for (const auto& [seq, line] : lines_)
      if (seq > mark) out.push_back(line);
    return out;
  }

 private:
  TlsTrace() {
    MQTTAsync_setTraceLevel(MQTTASYNC_TRACE_FATAL);  // before the callback: Paho's default would pass everything
    MQTTAsync_setTraceCallback(&TlsTrace::on_trace);
  }
  static void on_trace(enum MQTTASYNC_TRACE_LEVELS, char* message) {
    if (!message) return;
    std::string_view m(message);
    bool wanted = false;
    for (std::string_view part : {"SSL alert", "SSL handshake", "SSL negotiation finished", "X509_check_host",
                                  "X509_check_ip_asc", "-> CONNECT", "SSLSocket error ("})
      if (m.find(part) != std::string_view::npos) wanted = true;
    if (wanted) get().keep(m);
  }
  void keep(std::string_view line) {
    std::lock_guard lock(mu_);
    lines_.emplace_back(++seq_, std::string(line.substr(0, 240)));
    if (lines_.size() > 512) lines_.pop_front();
  }

  mutable std::mutex mu_;
  std::deque<std::pair<std::uint64_t, std::string>> lines_;
  std::uint64_t seq_ = 0;
  int running_ = 0;
};

// A whole file, or why not ("No such file or directory").
std::string read_whole(const std::string& path, std::string& why) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    why = std::strerror(errno);
    return "";
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Reads and checks the TLS files of broker; warns about a certificate out
// of (or near the end of) its validity.
MqttOptions::Tls tls_files(const BrokerConfig& b) {
  MqttOptions::Tls t{b.ca_file, b.cert_file, b.key_file};
  auto fail = [](const std::string& key, const std::string& file, const std::string& why) {
    throw std::runtime_error("broker." + key + " " + file + ": " + why);
  };
  auto read = [&](const std::string& key, const std::string& file) {
    std::string why;
    std::string text = read_whole(file, why);
    if (!why.empty()) fail(key, file, "cannot read it: " + why);
    return text;
  };
  std::string why;
  const std::string ca = read("ca_file", b.ca_file);
  if (count_certs(ca, why) == 0) fail("ca_file", b.ca_file, why + " (expected the CA's certificate, PEM)");
  if (b.cert_file.empty()) return t;
  const std::string cert = read("cert_file", b.cert_file);
  struct stat st {};
  if (::stat(b.key_file.c_str(), &st) == 0 && (st.st_mode & (S_IWGRP | S_IXGRP | S_IRWXO)) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%03o", st.st_mode & 0777);
    fail("key_file", b.key_file,
         std::string("has mode ") + mode + " and may be read or changed by others; run: chmod 600 " + b.key_file);
  }
  const std::string key = read("key_file", b.key_file);
  auto facts = read_cert(cert, why);
  if (!facts) fail("cert_file", b.cert_file, why + " (expected this client's certificate, PEM)");
  if (!read_private_key(key, why)) fail("key_file", b.key_file, why);
  if (!key_fits_cert(cert, key)) fail("key_file", b.key_file, "is not the key of the certificate in " + b.cert_file);
  t.cert_not_before_s = facts->not_before_s;
  t.cert_not_after_s = facts->not_after_s;
  t.cert_from_ca = issued_by(cert, ca);
  const std::int64_t now_s = wall_us() / 1'000'000;
  const std::string valid = " (valid " + utc_text(facts->not_before_s) + " to " + utc_text(facts->not_after_s) + ")";
  switch (validity_at(*facts, now_s)) {
    case Validity::expired:
      log::warn("mqtt", "broker.cert_file " + b.cert_file + " has expired" + valid +
                            ": the broker will refuse it; renew it (kairosctl provision)");
      break;
    case Validity::not_yet_valid:
      log::warn("mqtt", "broker.cert_file " + b.cert_file + " is not valid yet" + valid +
                            "; this machine's clock says " + utc_text(now_s) + ": is it set (NTP)?");
      break;
    case Validity::valid:
      if (facts->not_after_s - now_s < 30 * 86400)
        log::warn("mqtt", "broker.cert_file " + b.cert_file + " expires on " + utc_text(facts->not_after_s) +
                              ": renew it (kairosctl provision renews certificates in their last 30 days)");
      break;
  }
  if (!t.cert_from_ca)
    log::warn("mqtt", "broker.cert_file " + b.cert_file + " is not signed by a CA of broker.ca_file " + b.ca_file +
                          ": a broker that trusts only that CA will refuse it");
  return t;
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
  if (auto problem = tls_settings_problem(broker); !problem.empty()) throw std::runtime_error(problem);
  if (uri_is_tls(broker.uri)) o.tls = tls_files(broker);
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
  if (opt_.tls) TlsTrace::get();
  static const bool woken = [] {
    if (paho_wake_installed()) return true;
    log::warn("mqtt", "this build's usleep is the C library's: a command reaching a quiet link can wait up to "
                      "100 ms in Paho's receive thread (docs/DESIGN.md 4, quiet links)");
    return false;
  }();
  (void)woken;
  connect_listener_ = std::make_unique<ConnectListener>([this](int code) {
    attempt_failed_us_ = mono_us();
    push_event(LinkEvent{LinkEvent::Type::connect_failed, connect_failure(opt_.uri, code), code});
  });
  client_->set_connected_handler([this](const std::string&) {
    push_event(LinkEvent{LinkEvent::Type::connected});
  });
  client_->set_connection_lost_handler([this](const std::string& cause) {
    push_event(LinkEvent{LinkEvent::Type::lost, cause.empty() ? "connection lost" : cause});
  });
  client_->set_disconnected_handler([this](const mqtt::properties&, mqtt::ReasonCode reason) {
    if (reason != mqtt::ReasonCode::SESSION_TAKEN_OVER) return;
    LinkEvent ev{LinkEvent::Type::lost,
                 "the broker gave this client id to another connection (session taken over): is the same id "
                 "running twice?"};
    ev.taken_over = true;
    push_event(std::move(ev));
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
  PahoTeardown quick;  // Paho's threads are waited for in 1 ms steps, not 100 ms ones
  mqtt::token_ptr disconnecting;
  try {
    client_->disable_callbacks();
    if (client_->is_connected()) {
      // Not closed by close(): an exit the owner did not see coming. The
      // broker is asked to publish the Will all the same (MQTT v5 reason
      // 0x04), so that nobody is left believing we are online.
      disconnecting = client_->disconnect(
          mqtt::disconnect_options_builder().reason_code(mqtt::ReasonCode::DISCONNECT_WITH_WILL_MESSAGE).finalize());
      disconnecting->wait_for(std::chrono::milliseconds(500));
    }
  } catch (...) {
  }
  // Paho's threads may still hold `this` in a callback: end the client
  // before the queue and listener it points to. The disconnect token lives
  // until then, since Paho's thread may still be signalling it.
  client_.reset();
  attempt_over();
}

void MqttLink::attempt_over() {
  if (attempt_traced_) TlsTrace::get().end();
  attempt_traced_ = false;
}

void MqttLink::push_event(LinkEvent ev) {
  bool was_empty;
  {
    std::lock_guard lock(mu_);
    if (ev.type == LinkEvent::Type::message) {
      if (queued_messages_ >= opt_.inbound_limit) {
        ++dropped_inbound_;
        return;
      }
      ++queued_messages_;
    }
    was_empty = events_.empty();
    events_.push_back(std::move(ev));
  }
  // The owner sleeps only on an empty queue and takes all of it at once
  // (wait()): one wake per batch, not per message.
  if (!was_empty) return;
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
  if (connected_ || connecting_ || now_us < next_attempt_us_ || now_us < takeover_until_us_) return;
  auto builder = mqtt::connect_options_builder()
                     .mqtt_version(MQTTVERSION_5)
                     .clean_start(true)
                     .keep_alive_interval(std::chrono::seconds(opt_.keepalive_s))
                     .connect_timeout(std::chrono::seconds(kConnectTimeoutS))
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
  if (opt_.tls) {
    // The broker's certificate must chain to ca_file and name the URI's
    // host (verify: Paho's X509_check_host / X509_check_ip_asc after the
    // handshake, before CONNECT carries the password).
    auto ssl = mqtt::ssl_options_builder()
                   .trust_store(opt_.tls->ca_file)
                   .enable_server_cert_auth(true)
                   .verify(true)
                   .finalize();
    if (!opt_.tls->cert_file.empty()) {
      ssl.set_key_store(opt_.tls->cert_file);
      ssl.set_private_key(opt_.tls->key_file);
    }
    builder.ssl(std::move(ssl));
    attempt_trace_mark_ = TlsTrace::get().mark();
    if (!attempt_traced_) TlsTrace::get().begin();
    attempt_traced_ = true;
  }
  attempt_started_us_ = now_us;
  connecting_ = true;
  try {
    client_->connect(builder.finalize(), nullptr, *connect_listener_);
  } catch (const mqtt::exception& e) {
    connecting_ = false;
    attempt_over();
    log::warn("mqtt", std::string("connect: ") + e.what());
    schedule_retry(now_us);
  }
}

void MqttLink::explain_tls_failure(LinkEvent& ev) {
  TlsEvidence e;
  e.trace = TlsTrace::get().since(attempt_trace_mark_);
  const auto& t = *opt_.tls;
  const std::int64_t now_s = wall_us() / 1'000'000;
  e.client_cert = !t.cert_file.empty();
  e.client_cert_invalid_now = e.client_cert && (now_s < t.cert_not_before_s || now_s > t.cert_not_after_s);
  e.client_cert_other_ca = e.client_cert && !t.cert_from_ca;
  // Paho notices its timeout about a second late; a quarter second early is near enough.
  e.timed_out = attempt_failed_us_.load() - attempt_started_us_ >= kConnectTimeoutS * 1'000'000LL - 250'000;
  const int code = classify_tls(e);
  if (code == 0) return;
  ev.code = code;
  ev.detail = connect_failure(opt_.uri, code);
  std::string why = tls_evidence_text(e);
  if (code == kTlsClientCertExpired)
    why += std::string(why.empty() ? "" : "; ") + t.cert_file + " is valid " + utc_text(t.cert_not_before_s) + " to " +
           utc_text(t.cert_not_after_s) + ", and this machine's clock says " + utc_text(now_s);
  if (!why.empty()) ev.detail += " [" + why + "]";
}

void LinkWaker::wait_until(std::int64_t deadline_mono_us) {
  std::unique_lock lock(mu_);
  const std::int64_t now = mono_us();
  if (deadline_mono_us <= now) return;
  cv_.wait_for(lock, std::chrono::microseconds(deadline_mono_us - now), [this] { return gen_ != seen_; });
}

bool LinkWaker::take() {
  std::lock_guard lock(mu_);
  if (gen_ == seen_) return false;
  seen_ = gen_;
  return true;
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
        attempt_over();
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
        if (ev.type == LinkEvent::Type::connect_failed && opt_.tls && ev.code == -1) explain_tls_failure(ev);
        if (ev.type == LinkEvent::Type::connect_failed) attempt_over();
        if (ev.type == LinkEvent::Type::lost && now - connected_since_us_ >= kStableLinkUs)
          backoff_s_ = opt_.reconnect_min_s;
        if (ev.type == LinkEvent::Type::lost && now - connected_since_us_ >= 10 * kStableLinkUs) takeover_backoff_s_ = 0;
        connected_ = false;
        connecting_ = false;
        schedule_retry(now);
        if (ev.type == LinkEvent::Type::lost) short_links_ = now - connected_since_us_ < kStableLinkUs ? short_links_ + 1 : 0;
        if (ev.taken_over || short_links_ >= kFlappingLinks) {
          // Two clients with one id take the connection from each other (a
          // broker says so in MQTT v5, or Mosquitto just closes the older
          // one): the one that lost it waits minutes, not seconds.
          if (!ev.taken_over)
            ev.detail += " (the " + std::to_string(short_links_) +
                         "th time in a row right after connecting: is another client using this client id, the same "
                         "id running twice?)";
          takeover_backoff_s_ = takeover_backoff_s_ == 0 ? opt_.takeover_min_s
                                                          : std::min(opt_.takeover_max_s, takeover_backoff_s_ * 2);
          takeover_until_us_ = now + static_cast<std::int64_t>(takeover_backoff_s_ * 1e6);
          ev.detail += "; reconnecting in " + std::to_string(static_cast<int>(takeover_backoff_s_)) + " s";
        }
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

void MqttLink::close(const std::string& last_topic, const Bytes& last_payload, int timeout_ms, bool retain) {
  if (!connected_) return;
  try {
    auto tok = client_->publish(
        mqtt::message::create(last_topic, last_payload.data(), last_payload.size(), 1, retain));
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

#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/core/broker.h"
#include "common/core/bytes.h"

namespace mqtt {
class async_client;
class iaction_listener;
}

namespace kairos {

struct MqttOptions {
  std::string uri = "tcp://127.0.0.1:1883";
  std::string client_id;
  std::string username;
  std::string password;
  int keepalive_s = 10;
  double reconnect_min_s = 0.5;
  double reconnect_max_s = 30.0;  // docs/DESIGN.md 3.8 cap
  int max_inflight = 1024;
  int max_buffered = 100'000;             // publishes Paho may queue while connected
  std::size_t backlog_limit = 1000;       // QoS 1 frames kept while offline
  std::size_t inbound_limit = 200'000;    // received frames waiting for the owner
  // After the broker gives our client id to another connection (MQTT v5
  // "session taken over": the same node id running twice), reconnecting
  // waits from takeover_min_s, doubling up to takeover_max_s.
  double takeover_min_s = 15.0;
  double takeover_max_s = 300.0;
  // Sent to the broker as the MQTT v5 Maximum Packet Size: it does not
  // forward us anything larger. Payloads larger than max_payload that still
  // arrive (a broker ignoring it) are cut to max_payload + 1 bytes before
  // they are queued, enough to be dropped as oversized (docs/DESIGN.md 4).
  std::uint32_t max_packet_size = 0;      // 0: no limit
  std::size_t max_payload = SIZE_MAX;
  // MQTT over TLS (an ssl:// or mqtts:// uri): PEM files, and what
  // mqtt_options read from them, so that a refused handshake can be
  // explained (docs/DESIGN.md 4).
  struct Tls {
    std::string ca_file;    // the CA the broker's certificate must chain to
    std::string cert_file;  // this client's certificate; "" for none
    std::string key_file;   // its private key
    std::int64_t cert_not_before_s = 0;  // cert_file's validity, Unix time, s
    std::int64_t cert_not_after_s = 0;
    bool cert_from_ca = true;  // cert_file is signed by a CA of ca_file
  };
  std::optional<Tls> tls;
  struct Will {
    std::string topic;
    Bytes payload;
    int qos = 1;
    bool retain = true;
  };
  std::optional<Will> will;
  // Called from Paho's threads after an event was queued, for an owner that
  // waits on several links at once (kairos-sim). It must only signal (e.g. a
  // condition variable): never block, never call back into the link.
  std::function<void()> on_event;
};

// Options from a [broker] table; reads the password file (first line)
// and, for TLS, checks the CA, certificate and key files: readable, PEM,
// the key that of the certificate and not readable by others (a
// certificate out of its validity only warns: a Pi's clock may not be set
// yet). Throws std::runtime_error naming the key and the file.
MqttOptions mqtt_options(const BrokerConfig& broker, std::string client_id);

// The seconds Paho waits for a connection, TLS handshake and CONNACK
// before an attempt fails (it notices about a second later).
inline constexpr int kConnectTimeoutS = 5;

struct PublishProps {
  std::uint32_t expiry_s = 0;  // MQTT v5 message expiry, 0 = none
  std::string response_topic;
  Bytes correlation;
};

struct Inbound {
  std::string topic;
  Bytes payload;
  bool retained = false;
  std::string response_topic;
  Bytes correlation;
  std::int64_t received_mono_us = 0;
};

struct LinkEvent {
  enum class Type { connected, lost, connect_failed, message };
  explicit LinkEvent(Type t, std::string why = {}, int why_code = 0)
      : type(t), detail(std::move(why)), code(why_code) {}
  Type type;
  Inbound msg;         // type == message
  std::string detail;  // why, for lost / connect_failed
  bool taken_over = false;  // lost: the broker gave this client id to another connection
  int code = 0;        // connect_failed: Paho's code (MQTT v5 reason or client code, see connect_code)
};

// A lost or failed connection in words; a failed connect with what to do
// about it, naming the settings of origin.
std::string describe(const LinkEvent& ev, const BrokerOrigin& origin);

struct LinkCounters {
  std::uint64_t published = 0;
  std::uint64_t publish_failures = 0;
  std::uint64_t backlog_dropped = 0;  // QoS 1 frames dropped: backlog full
  std::uint64_t offline_dropped = 0;  // QoS 0 frames not sent while offline
  std::uint64_t inbound_dropped = 0;  // received but the owner was too slow
  std::uint64_t reconnects = 0;
};

// Wakes an owner that waits on several links at once: each link's
// MqttOptions::on_event is signal(); the owner waits (wait_until), then
// takes what any link holds with take() and each link's wait(0).
class LinkWaker {
 public:
  std::function<void()> signal() {
    return [this] {
      {
        std::lock_guard lock(mu_);
        ++gen_;
      }
      cv_.notify_one();
    };
  }
  // Until a link has signalled since the last take(), or until deadline (monotonic us).
  void wait_until(std::int64_t deadline_mono_us);
  // True (once) when a link has signalled since the last take().
  bool take();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::uint64_t gen_ = 0;
  std::uint64_t seen_ = 0;
};

// Held while MqttLink walks the process's file descriptors to set
// TCP_NODELAY on Paho's sockets, and by a thread of ours that opens or
// closes a socket meanwhile (MqttReader), so that the walk never probes a
// descriptor as it is made or unmade.
std::mutex& fd_walk_mutex();

// An MQTT v5 connection owned by one thread (the daemon's loop). Paho's
// callbacks only queue events; every decision runs in the owner's thread in
// wait() and service(), so nothing blocks inside a Paho callback. Reconnects
// back off exponentially with jitter; subscriptions are renewed on every
// connect; QoS 1 frames published while offline wait in a bounded backlog.
class MqttLink {
 public:
  explicit MqttLink(MqttOptions options);
  ~MqttLink();
  MqttLink(const MqttLink&) = delete;
  MqttLink& operator=(const MqttLink&) = delete;

  // The Will registered with the next connect attempt.
  void set_will(MqttOptions::Will will) { opt_.will = std::move(will); }
  // Filters subscribed now (if connected) and after every connect.
  void add_subscription(std::string filter, int qos);
  // Starts connecting or reconnects when due; call from the loop.
  void service(std::int64_t now_mono_us);
  // Waits until an event arrives or until deadline; returns what arrived.
  // Connection events update the link's own state before they are returned.
  std::vector<LinkEvent> wait(std::int64_t deadline_mono_us);
  // Publishes; while offline a QoS 1 frame waits in the backlog (oldest
  // dropped first when full) and a QoS 0 frame is dropped. False if not sent now.
  bool publish(const std::string& topic, const Bytes& payload, int qos, bool retain,
               const PublishProps& props = {});
  // Sends what the backlog holds, oldest first, while the link takes it.
  void drain_backlog();
  // Publishes `last` (e.g. an offline state; QoS 1, retained unless said) and disconnects, waiting at most timeout_ms.
  void close(const std::string& last_topic, const Bytes& last_payload, int timeout_ms, bool retain = true);

  bool connected() const { return connected_; }
  std::size_t backlog_size() const { return backlog_.size(); }
  const LinkCounters& counters() const { return counters_; }

 private:
  struct Outbound {
    std::string topic;
    Bytes payload;
    bool retain;
    PublishProps props;
  };
  bool send(const std::string& topic, const Bytes& payload, int qos, bool retain, const PublishProps& props);
  void push_event(LinkEvent ev);
  void schedule_retry(std::int64_t now_us);
  void attempt_over();
  // A TLS attempt's Paho code -1 made precise (kTls* codes), from what it left behind.
  void explain_tls_failure(LinkEvent& ev);

  MqttOptions opt_;
  std::unique_ptr<mqtt::async_client> client_;
  std::unique_ptr<mqtt::iaction_listener> connect_listener_;
  std::vector<std::shared_ptr<void>> held_tokens_;  // see close()
  std::vector<std::pair<std::string, int>> subs_;
  std::deque<Outbound> backlog_;
  LinkCounters counters_;
  bool connected_ = false;
  bool connecting_ = false;
  bool ever_connected_ = false;
  static constexpr std::int64_t kStableLinkUs = 10'000'000;
  double backoff_s_;
  double takeover_backoff_s_ = 0;  // 0: no takeover since the link last held
  std::int64_t takeover_until_us_ = 0;  // no attempt before this after a takeover
  int short_links_ = 0;                 // links lost within kStableLinkUs, in a row
  static constexpr int kFlappingLinks = 3;
  std::int64_t connected_since_us_ = 0;
  std::int64_t next_attempt_us_ = 0;
  std::uint64_t jitter_state_;
  std::int64_t last_failure_log_us_ = -10'000'000;
  // The current connect attempt: when it started, where Paho's TLS trace
  // stood then, and when it failed (set from Paho's thread).
  std::int64_t attempt_started_us_ = 0;
  std::uint64_t attempt_trace_mark_ = 0;
  bool attempt_traced_ = false;
  std::atomic<std::int64_t> attempt_failed_us_{0};

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<LinkEvent> events_;
  std::size_t queued_messages_ = 0;
  std::uint64_t dropped_inbound_ = 0;  // guarded by mu_
};

}  // namespace kairos

#pragma once
// The gateway's connection for node frames (docs/DESIGN.md 4, "The ingest
// connection"): an MQTT v5 client on a plain TCP socket that reads
// whatever the socket holds at once (many packets per recv) and hands the
// messages to the owner in batches. Paho C reads every packet with three
// recv calls and walks its own locks and heap list per message, most of a
// core at 36,000 frames a second; this client needs CONNECT, SUBSCRIBE,
// PUBLISH at QoS 0 and 1, PUBACK and PINGREQ. It publishes too (kairos-sim's
// --client lean, a load generator that must not be the bottleneck): what
// the owner hands it leaves in as few writes as the socket takes, within
// the broker's Receive Maximum; QoS 1 publishes not acknowledged when a
// connection ends are sent again on the next. No Will, no properties.
// TLS stays with Paho (MqttLink): usable() says whether a URI can use this.
#include <atomic>
#include <bitset>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "common/core/bytes.h"
#include "common/io/mqtt.h"

namespace kairos {

struct ReaderCounters {
  std::uint64_t received = 0;        // PUBLISH packets read
  std::uint64_t inbound_dropped = 0;  // read but the owner was too slow (its queue held inbound_limit)
  std::uint64_t reconnects = 0;
  std::uint64_t protocol_errors = 0;  // connections dropped for a packet the broker should not send
  std::uint64_t published = 0;        // publishes taken from the owner
  std::uint64_t publish_failures = 0;  // QoS 1 publishes the broker refused (its PUBACK's reason)
  std::uint64_t backlog_dropped = 0;   // QoS 1 publishes refused: backlog_limit of them waiting
  std::uint64_t offline_dropped = 0;   // QoS 0 publishes refused while not connected
};

class MqttReader {
 public:
  // Uses uri (tcp:// or mqtt://), client_id, username, password,
  // keepalive_s, reconnect_min_s/max_s, takeover_min_s/max_s,
  // inbound_limit, max_packet_size, max_payload and on_event.
  explicit MqttReader(MqttOptions options);
  ~MqttReader();  // disconnects and joins its thread
  MqttReader(const MqttReader&) = delete;
  MqttReader& operator=(const MqttReader&) = delete;

  // A plain TCP URI (tcp:// or mqtt://): this client does not speak TLS or websockets.
  static bool usable(const std::string& uri);

  // Filters subscribed on every connect; all of them before start().
  void add_subscription(std::string filter, int qos);
  // Starts the connection's thread (once; later calls do nothing). Its
  // `connected` event comes once the broker has acknowledged the
  // subscriptions: nothing published to them after it is missed.
  void start();
  // Waits until an event arrives or until deadline; returns what arrived, in order.
  std::vector<LinkEvent> wait(std::int64_t deadline_mono_us);
  // Queues a publish (QoS 0 or 1) for the connection's thread. False when
  // refused: QoS 0 while not connected, QoS 1 with backlog_limit waiting
  // (counted). QoS 1 publishes wait through a reconnect.
  // With wake false the connection's thread is not woken for it: a batch
  // handed over one publish at a time wakes it once, at wake().
  bool publish(std::string_view topic, ByteView payload, int qos, bool retain, bool wake = true);
  void wake();
  // Publishes handed over and not yet acknowledged (QoS 1) or written (QoS 0).
  std::size_t unsent();
  // Waits until every publish handed over was sent and acknowledged, or
  // until deadline; true when they were.
  bool flush(std::int64_t deadline_mono_us);

  bool connected() const { return connected_.load(std::memory_order_relaxed); }
  // As of the last wait().
  const ReaderCounters& counters() const { return counters_; }
  // As of now (takes the lock the connection's thread takes).
  ReaderCounters counters_now();

 private:
  struct Ended {
    std::string why;
    int code = -1;             // not held: the CONNACK's reason, or -1 (as connect_failure)
    bool held = false;         // the broker accepted the connection
    bool taken_over = false;
    bool stop = false;         // the owner stopped it
  };
  void run();
  // A socket connected to the broker, CONNECT sent and CONNACK read; -1 with code (as connect_failure) when not.
  int open(int& code, std::string& why);
  // Reads and answers until the connection ends.
  Ended session(int fd);
  void push(std::vector<LinkEvent>& batch);
  // Moves what the owner queued into out, as far as the broker's window and the socket's pace allow.
  void take_publishes(std::string& out);
  // After a connection ended: its unacknowledged QoS 1 publishes wait for the next, first.
  void requeue_unacked();
  // A PUBACK: its publish is done (count), or refused by the broker (refused too).
  void acked(std::uint16_t packet_id, std::uint8_t reason, std::size_t& count, std::size_t& refused);
  bool pause_until(std::int64_t deadline_mono_us);  // false when stopped

  MqttOptions opt_;
  std::string host_, port_;
  std::vector<std::pair<std::string, int>> subs_;
  std::thread thread_;
  int stop_fd_ = -1;  // an eventfd: written to stop the thread
  int kick_fd_ = -1;  // an eventfd: written when publishes wait for the thread
  std::atomic<bool> stopping_{false};
  std::atomic<bool> connected_{false};
  std::uint16_t keepalive_s_ = 10;  // the broker may set its own (CONNACK)
  std::size_t max_packet_ = 0;      // the largest packet taken, header included
  bool ever_connected_ = false;     // the thread's

  // Between the thread and the owner.
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<LinkEvent> events_;
  std::size_t queued_messages_ = 0;
  struct Outgoing {
    std::string packet;  // a whole PUBLISH
    std::size_t id_at = 0;  // QoS 1: where its packet id goes; 0 for QoS 0
  };
  std::deque<Outgoing> outbox_;  // handed over, not yet written
  std::size_t unacked_count_ = 0;  // written, waiting for their PUBACK
  std::condition_variable drained_;  // outbox_ and the unacknowledged both empty

  // The connection's thread's.
  std::atomic<bool> outbox_waiting_{false};  // outbox_ holds something (read without the lock)
  std::deque<std::pair<std::uint16_t, Outgoing>> unacked_;  // in the order sent
  std::bitset<65536> ids_in_use_;
  std::uint16_t receive_max_ = 65535;
  std::uint16_t next_id_ = 0;
  ReaderCounters shared_;  // guarded by mu_
  ReaderCounters counters_;  // the owner's copy
};

}  // namespace kairos

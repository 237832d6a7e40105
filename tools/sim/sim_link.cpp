#include "tools/sim/sim_link.h"

#include "common/io/clock.h"
#include "common/io/mqtt_reader.h"

namespace kairos::sim {

namespace {

// Paho runs one send thread for all connections and its cost per queued
// command grows with the queue (it scans the whole command list), so the
// simulator offers frames at a pace that thread keeps up with: at most 24
// a millisecond in all, and at most 8 QoS 1 frames per connection. The
// latter because that thread is woken by new commands only, never by a
// PUBACK: once the broker's receive maximum is reached (Mosquitto: 20 QoS 1
// frames in flight) and the client's buffer is full (100 commands), new
// frames are refused and nothing wakes it for up to a second.
class PahoLink final : public SimLink {
 public:
  explicit PahoLink(MqttOptions o) : link_(std::move(o)) {}
  void add_subscription(std::string filter, int qos) override { link_.add_subscription(std::move(filter), qos); }
  void service(std::int64_t now) override { link_.service(now); }
  std::vector<LinkEvent> wait(std::int64_t deadline) override { return link_.wait(deadline); }
  bool publish(const std::string& topic, const Bytes& payload, int qos, bool retain) override {
    return link_.publish(topic, payload, qos, retain);
  }
  bool connected() const override { return link_.connected(); }
  std::size_t backlog_size() const override { return link_.backlog_size(); }
  void drain_backlog() override { link_.drain_backlog(); }
  LinkCounters counters() const override { return link_.counters(); }
  void close(const std::string& topic, const Bytes& payload, int timeout_ms) override {
    link_.close(topic, payload, timeout_ms);
  }
  int frames_per_ms() const override { return 24; }
  int acked_per_link_ms() const override { return 8; }

 private:
  MqttLink link_;
};

// The lean client takes what it is given at once and keeps the broker's
// window itself; the pace only keeps a burst of a whole mesh's frames from
// piling up in memory ahead of the socket.
class LeanLink final : public SimLink {
 public:
  explicit LeanLink(MqttOptions o) : client_(std::move(o)) {}
  void add_subscription(std::string filter, int qos) override { client_.add_subscription(std::move(filter), qos); }
  void service(std::int64_t) override { client_.start(); }
  std::vector<LinkEvent> wait(std::int64_t deadline) override { return client_.wait(deadline); }
  bool publish(const std::string& topic, const Bytes& payload, int qos, bool retain) override {
    const bool taken = client_.publish(topic, payload, qos, retain, false);
    handed_ = handed_ || taken;
    return taken;
  }
  void handed() override {
    if (handed_) client_.wake();
    handed_ = false;
  }
  bool connected() const override { return client_.connected(); }
  std::size_t backlog_size() const override { return 0; }
  void drain_backlog() override {}
  LinkCounters counters() const override {
    const auto& c = client_.counters();
    LinkCounters l;
    l.published = c.published;
    l.publish_failures = c.publish_failures;
    l.backlog_dropped = c.backlog_dropped;
    l.offline_dropped = c.offline_dropped;
    l.inbound_dropped = c.inbound_dropped;
    l.reconnects = c.reconnects;
    return l;
  }
  void close(const std::string& topic, const Bytes& payload, int timeout_ms) override {
    client_.wake();
    if (client_.publish(topic, payload, 1, true)) client_.flush(mono_us() + timeout_ms * 1000LL);
  }
  int frames_per_ms() const override { return 250; }
  int acked_per_link_ms() const override { return 250; }

 private:
  MqttReader client_;
  bool handed_ = false;  // publishes handed over since the thread was last woken
};

}  // namespace

std::unique_ptr<SimLink> make_link(SimClient client, MqttOptions options) {
  if (client == SimClient::lean) return std::make_unique<LeanLink>(std::move(options));
  return std::make_unique<PahoLink>(std::move(options));
}

}  // namespace kairos::sim

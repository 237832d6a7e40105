#pragma once
// A bridge's MQTT connection on a thread of its own (docs/DESIGN.md 5.10):
// the loop hands it messages ready to go and takes back what arrived;
// Paho's publish (its lock, its copies) and the reconnects happen on that
// thread, never on the loop's, so a bridge's traffic costs the ingest path
// only the building of its payloads.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/io/mqtt.h"

namespace kairos::gw {

class BridgeLink {
 public:
  struct Message {
    std::string topic;
    Bytes payload;
    int qos = 0;
    bool retained = false;
  };
  // options.will (if any) is the first connection's, tagged will_tag;
  // wake: called (from the link's thread) when events wait for take().
  BridgeLink(MqttOptions options, const std::vector<std::pair<std::string, int>>& subscriptions,
             std::function<void()> wake, std::uint64_t will_tag = 0, std::size_t limit = 100'000);
  ~BridgeLink();
  BridgeLink(const BridgeLink&) = delete;
  BridgeLink& operator=(const BridgeLink&) = delete;

  // Queued for the link's thread. Over the limit the oldest QoS 0 message
  // goes first (else the oldest), counted in dropped().
  void publish(Message m);
  // What happened since the last call: connects, losses, messages.
  std::vector<LinkEvent> take();
  // Connected now, as the link's thread knows it. A bridge acting on what it
  // has taken follows its events instead (a connect is news only once taken).
  bool connected() const { return connected_; }
  // The Will of the next connect after a loss, tagged (Sparkplug: the next
  // bdSeq's NDEATH). Until one is given the current Will stays in force.
  void set_next_will(MqttOptions::Will will, std::uint64_t tag);
  // The tag of the Will of the connection made last.
  std::uint64_t will_tag() const { return will_tag_; }
  // A next Will is queued, not yet taken by a loss.
  bool has_next_will();
  // Publishes last (QoS 1, retained as given) and disconnects, waiting at most timeout_ms; the thread ends.
  void close(Message last, int timeout_ms);
  std::uint64_t dropped() const { return dropped_; }

 private:
  void run();

  std::unique_ptr<MqttLink> link_;  // made after the lock its callbacks take, gone before it
  std::function<void()> wake_;
  const std::size_t limit_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Message> out_;
  std::vector<LinkEvent> in_;
  std::optional<std::pair<MqttOptions::Will, std::uint64_t>> next_will_;
  std::optional<std::pair<Message, int>> closing_;
  bool news_ = false;  // Paho has queued events for link_
  bool stop_ = false;
  std::atomic<bool> connected_{false};
  std::atomic<std::uint64_t> will_tag_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::uint64_t pending_tag_ = 0;  // the tag of the Will link_ holds for its next connect (the thread's)
  std::thread thread_;
};

}  // namespace kairos::gw

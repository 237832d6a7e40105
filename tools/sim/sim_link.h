#pragma once
// kairos-sim's connections to the broker (docs/SIM.md, --client): through
// Paho (MqttLink, the client the node's firmware speaks through; the
// default) or through the lean client (MqttReader), which reads and writes
// many packets per system call and costs a load generator a fraction of
// Paho's CPU: at 30,000 simulated nodes, Paho's receive and send threads
// were two thirds of the simulator's time.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/core/bytes.h"
#include "common/io/mqtt.h"
#include "tools/sim/options.h"

namespace kairos::sim {

class SimLink {
 public:
  virtual ~SimLink() = default;
  // Filters subscribed on every connect; all of them before the first service().
  virtual void add_subscription(std::string filter, int qos) = 0;
  // Connects when it is time to (Paho), or starts the connection's thread (lean).
  virtual void service(std::int64_t now_mono_us) = 0;
  virtual std::vector<LinkEvent> wait(std::int64_t deadline_mono_us) = 0;
  // False when not taken (counted in counters()); QoS 1 frames wait through an outage.
  virtual bool publish(const std::string& topic, const Bytes& payload, int qos, bool retain) = 0;
  // The frames of one turn have been handed over (the lean client's thread is woken once for them).
  virtual void handed() {}
  virtual bool connected() const = 0;
  // QoS 1 frames held by the simulator's side for a reconnect (Paho's backlog; the lean client holds its own).
  virtual std::size_t backlog_size() const = 0;
  virtual void drain_backlog() = 0;
  virtual LinkCounters counters() const = 0;
  // Publishes last_payload (retained, QoS 1), waits for it up to timeout_ms, and disconnects.
  virtual void close(const std::string& last_topic, const Bytes& last_payload, int timeout_ms) = 0;
  // Frames a millisecond this client is offered: all of them, and QoS 1 per connection.
  virtual int frames_per_ms() const = 0;
  virtual int acked_per_link_ms() const = 0;
};

std::unique_ptr<SimLink> make_link(SimClient client, MqttOptions options);

}  // namespace kairos::sim

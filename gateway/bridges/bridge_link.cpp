#include "gateway/bridges/bridge_link.h"

#include <algorithm>
#include <chrono>

#include "common/io/clock.h"

namespace kairos::gw {

namespace {

MqttOptions with_signal(MqttOptions o, std::function<void()> signal) {
  o.on_event = std::move(signal);
  return o;
}

}  // namespace

BridgeLink::BridgeLink(MqttOptions options, const std::vector<std::pair<std::string, int>>& subscriptions,
                       std::function<void()> wake, std::uint64_t will_tag, std::size_t limit)
    : wake_(std::move(wake)),
      limit_(limit),
      pending_tag_(will_tag) {
  will_tag_ = will_tag;
  link_ = std::make_unique<MqttLink>(with_signal(std::move(options), [this] {
    {
      std::lock_guard lock(mu_);
      news_ = true;
    }
    cv_.notify_one();
  }));
  for (const auto& [filter, qos] : subscriptions) link_->add_subscription(filter, qos);
  thread_ = std::thread([this] { run(); });
}

BridgeLink::~BridgeLink() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
  link_.reset();  // Paho's callbacks end here, while the lock they take still stands
}

void BridgeLink::publish(Message m) {
  {
    std::lock_guard lock(mu_);
    if (out_.size() >= limit_) {
      auto victim = std::find_if(out_.begin(), out_.end(), [](const Message& o) { return o.qos == 0; });
      out_.erase(victim != out_.end() ? victim : out_.begin());
      ++dropped_;
    }
    out_.push_back(std::move(m));
  }
  cv_.notify_one();
}

std::vector<LinkEvent> BridgeLink::take() {
  std::lock_guard lock(mu_);
  return std::exchange(in_, {});
}

bool BridgeLink::has_next_will() {
  std::lock_guard lock(mu_);
  return next_will_.has_value();
}

void BridgeLink::set_next_will(MqttOptions::Will will, std::uint64_t tag) {
  std::lock_guard lock(mu_);
  next_will_.emplace(std::move(will), tag);
}

void BridgeLink::close(Message last, int timeout_ms) {
  {
    std::lock_guard lock(mu_);
    closing_.emplace(std::move(last), timeout_ms);
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void BridgeLink::run() {
  std::deque<Message> batch;
  for (;;) {
    std::optional<std::pair<Message, int>> closing;
    {
      std::unique_lock lock(mu_);
      // At least every 100 ms: the link's reconnects come due by time.
      cv_.wait_for(lock, std::chrono::milliseconds(100), [this] { return stop_ || closing_ || news_ || !out_.empty(); });
      if (stop_) return;
      news_ = false;
      closing = std::exchange(closing_, std::nullopt);
      batch.swap(out_);
    }
    link_->service(mono_us());
    std::vector<LinkEvent> events = link_->wait(0);
    for (const auto& ev : events) {
      if (ev.type == LinkEvent::Type::connected) {
        connected_ = true;
        will_tag_ = pending_tag_;
        link_->drain_backlog();  // QoS 1 messages queued while it was down
      } else if (ev.type == LinkEvent::Type::lost || ev.type == LinkEvent::Type::connect_failed) {
        connected_ = false;
        std::lock_guard lock(mu_);
        if (next_will_) {  // the next attempt carries the next Will
          link_->set_will(next_will_->first);
          pending_tag_ = next_will_->second;
          next_will_.reset();
        }
      }
    }
    for (auto& m : batch) link_->publish(m.topic, m.payload, m.qos, m.retained);
    batch.clear();
    if (!events.empty()) {
      {
        std::lock_guard lock(mu_);
        in_.insert(in_.end(), std::make_move_iterator(events.begin()), std::make_move_iterator(events.end()));
      }
      if (wake_) wake_();
    }
    if (closing) {
      link_->close(closing->first.topic, closing->first.payload, closing->second, closing->first.retained);
      connected_ = false;
      return;
    }
  }
}

}  // namespace kairos::gw

#pragma once
// The newest frame of something the loop renders (the live page's
// snapshot), handed to any number of reader threads: the loop replaces it,
// readers wait for a newer one and take a reference. Nothing queues: a
// reader that was slow sees only the newest frame.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace kairos::gw {

class Feed {
 public:
  using Frame = std::shared_ptr<const std::string>;
  void publish(std::string frame) {
    auto f = std::make_shared<const std::string>(std::move(frame));
    {
      std::lock_guard lock(mu_);
      frame_ = std::move(f);
      ++version_;
    }
    changed_.notify_all();
  }
  // The newest frame once its version is above `seen` (then seen is set to
  // it); null at the timeout or once closed.
  Frame next(std::uint64_t& seen, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    if (!changed_.wait_for(lock, timeout, [&] { return closed_ || version_ > seen; }) || closed_) return nullptr;
    seen = version_;
    return frame_;
  }
  Frame latest() const {
    std::lock_guard lock(mu_);
    return frame_;
  }
  bool closed() const {
    std::lock_guard lock(mu_);
    return closed_;
  }
  // Readers waiting in next() return at once; they stop.
  void close() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
    }
    changed_.notify_all();
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable changed_;
  Frame frame_;
  std::uint64_t version_ = 0;
  bool closed_ = false;
};

}  // namespace kairos::gw

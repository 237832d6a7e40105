#pragma once
// Work another thread (the HTTP server's) hands to the gateway's loop, whose
// state only the loop may read: the caller waits for the answer, up to a
// deadline, and the loop runs the calls on its next turn. A mutex and a
// condition variable, not std::future: Debian's armel libstdc++ has no
// futex-based futures (ARMv5 baseline), and the gateway builds there too.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

namespace kairos::gw {

class LoopCalls {
 public:
  // wake: makes the loop turn (LinkWaker::signal()).
  explicit LoopCalls(std::function<void()> wake) : wake_(std::move(wake)) {}
  // From any thread: fn's result, run on the loop; nullopt when the loop did
  // not get to it within `wait` (it may still run it; its answer is then dropped).
  template <class Fn>
  auto call(Fn fn, std::chrono::milliseconds wait) -> std::optional<std::invoke_result_t<Fn&>> {
    using T = std::invoke_result_t<Fn&>;
    auto result = std::make_shared<std::optional<T>>();
    auto c = std::make_shared<Call>();
    c->fn = [fn = std::move(fn), result]() mutable { *result = fn(); };
    std::unique_lock lock(mu_);
    if (closed_) return std::nullopt;
    queue_.push_back(c);
    lock.unlock();
    wake_();
    lock.lock();
    if (!done_.wait_for(lock, wait, [&] { return c->done || closed_; }) || !c->done) return std::nullopt;
    return std::move(*result);
  }
  // The loop has ended: callers waiting, and those to come, get nullopt at once.
  void close() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
    }
    done_.notify_all();
  }
  // On the loop: runs what was asked since the last turn.
  void run() {
    std::vector<std::shared_ptr<Call>> now;
    {
      std::lock_guard lock(mu_);
      now.swap(queue_);
    }
    if (now.empty()) return;
    for (auto& c : now) {
      c->fn();  // writes its result, read by the caller only once done is seen under the lock
      std::lock_guard lock(mu_);
      c->done = true;
    }
    done_.notify_all();
  }

 private:
  struct Call {
    std::function<void()> fn;
    bool done = false;
  };
  std::function<void()> wake_;
  std::mutex mu_;
  std::condition_variable done_;
  std::vector<std::shared_ptr<Call>> queue_;
  bool closed_ = false;
};

}  // namespace kairos::gw

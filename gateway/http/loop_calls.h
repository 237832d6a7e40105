#pragma once
// Work another thread (the HTTP server's) hands to the gateway's loop, whose
// state only the loop may read: the caller waits for the answer, up to a
// deadline, and the loop runs the calls on its next turn.
#include <chrono>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace kairos::gw {

class LoopCalls {
 public:
  // wake: makes the loop turn (LinkWaker::signal()).
  explicit LoopCalls(std::function<void()> wake) : wake_(std::move(wake)) {}
  // From any thread: fn's result, run on the loop; nullopt when the loop did
  // not get to it within `wait` (the call is then dropped unrun or its answer unread).
  std::optional<std::string> call(std::function<std::string()> fn, std::chrono::milliseconds wait) {
    std::packaged_task<std::string()> task(std::move(fn));
    auto answer = task.get_future();
    {
      std::lock_guard lock(mu_);
      queue_.push_back(std::move(task));
    }
    wake_();
    if (answer.wait_for(wait) != std::future_status::ready) return std::nullopt;
    return answer.get();
  }
  // On the loop: runs what was asked since the last turn.
  void run() {
    std::vector<std::packaged_task<std::string()>> now;
    {
      std::lock_guard lock(mu_);
      now.swap(queue_);
    }
    for (auto& t : now) t();
  }

 private:
  std::function<void()> wake_;
  std::mutex mu_;
  std::vector<std::packaged_task<std::string()>> queue_;
};

}  // namespace kairos::gw

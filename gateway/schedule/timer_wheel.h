#pragma once
// A hashed timer wheel of 1 ms buckets (docs/DESIGN.md 5.4): items due in the same
// millisecond are released together, by one timer, never a sleep per item.
#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

namespace kairos::gw {

template <class T>
class TimerWheel {
 public:
  static constexpr std::int64_t kBucketUs = 1000;
  explicit TimerWheel(std::size_t slots = 2048) : slots_(slots) {}

  // Queues item for time at_us (any clock, the caller's). A time already
  // past is released by the next advance().
  void add(std::int64_t at_us, T item) {
    std::int64_t b = bucket(at_us);
    slots_[index(b)].push_back({b, std::move(item)});
    ++pending_[b];
    ++size_;
  }

  // Releases every item whose bucket has begun by now_us, earliest bucket
  // first (in the order added within a bucket).
  template <class F>
  void advance(std::int64_t now_us, F&& release) {
    const std::int64_t now_b = bucket(now_us);
    while (!pending_.empty() && pending_.begin()->first <= now_b) {
      const std::int64_t b = pending_.begin()->first;
      auto& slot = slots_[index(b)];
      std::vector<Entry> keep, due;
      for (auto& e : slot) (e.bucket == b ? due : keep).push_back(std::move(e));
      slot = std::move(keep);
      pending_.erase(pending_.begin());
      size_ -= due.size();
      for (auto& e : due) release(e.item);
    }
  }

  // Start of the earliest bucket holding an item; INT64_MAX when empty.
  std::int64_t next_due_us() const { return pending_.empty() ? INT64_MAX : pending_.begin()->first * kBucketUs; }
  std::size_t size() const { return size_; }

 private:
  struct Entry {
    std::int64_t bucket;
    T item;
  };
  static std::int64_t bucket(std::int64_t us) { return us >= 0 ? us / kBucketUs : -((-us + kBucketUs - 1) / kBucketUs); }
  std::size_t index(std::int64_t b) const {
    auto n = static_cast<std::int64_t>(slots_.size());
    return static_cast<std::size_t>(((b % n) + n) % n);
  }

  std::vector<std::vector<Entry>> slots_;
  std::map<std::int64_t, std::size_t> pending_;  // bucket -> items in it
  std::size_t size_ = 0;
};

}  // namespace kairos::gw

#pragma once
// How long nodes wait to be synced after they join (docs/DESIGN.md 5.1):
// from coming online with fewer than ClockFilter::kSyncedSamples clock
// samples to having them. Kept up to date on each change, never by a walk
// of the nodes: the waiting ones by the time they joined, the waits that
// ended in one-second buckets. Pure.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <set>
#include <unordered_map>
#include <utility>

namespace kairos::gw {

class SyncWaits {
 public:
  static constexpr std::int64_t kGoalUs = 120'000'000;  // synced within 2 minutes of joining

  struct View {
    std::uint64_t synced = 0;       // waits that ended with the samples, since the gateway started
    std::uint64_t within_goal = 0;  // of them, within kGoalUs
    double p50_s = 0, p95_s = 0;    // the upper edge of their one-second bucket, at most max_s
    double max_s = 0;
    std::uint64_t waiting = 0;      // online now, still short of the samples
    double longest_waiting_s = 0;   // the one of them that joined first
  };

  // Node `node` came online short of the samples at now_us (monotonic).
  void start(const void* node, std::int64_t now_us) {
    if (since_.contains(node)) return;
    since_.emplace(node, now_us);
    order_.emplace(now_us, node);
  }
  // It went offline, or its entry is gone, before it had them.
  void stop(const void* node) {
    auto it = since_.find(node);
    if (it == since_.end()) return;
    order_.erase({it->second, node});
    since_.erase(it);
  }
  // It has them now.
  void synced(const void* node, std::int64_t now_us) {
    auto it = since_.find(node);
    if (it == since_.end()) return;
    const std::int64_t took = std::max<std::int64_t>(0, now_us - it->second);
    stop(node);
    ++synced_;
    within_goal_ += took <= kGoalUs;
    max_us_ = std::max(max_us_, took);
    ++buckets_[static_cast<std::size_t>(std::min<std::int64_t>(took / 1'000'000, kBuckets - 1))];
  }
  bool waiting(const void* node) const { return since_.contains(node); }

  View view(std::int64_t now_us) const {
    View v;
    v.synced = synced_;
    v.within_goal = within_goal_;
    v.max_s = static_cast<double>(max_us_) / 1e6;
    v.p50_s = std::min(quantile_s(0.50), v.max_s);  // no wait was longer than the longest
    v.p95_s = std::min(quantile_s(0.95), v.max_s);
    v.waiting = since_.size();
    if (!order_.empty()) v.longest_waiting_s = static_cast<double>(now_us - order_.begin()->first) / 1e6;
    return v;
  }

 private:
  static constexpr std::int64_t kBuckets = 601;  // [k, k+1) s; the last: 600 s and longer
  double quantile_s(double q) const {
    if (synced_ == 0) return 0;
    // The nearest rank: the smallest wait with at least q of them at or below it.
    const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(synced_))));
    std::uint64_t seen = 0;
    for (std::size_t k = 0; k < buckets_.size(); ++k)
      if ((seen += buckets_[k]) >= rank) return static_cast<double>(std::min<std::size_t>(k + 1, kBuckets - 1));
    return static_cast<double>(kBuckets - 1);
  }
  std::unordered_map<const void*, std::int64_t> since_;
  std::set<std::pair<std::int64_t, const void*>> order_;
  std::array<std::uint64_t, kBuckets> buckets_{};
  std::uint64_t synced_ = 0, within_goal_ = 0;
  std::int64_t max_us_ = 0;
};

}  // namespace kairos::gw

#include "gateway/registry/clock_sync.h"

#include <algorithm>

namespace kairos::gw {

void ClockSync::budget(std::int64_t now_us, std::uint64_t accepted) {
  if (window_us_ == 0) {
    window_us_ = last_us_ = now_us;
    window_frames_ = accepted;
    rate_ = settings_.min_rate;
    credit_ = std::max(1.0, rate_ / 5);  // the first turn need not wait for credit
  }
  // The ingest rate over windows of a second or more.
  if (const std::int64_t span = now_us - window_us_; span >= 1'000'000) {
    const double ingest = static_cast<double>(accepted - window_frames_) * 1e6 / static_cast<double>(span);
    rate_ = std::max(settings_.min_rate, settings_.share * ingest);
    window_us_ = now_us;
    window_frames_ = accepted;
  }
  const double dt = static_cast<double>(std::max<std::int64_t>(0, now_us - last_us_)) / 1e6;
  last_us_ = now_us;
  // At most a fifth of a second's worth at once: a burst would queue.
  credit_ = std::min(credit_ + rate_ * dt, std::max(1.0, rate_ / 5));
}

void ClockSync::service(std::int64_t now_us, bool connected, std::uint64_t accepted) {
  // Missed acks count against reliability (looked for at most ten times a second).
  if (now_us - oldest_check_us_ >= 100'000) {
    oldest_check_us_ = now_us;
    std::erase_if(pending_, [&](const auto& kv) {
      if (now_us - kv.second.sent_mono_us < settings_.timeout_us) return false;
      if (auto* n = registry_.find(kv.second.node)) n->reliability.add(false);
      ++missed_;
      return true;
    });
  }
  budget(now_us, accepted);
  if (!connected) return;
  while (pending_.size() < settings_.max_in_flight && credit_ >= 1) {
    NodeEntry* n = registry_.ping_due(now_us);
    if (!n) break;
    std::int64_t t1 = 0;
    if (auto id = send_(*n, t1)) {
      pending_[id] = {n->id, t1, now_us};
      ++sent_;
    }
    credit_ -= 1;
    // Faster while the filter is young (as after a latency level shift) or
    // the node is unstable.
    const bool fast = n->clock.count() < ClockFilter::kSyncedSamples || n->impedance(now_us).unstable;
    registry_.ping_at(*n, now_us + (fast ? settings_.fast_period_us : settings_.period_us));
  }
}

bool ClockSync::on_ack(const std::string& id, const kairos_v1_Ack& ack, std::int64_t t4_wall_us, std::int64_t now_us) {
  auto it = pending_.find(ack.command_id);
  if (it == pending_.end() || it->second.node != id) return false;
  if (auto* n = registry_.find(id)) {
    if (ack.state == 1 && ack.received_at_us != 0) {
      const auto steps = n->clock.steps();
      const auto count = n->clock.count();
      const std::int64_t t1 = it->second.t1_wall_us;
      if (n->clock.add({t1, ack.received_at_us, ack.executed_at_us, t4_wall_us})) {
        if (n->clock.steps() != steps) n->floors.clear();  // the node's clock stepped: its old frames mislead
        // The window restarted (a level shift, a step): filled again fast and first.
        if (n->clock.count() < ClockFilter::kSyncedSamples && count >= ClockFilter::kSyncedSamples)
          registry_.ping_at(*n, now_us + settings_.fast_period_us);
        n->floors.outbound(t4_wall_us, static_cast<double>(t4_wall_us - ack.executed_at_us));
        n->command_arrived(t1, ack.received_at_us);
      }
      n->reliability.add(true);
      registry_.clock_sampled(*n, now_us);
      auto imp = n->impedance(now_us);
      n->baseline_score = n->baseline_score <= 0 ? imp.score : n->baseline_score + 0.05 * (imp.score - n->baseline_score);
    } else {
      n->reliability.add(false);
    }
  }
  pending_.erase(it);
  return true;
}

}  // namespace kairos::gw

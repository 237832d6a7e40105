#include "gateway/escalation/breakers.h"

#include <algorithm>

namespace kairos::gw {

const char* to_string(BreakerState s) {
  switch (s) {
    case BreakerState::closed: return "CLOSED";
    case BreakerState::open: return "OPEN";
    case BreakerState::half_open: return "HALF_OPEN";
  }
  return "?";
}

void Breaker::prune(std::int64_t now_us, const BreakerSettings& s) {
  while (!failures_.empty() && now_us - failures_.front() > s.window_us) failures_.pop_front();
}

int Breaker::failures(std::int64_t now_us, const BreakerSettings& s) const {
  return static_cast<int>(std::count_if(failures_.begin(), failures_.end(),
                                        [&](std::int64_t t) { return now_us - t <= s.window_us; }));
}

void Breaker::open(std::int64_t now_us, std::int64_t wait_us) {
  state_ = BreakerState::open;
  wait_us_ = wait_us;
  probe_at_us_ = now_us + wait_us;
  probe_out_ = false;
  ++opened_;
}

void Breaker::failure(std::int64_t now_us, int threshold, const BreakerSettings& s) {
  last_failure_us_ = now_us;
  failures_.push_back(now_us);
  prune(now_us, s);
  if (failures_.size() > 100'000) failures_.pop_front();
  switch (state_) {
    case BreakerState::closed:
      if (static_cast<int>(failures_.size()) > threshold) open(now_us, s.open_us);
      break;
    case BreakerState::open:
      // The probe failed (or something it let through did): wait twice as long.
      if (probe_out_) open(now_us, std::min<std::int64_t>(wait_us_ * 2, 24LL * 3600 * 1'000'000));
      break;
    case BreakerState::half_open:
      open(now_us, std::min<std::int64_t>(wait_us_ * 2, 24LL * 3600 * 1'000'000));
      break;
  }
}

void Breaker::success(std::int64_t now_us) {
  if (state_ == BreakerState::open && probe_out_) {
    state_ = BreakerState::half_open;
    half_open_since_us_ = now_us;
    probe_out_ = false;
  }
}

void Breaker::hold(bool held) {
  held_ = held;
  probe_out_ = false;
  failures_.clear();
  wait_us_ = 0;
  if (held) {
    if (state_ != BreakerState::open) ++opened_;
    state_ = BreakerState::open;
  } else {
    state_ = BreakerState::closed;
  }
}

bool Breaker::would_admit(std::int64_t now_us, const BreakerSettings&) const {
  if (held_) return false;
  switch (state_) {
    case BreakerState::closed: return true;
    case BreakerState::open: return !probe_out_ && now_us >= probe_at_us_;
    case BreakerState::half_open: return now_us >= next_slot_us_;
  }
  return false;
}

bool Breaker::admit(std::int64_t now_us, const BreakerSettings& s) {
  if (!would_admit(now_us, s)) return false;
  if (state_ == BreakerState::open) {
    probe_out_ = true;
    probe_sent_us_ = now_us;
  } else if (state_ == BreakerState::half_open) {
    next_slot_us_ = now_us + s.half_open_spacing_us;
  }
  return true;
}

void Breaker::service(std::int64_t now_us, const BreakerSettings& s) {
  prune(now_us, s);
  if (held_) return;
  if (state_ == BreakerState::half_open && now_us - std::max(half_open_since_us_, last_failure_us_) >= s.healthy_us) {
    state_ = BreakerState::closed;
    wait_us_ = 0;
    failures_.clear();
  }
  // A probe that never reports back (its work ended another way) has failed.
  if (state_ == BreakerState::open && probe_out_ && now_us - probe_sent_us_ > std::max(wait_us_, s.open_us))
    open(now_us, std::min<std::int64_t>(wait_us_ * 2, 24LL * 3600 * 1'000'000));
}

Breakers::Breakers(BreakerSettings settings, std::map<std::string, std::vector<std::string>> sectors)
    : s_(settings), sector_clusters_(std::move(sectors)) {
  for (const auto& [sector, clusters] : sector_clusters_) {
    sectors_[sector];
    for (const auto& c : clusters) sector_of_[c] = sector;
  }
}

const std::string* Breakers::sector_of(const std::string& cluster) const {
  auto it = sector_of_.find(cluster);
  return it == sector_of_.end() ? nullptr : &it->second;
}

const std::vector<std::string>& Breakers::clusters_of(const std::string& sector) const {
  static const std::vector<std::string> none;
  auto it = sector_clusters_.find(sector);
  return it == sector_clusters_.end() ? none : it->second;
}

void Breakers::note(const std::string& scope, const std::string& name, BreakerState before, BreakerState after) {
  if (before != after && changed_) changed_(scope, name, before, after);
}

void Breakers::failure(const std::string& cluster, std::int64_t now_us) {
  auto& b = clusters_[cluster];
  auto before = b.state();
  b.failure(now_us, s_.cluster_failures, s_);
  note("cluster", cluster, before, b.state());
  if (const auto* sector = sector_of(cluster)) {
    auto& sb = sectors_[*sector];
    auto sbefore = sb.state();
    sb.failure(now_us, s_.sector_failures, s_);
    note("sector", *sector, sbefore, sb.state());
  }
  service(now_us);
}

void Breakers::success(const std::string& cluster, std::int64_t now_us) {
  auto it = clusters_.find(cluster);
  if (it != clusters_.end()) {
    auto before = it->second.state();
    it->second.success(now_us);
    note("cluster", cluster, before, it->second.state());
  }
  if (const auto* sector = sector_of(cluster)) {
    auto& sb = sectors_[*sector];
    auto before = sb.state();
    sb.success(now_us);
    note("sector", *sector, before, sb.state());
  }
}

bool Breakers::would_admit(const std::string& cluster, std::int64_t now_us) const {
  const Breaker* sb = nullptr;
  if (const auto* sector = sector_of(cluster)) {
    auto it = sectors_.find(*sector);
    if (it != sectors_.end()) sb = &it->second;
  }
  // The mesh breaker follows the sectors, so while it is open an open
  // sector's probe still passes: without it none could recover, nor the mesh.
  if (global_open_ && !(sb && sb->state() == BreakerState::open)) return false;
  if (sb && !sb->would_admit(now_us, s_)) return false;
  auto it = clusters_.find(cluster);
  return it == clusters_.end() || it->second.would_admit(now_us, s_);
}

bool Breakers::admit(const std::string& cluster, std::int64_t now_us) {
  if (!would_admit(cluster, now_us)) return false;
  if (const auto* sector = sector_of(cluster)) sectors_[*sector].admit(now_us, s_);
  auto it = clusters_.find(cluster);
  if (it != clusters_.end()) it->second.admit(now_us, s_);
  return true;
}

bool Breakers::closed(const std::string& cluster) const {
  if (global_open_) return false;
  if (const auto* sector = sector_of(cluster)) {
    auto it = sectors_.find(*sector);
    if (it != sectors_.end() && it->second.state() != BreakerState::closed) return false;
  }
  auto it = clusters_.find(cluster);
  return it == clusters_.end() || it->second.state() == BreakerState::closed;
}

std::size_t Breakers::sectors_open() const {
  return static_cast<std::size_t>(std::count_if(sectors_.begin(), sectors_.end(), [](const auto& kv) {
    return kv.second.state() != BreakerState::closed;
  }));
}

void Breakers::service(std::int64_t now_us) {
  for (auto& [name, b] : clusters_) {
    auto before = b.state();
    b.service(now_us, s_);
    note("cluster", name, before, b.state());
  }
  for (auto& [name, b] : sectors_) {
    auto before = b.state();
    b.service(now_us, s_);
    note("sector", name, before, b.state());
  }
  // The mesh breaker follows the sectors: open while more than the limit are.
  bool open = !sectors_.empty() && static_cast<int>(sectors_open()) > s_.global_sectors;
  if (open != global_open_) {
    if (open) ++global_opened_;
    note("global", "mesh", global_open_ ? BreakerState::open : BreakerState::closed,
         open ? BreakerState::open : BreakerState::closed);
    global_open_ = open;
  }
}

void Breakers::hold(const std::string& cluster, bool held) {
  auto& b = clusters_[cluster];
  const auto before = b.state();
  b.hold(held);
  note("cluster", cluster, before, b.state());
}

std::vector<BreakerView> Breakers::view(std::int64_t now_us) const {
  std::vector<BreakerView> out;
  out.push_back({"global", "mesh", global_open_ ? BreakerState::open : BreakerState::closed,
                 static_cast<int>(sectors_open()), 0, 0, global_opened_});
  for (const auto& [name, b] : sectors_)
    out.push_back({"sector", name, b.state(), b.failures(now_us, s_), b.wait_us(), b.probe_at_us(), b.opened()});
  for (const auto& [name, b] : clusters_)
    out.push_back({"cluster", name, b.state(), b.failures(now_us, s_), b.wait_us(), b.probe_at_us(), b.opened(),
                   b.held()});
  std::stable_sort(out.begin(), out.end(), [](const BreakerView& a, const BreakerView& b) {
    return (a.state != BreakerState::closed) > (b.state != BreakerState::closed);
  });
  return out;
}

}  // namespace kairos::gw

#pragma once
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace kairos::gw {

// Circuit breakers (docs/DESIGN.md 5.6) per cluster, per sector and for the whole
// mesh. Pure logic: time comes in as monotonic microseconds.
enum class BreakerState { closed, open, half_open };
const char* to_string(BreakerState s);

struct BreakerSettings {
  std::int64_t window_us = 60'000'000;
  int cluster_failures = 5;   // more than this within the window opens a cluster
  int sector_failures = 50;   // ... a sector
  int global_sectors = 10;    // more sectors open than this opens the mesh
  std::int64_t open_us = 30'000'000;     // wait before the first probe, doubled after a failed one
  std::int64_t healthy_us = 60'000'000;  // HALF_OPEN this long without a failure: CLOSED
  std::int64_t half_open_spacing_us = 1'000'000;  // HALF_OPEN: one new unit of work per this
};

// One breaker. OPEN lets nothing through until probe_at, then exactly one
// probe; the probe's success half-opens it, its failure opens it again with
// the wait doubled. HALF_OPEN lets limited traffic through and closes after
// healthy_us without a failure; a failure in HALF_OPEN opens it again.
class Breaker {
 public:
  void failure(std::int64_t now_us, int threshold, const BreakerSettings& s);
  void success(std::int64_t now_us);
  // May one unit of work pass now? Counts it (a probe, a HALF_OPEN slot).
  bool admit(std::int64_t now_us, const BreakerSettings& s);
  // Would admit() say yes (without counting)?
  bool would_admit(std::int64_t now_us, const BreakerSettings& s) const;
  void service(std::int64_t now_us, const BreakerSettings& s);

  // Held OPEN by an operator: nothing passes, no probe, until released (then CLOSED, its failures forgotten).
  void hold(bool held);
  bool held() const { return held_; }
  BreakerState state() const { return state_; }
  int failures(std::int64_t now_us, const BreakerSettings& s) const;
  std::int64_t wait_us() const { return wait_us_; }
  std::int64_t probe_at_us() const { return probe_at_us_; }
  int opened() const { return opened_; }
  bool probing() const { return probe_out_; }

 private:
  void open(std::int64_t now_us, std::int64_t wait_us);
  void prune(std::int64_t now_us, const BreakerSettings& s);
  BreakerState state_ = BreakerState::closed;
  std::deque<std::int64_t> failures_;
  std::int64_t wait_us_ = 0;
  std::int64_t probe_at_us_ = 0;
  bool probe_out_ = false;
  std::int64_t probe_sent_us_ = 0;
  std::int64_t half_open_since_us_ = 0;
  std::int64_t last_failure_us_ = 0;
  std::int64_t next_slot_us_ = 0;
  int opened_ = 0;
  bool held_ = false;
};

struct BreakerView {
  std::string scope;  // cluster, sector, global
  std::string name;
  BreakerState state;
  int failures;
  std::int64_t wait_us;
  std::int64_t probe_at_us;  // monotonic
  int opened;
  bool held = false;  // held OPEN by an operator
};

class Breakers {
 public:
  Breakers(BreakerSettings settings, std::map<std::string, std::vector<std::string>> sectors);

  void failure(const std::string& cluster, std::int64_t now_us);
  void success(const std::string& cluster, std::int64_t now_us);
  // May work go to this cluster now (global, sector and cluster breakers)?
  // A yes is counted as the probe or HALF_OPEN slot it uses.
  bool admit(const std::string& cluster, std::int64_t now_us);
  bool would_admit(const std::string& cluster, std::int64_t now_us) const;
  // Closed: no breaker on the way stops traffic (for scheduling and the status box).
  bool closed(const std::string& cluster) const;
  void service(std::int64_t now_us);
  bool global_open() const { return global_open_; }
  std::size_t sectors_total() const { return sector_of_.empty() ? 0 : sectors_.size(); }
  std::size_t sectors_open() const;
  const std::string* sector_of(const std::string& cluster) const;
  const std::vector<std::string>& clusters_of(const std::string& sector) const;
  std::vector<BreakerView> view(std::int64_t now_us) const;
  // An operator holds a cluster's breaker OPEN (true) or releases it (false).
  void hold(const std::string& cluster, bool held);
  bool held(const std::string& cluster) const {
    auto it = clusters_.find(cluster);
    return it != clusters_.end() && it->second.held();
  }
  // Called when a breaker changes state: scope, name, old, new.
  void on_change(std::function<void(const std::string&, const std::string&, BreakerState, BreakerState)> f) {
    changed_ = std::move(f);
  }

 private:
  void note(const std::string& scope, const std::string& name, BreakerState before, BreakerState after);
  BreakerSettings s_;
  std::map<std::string, std::vector<std::string>> sector_clusters_;
  std::map<std::string, std::string> sector_of_;  // cluster -> sector
  std::map<std::string, Breaker> clusters_;
  std::map<std::string, Breaker> sectors_;
  bool global_open_ = false;
  int global_opened_ = 0;
  std::function<void(const std::string&, const std::string&, BreakerState, BreakerState)> changed_;
};

}  // namespace kairos::gw

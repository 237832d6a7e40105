#include "gateway/metrics/kpi.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace kairos::gw {

namespace {

constexpr std::size_t kCascadesKept = 100;

double ratio(std::uint64_t part, std::uint64_t whole, double none) {
  return whole ? static_cast<double>(part) / static_cast<double>(whole) : none;
}

}  // namespace

void KpiBook::operation(bool ok) {
  ++figures_.operations;
  if (ok) ++figures_.operations_ok;
}

void KpiBook::schedule(const Schedule& s) {
  figures_.scheduled_targets += s.targets;
  figures_.scheduled_hits += s.hits;
  figures_.scheduled_executed += s.executed;
  figures_.predicted_within_50ms += s.within_50ms;
  ++figures_.cascades;
  figures_.last_hit_rate = ratio(s.hits, s.targets, 0);
  figures_.last_spread_p50_s = s.spread_p50_ms / 1000.0;
  figures_.last_spread_p95_s = s.spread_p95_ms / 1000.0;
  figures_.last_spread_max_s = s.spread_max_ms / 1000.0;
  durations_us_.push_back(std::max<std::int64_t>(0, s.duration_us));
  if (durations_us_.size() > kCascadesKept) durations_us_.pop_front();
}

void KpiBook::ended(bool is_schedule, const ScheduleResult& r) {
  if (!is_schedule) return operation(!r.targets.empty() && r.ready == r.targets.size());
  operation(r.verdict == Verdict::proceed);
  std::uint64_t executed = 0, within = 0;
  for (const auto& t : r.targets)
    if (t.executed) {
      ++executed;
      within += std::abs(t.error_us) <= 50'000;
    }
  schedule({r.targets.size(), r.hits, executed, within, r.last_ack_us ? r.last_ack_us - r.started_us : 0, r.p50_ms,
            r.p95_ms, r.max_ms});
}

void KpiBook::sample(std::int64_t now_us, std::uint64_t known, std::uint64_t online) {
  if (sampled_ && now_us > last_sample_us_) {
    const double dt = static_cast<double>(now_us - last_sample_us_) / 1e6;
    // The counts held since the last sample.
    figures_.node_seconds_known += dt * static_cast<double>(known_);
    figures_.node_seconds_online += dt * static_cast<double>(std::min(online_, known_));
  }
  sampled_ = true;
  last_sample_us_ = now_us;
  known_ = known;
  online_ = online;
}

void KpiBook::recoveries(std::uint64_t n, std::int64_t total_down_us) {
  figures_.recoveries = n;
  figures_.recovery_mean_s = n ? static_cast<double>(total_down_us) / 1e6 / static_cast<double>(n) : 0;
}

KpiFigures KpiBook::figures() const {
  KpiFigures f = figures_;
  f.coordination_success = ratio(f.operations_ok, f.operations, 0);
  f.hit_rate = ratio(f.scheduled_hits, f.scheduled_targets, 0);
  f.prediction_accuracy = ratio(f.predicted_within_50ms, f.scheduled_executed, 0);
  f.conflicts_per_1000 = f.operations ? 1000.0 * static_cast<double>(f.conflicts) / static_cast<double>(f.operations) : 0;
  f.availability = f.node_seconds_known > 0 ? f.node_seconds_online / f.node_seconds_known : 1;
  if (!durations_us_.empty()) {
    std::vector<std::int64_t> d(durations_us_.begin(), durations_us_.end());
    std::sort(d.begin(), d.end());
    // Nearest rank: the smallest duration at or above 95 % of them.
    const auto rank = static_cast<std::size_t>(std::ceil(0.95 * static_cast<double>(d.size())));
    f.cascade_p95_s = static_cast<double>(d[std::max<std::size_t>(rank, 1) - 1]) / 1e6;
  }
  return f;
}

void fill_kpis(const KpiFigures& f, kairos_v1_Kpis& o) {
  o.coordination_success = f.coordination_success;
  o.operations = f.operations;
  o.operations_quorum = f.operations_ok;
  o.arrival_hit_rate = f.hit_rate;
  o.scheduled_targets = f.scheduled_targets;
  o.prediction_accuracy = f.prediction_accuracy;
  o.scheduled_executed = f.scheduled_executed;
  o.conflicts_per_1000 = f.conflicts_per_1000;
  o.conflicts = f.conflicts;
  o.availability = f.availability;
  o.cascade_p95_s = f.cascade_p95_s;
  o.cascades = f.cascades;
  o.recovery_mean_s = f.recovery_mean_s;
  o.recoveries = f.recoveries;
}

}  // namespace kairos::gw

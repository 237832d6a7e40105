#pragma once
// The seven KPIs of the mesh (docs/METRICS.md), kept live from what the
// gateway's modules report as it happens. Pure logic: time comes in as
// monotonic microseconds; nothing here walks the nodes.
#include <cstdint>
#include <deque>

#include "gateway/schedule/scheduler.h"
#include "kairos.pb.h"

namespace kairos::gw {

struct KpiFigures {
  // Coordination success: operations (schedules, broadcasts, freezes,
  // thaws, jobs) that reached their quorum, over those that ended.
  std::uint64_t operations = 0, operations_ok = 0;
  double coordination_success = 0;  // 0..1; 0 with no operation yet
  // Arrival-time hit rate: scheduled targets that executed within ±hit_ms of T.
  std::uint64_t scheduled_targets = 0, scheduled_hits = 0;
  double hit_rate = 0;
  // Prediction accuracy: scheduled executions within 50 ms of T (the
  // instant predicted for them), over the executions.
  std::uint64_t scheduled_executed = 0, predicted_within_50ms = 0;
  double prediction_accuracy = 0;
  // Conflicts (entries of the conflict log) per 1,000 operations.
  std::uint64_t conflicts = 0;
  double conflicts_per_1000 = 0;
  // Mesh availability: node-seconds online over node-seconds known.
  double node_seconds_known = 0, node_seconds_online = 0;
  double availability = 1;
  // p95 of the last 100 schedules' durations, from the call to the last ack, seconds.
  double cascade_p95_s = 0;
  std::uint64_t cascades = 0;
  // The last schedule: hits over targets, and its spread around T (seconds).
  double last_hit_rate = 0, last_spread_p50_s = 0, last_spread_p95_s = 0, last_spread_max_s = 0;
  // Mean time from a node (or, at a root, a sector) going down to its being back, seconds.
  std::uint64_t recoveries = 0;
  double recovery_mean_s = 0;
};

class KpiBook {
 public:
  // An operation ended; ok when it reached its quorum (a schedule PROCEED,
  // acks from every target, a job DONE).
  void operation(bool ok);
  // A schedule ended: its targets, how many hit ±hit_ms, how many executed
  // and of those how many within 50 ms of T, and its call → last ack, us.
  struct Schedule {
    std::uint64_t targets = 0, hits = 0, executed = 0, within_50ms = 0;
    std::int64_t duration_us = 0;
    double spread_p50_ms = 0, spread_p95_ms = 0, spread_max_ms = 0;
  };
  void schedule(const Schedule& s);
  // A gathered operation ended: a schedule (is_schedule), or a broadcast,
  // freeze or thaw, which reaches its quorum when every target acknowledged READY.
  void ended(bool is_schedule, const ScheduleResult& r);
  // Conflicts logged since the gateway started (the conflict log counts them).
  void conflicts(std::uint64_t n) { figures_.conflicts = n; }
  // The node counts now; integrated over the time since the last call.
  void sample(std::int64_t now_us, std::uint64_t known, std::uint64_t online);
  // Failures recovered from (nodes back online, a root's sectors live again) and their time down in all (us).
  void recoveries(std::uint64_t n, std::int64_t total_down_us);
  KpiFigures figures() const;

 private:
  KpiFigures figures_;
  std::deque<std::int64_t> durations_us_;  // the last 100 schedules
  bool sampled_ = false;
  std::int64_t last_sample_us_ = 0;
  std::uint64_t known_ = 0, online_ = 0;
};

// The figures as the control RPC carries them (status, kpi).
void fill_kpis(const KpiFigures& f, kairos_v1_Kpis& o);

}  // namespace kairos::gw

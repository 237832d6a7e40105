#pragma once
// Impedance-matched scheduling, docs/DESIGN.md 5.4 (the quarterback throw): a command
// reaches every target and takes effect at the same instant T. Pure logic:
// time is the gateway's wall clock in microseconds, passed in; the gateway
// supplies each node's current lead and offset and sends the commands.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/core/frame.h"
#include "gateway/schedule/timer_wheel.h"

namespace kairos::gw {

using kairos::to_string;  // the wire enums' names stay visible beside these

enum class Strategy { parallel, wave, priority_first, naive };
std::optional<Strategy> parse_strategy(std::string_view s);
const char* to_string(Strategy s);

enum class Verdict { pending, proceed, wait, resolve_conflicts, retry };
const char* to_string(Verdict v);

struct Quorum {
  double ready = 0.95;     // PROCEED: ready >= this ...
  double conflict = 0.05;  // ... and conflict <= this
  double transit = 0.10;   // WAIT: transit above this
};
// The quorum rule of docs/DESIGN.md 5.4 over counts out of `targets`.
Verdict quorum(std::size_t targets, std::size_t ready, std::size_t transit, std::size_t conflict, const Quorum& q);

struct ScheduleSpec {
  std::int64_t at_us = 0;  // T on the gateway's wall clock (naive: ignored, sent at once)
  Strategy strategy = Strategy::parallel;
  std::int64_t window_us = 1'000'000;  // acks gathered until T + window
  std::uint32_t late_tolerance_ms = 20;
  std::int64_t hit_us = 10'000;  // an execution within ±hit of T is a hit
  Quorum quorum;
  int max_extensions = 1;  // WAIT extends the window this many times at most
  bool respect_breakers = true;  // targets behind a breaker that is not closed are skipped
  bool lead_from_tail = true;    // false: the model before the tails: a lead of rtt/2 + 3 sd, the quickest round trip's offset, no drift
};

// A node as the scheduler needs it, looked up when its wave is planned and
// when its acks arrive.
struct TargetView {
  std::string cluster;
  int device_class = 5;  // 1..6 = A..F
  bool online = false;
  bool quarantined = false;
  bool synced = false;     // has clock samples
  double lead_us = 0;      // docs/DESIGN.md 5.2 lead (with calibration)
  double offset_us = 0;    // node clock - gateway clock, now
  double drift_ppm = 0;    // how fast the node's clock runs against the gateway's: the offset at T follows it
  bool breaker_open = false;  // a circuit breaker on its way (cluster, sector, mesh) is not closed
  double jitter_lead_us = 0;  // the lead without the measured tail: rtt/2 + 3 sd + calibration
  double filter_offset_us = 0;  // the offset of the quickest round trip alone (the model before the one-way floors)
};

enum class TargetState { waiting, skipped, queued, sent, transit, ready, conflict, not_sent };
const char* to_string(TargetState s);

struct TargetResult {
  std::string id;
  int wave = 0;
  TargetState state = TargetState::waiting;
  std::uint64_t command_id = 0;
  std::int64_t send_at_us = 0;       // gateway clock
  std::int64_t execute_at_us = 0;    // node clock
  double would_need_ms = 0, available_ms = 0;  // skipped
  int device_class = 0;
  double lead_us = 0;                // the lead it was sent with
  double delay_us = -1;              // the command's one-way delay to it, observed (-1: no ack said)
  bool arrived_late = false;         // received after its execute_at
  bool executed = false;
  std::int64_t executed_gw_us = 0;   // the node's execution time mapped to the gateway clock
  std::int64_t final_ack_us = 0;     // gateway clock: when its final ack (READY, CONFLICT) came
  double error_us = 0;               // executed, mapped to gateway time, minus T (naive: minus the median)
  std::string detail;
};

struct WaveResult {
  std::string name;
  double threshold = 0.95;
  std::int64_t at_us = 0;            // this wave's T
  std::int64_t gather_until_us = 0;
  int extensions = 0;
  Verdict verdict = Verdict::pending;
  std::vector<std::size_t> members;  // indices into targets
  bool planned = false;
};

// Per device class: the lead the commands were sent with against the
// delay they met (docs/DESIGN.md 5.4), so an operator sees whether the
// leads cover the network.
struct ClassLead {
  int device_class = 0;
  std::size_t sent = 0, observed = 0;
  std::size_t late = 0;  // arrived after their execute_at
  double lead_p50_ms = 0, lead_max_ms = 0;
  double delay_p50_ms = 0, delay_p99_ms = 0, delay_max_ms = 0;
};

struct ScheduleResult {
  std::uint64_t id = 0;
  ScheduleSpec spec;
  std::int64_t started_us = 0;
  std::int64_t last_ack_us = 0;
  double acks_p95_after_t_ms = 0;  // the final acks' arrival after their wave's T, 95th percentile
  std::int64_t finished_us = 0;
  Verdict verdict = Verdict::pending;
  std::vector<TargetResult> targets;
  std::vector<WaveResult> waves;
  // Figures over all targets (filled when finished).
  std::size_t sent = 0, skipped = 0, ready = 0, transit = 0, conflicts = 0, stragglers = 0, hits = 0, not_sent = 0;
  double p50_ms = 0, p95_ms = 0, max_ms = 0, mean_error_ms = 0;
  std::vector<ClassLead> classes;  // A..F as present among the sent
  double hit_rate() const { return targets.empty() ? 0 : static_cast<double>(hits) / static_cast<double>(targets.size()); }
};

class Scheduler {
 public:
  struct Hooks {
    // The node's current view; nullopt for an unknown node.
    std::function<std::optional<TargetView>(const std::string& id)> lookup;
    // Sends the command to the node with this execute_at (node clock, 0 =
    // at once) and TTL; returns its command id, 0 if it could not be sent.
    std::function<std::uint64_t(const std::string& id, std::int64_t execute_at_us, std::uint32_t ttl_ms,
                                std::uint64_t schedule)>
        send;
    // A target's outcome that calibrates its impedance: the execution error
    // (us, + = late), or how late a refused command arrived.
    std::function<void(const std::string& id, const TargetResult& t, double late_us)> calibrate;
    // The schedule is over; its result.
    std::function<void(const ScheduleResult& r)> finished;
    // A command's way to the node, seen from its ack: when it left (gateway
    // clock) and when it arrived (node clock); may be empty.
    std::function<void(const std::string& id, std::int64_t sent_us, std::int64_t received_node_us)> observed;
  };

  explicit Scheduler(Hooks hooks) : hooks_(std::move(hooks)) {}

  // Starts a schedule; returns its id. Targets are node ids (duplicates are
  // ignored). The first wave is planned at once.
  std::uint64_t start(ScheduleSpec spec, const std::vector<std::string>& targets, std::int64_t now_us);
  // An ack from node `id`. False when it belongs to no running schedule.
  bool on_ack(const std::string& id, std::uint64_t command_id, int state, std::int64_t received_node_us,
              std::int64_t executed_node_us, const std::string& detail, std::int64_t now_us);
  // Releases the sends that are due, ends gathers, plans the next waves.
  void service(std::int64_t now_us);
  // When service() next has something to do (gateway clock); INT64_MAX if never.
  std::int64_t next_deadline_us() const;
  std::size_t running() const { return schedules_.size(); }
  // What one send costs the gateway (us, measured): bursts are spread back
  // from their send_at by this, or by the configured spacing if larger (the
  // broker and the links take their time too).
  void note_send_cost(double us) { send_cost_us_ += 0.05 * (us - send_cost_us_); }
  void set_min_send_spacing(double us) { min_spacing_us_ = us; }
  double send_cost_us() const { return std::max(send_cost_us_, min_spacing_us_); }
  // The id the next start() returns.
  std::uint64_t next_id() const { return next_id_; }

 private:
  struct Running {
    ScheduleResult r;
    std::size_t wave = 0;  // the wave being gathered
  };
  struct Send {
    std::uint64_t schedule;
    std::size_t target;
  };
  void plan_wave(Running& s, std::int64_t now_us);
  void end_gather(Running& s, std::int64_t now_us);
  bool wave_settled(const Running& s) const;
  void finish(Running& s, std::int64_t now_us);
  void release(const Send& send, std::int64_t now_us);

  Hooks hooks_;
  std::map<std::uint64_t, Running> schedules_;
  std::map<std::uint64_t, Send> by_command_;  // command id -> target
  TimerWheel<Send> wheel_;
  std::uint64_t next_id_ = 1;
  double send_cost_us_ = 20;
  double min_spacing_us_ = 0;
};

// Waves of a strategy over targets (ids with their views): names, members, thresholds.
std::vector<WaveResult> make_waves(Strategy s, const std::vector<std::pair<std::string, TargetView>>& targets,
                                   const Quorum& q);

}  // namespace kairos::gw

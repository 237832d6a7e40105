#pragma once
// The network and clock model of kairos-sim (docs/SIM.md): pure code, no
// clock reads, no I/O, deterministic for a seed, so that it is unit-tested
// exactly.
#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace kairos::sim {

// splitmix64: 8 bytes of state per stream (30,000 nodes hold two each) and
// statistics far better than a network model needs.
class Rng {
 public:
  explicit Rng(std::uint64_t seed = 0) : state_(seed) {}
  std::uint64_t next();
  double uniform();                      // [0, 1)
  double uniform(double lo, double hi);  // [lo, hi)
  double exponential(double mean);       // >= 0, mean `mean`
  double normal();                       // standard normal (Box-Muller)

 private:
  std::uint64_t state_;
};

// The seed of stream `stream` of a run: the same (seed, stream) always gives
// the same draws, whatever else the run does (node i keeps its profile when
// the node count changes).
std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream);

// Device classes A..F as indices 0..5.
inline constexpr std::size_t kClasses = 6;
// Base one-way latency per class (ms): the defaults of --latency.
inline constexpr std::array<double, kClasses> kDefaultLatencyMs{5, 20, 50, 100, 200, 500};
// The queueing tail's mean never drops below this (ms), so a class with a
// 0 ms base or 0 jitter still sees some variation.
inline constexpr double kMinTailMs = 0.1;
// A `slow` node's base latency, as a multiple of its class's.
inline constexpr double kSlowFactor = 10.0;

// Mean of the exponential tail (ms) on a base of base_ms with relative jitter.
double tail_mean_ms(double base_ms, double jitter);

// One-way delay of one frame (us): base + Exp(mean = tail_mean_ms), the
// propagation floor plus an exponential queueing tail.
std::int64_t draw_delay_us(Rng& rng, double base_ms, double jitter);

// The delay profiles of docs/SIM.md: what a frame's one-way delay is drawn
// from, on top of its class's base (the propagation floor).
enum class Profile { exponential, lognormal, pareto, wifi };
std::optional<Profile> parse_profile(std::string_view s);
const char* to_string(Profile p);

struct DelayModel {
  Profile profile = Profile::exponential;
  double jitter = 0.05;  // the tail's scale as a share of the base: exponential and pareto mean, lognormal median
  double sigma = 1.0;    // lognormal: shape (the tail's weight)
  double alpha = 2.0;    // pareto (Lomax): shape, > 1 (smaller is heavier)
  // wifi: a floor, a lognormal jitter, and power-save stalls (figures in docs/SIM.md)
  double wifi_floor_ms = 3.0;
  double wifi_median_ms = 2.0;
  double wifi_sigma = 0.8;
  double stall_p = 0.0;  // share of frames held by a stall
  double stall_min_ms = 50.0, stall_max_ms = 300.0;
  // Any profile: a frame lost on the wire is sent again by TCP after its
  // retransmission timeout (doubled per loss); MQTT sees only the delay.
  double loss = 0.0;
  double rto_ms = 200.0;  // Linux's minimum RTO
};

// One frame's one-way delay (us) under the model, on a base of base_ms.
std::int64_t draw_delay_us(Rng& rng, double base_ms, const DelayModel& m);
// The p-quantile (ms) of the delay without stalls and losses: base plus the tail's quantile.
double delay_quantile_ms(const DelayModel& m, double base_ms, double p);
// The standard normal's p-quantile (Acklam's approximation, relative error < 1.2e-9).
double normal_quantile(double p);

// One direction of one node's path. Frames leave in the order they entered
// (a frame never overtakes the previous one), each after its own drawn delay.
class DelayLine {
 public:
  explicit DelayLine(std::uint64_t seed = 0) : rng_(seed) {}
  // When a frame entering at now_us leaves (us, on now_us's clock):
  // max(now_us + draw_delay_us, the previous frame's departure). With
  // grid_us > 0 the departure is moved up to the next multiple of grid_us
  // (frames sent in batches), still never before the previous frame's.
  std::int64_t pass(std::int64_t now_us, double base_ms, double jitter, std::int64_t grid_us = 0);
  std::int64_t pass(std::int64_t now_us, double base_ms, const DelayModel& m, std::int64_t grid_us = 0);

 private:
  Rng rng_;
  std::int64_t last_us_ = INT64_MIN;
};

// A node's wall clock: true time (the host's) plus an offset, running fast
// or slow by drift_ppm from start_us on.
struct NodeClock {
  std::int64_t offset_us = 0;
  double drift_ppm = 0.0;
  std::int64_t start_us = 0;  // true wall time (us) the drift counts from

  // What the node's clock reads at true time true_us.
  std::int64_t node_us(std::int64_t true_us) const;
  // The first true instant (us) at which the node's clock reads node_us or
  // later: when a command held until node_us is due.
  std::int64_t true_us(std::int64_t node_us) const;
};

// What the seed gives node `index` (0-based) of a run.
struct NodeDraw {
  std::int64_t offset_us = 0;   // uniform in +-offset_max_ms
  double drift_ppm = 0.0;       // uniform in +-drift_max_ppm
  double wave_period_s = 1.0;   // synthetic sine: uniform in 0.5..5 s
  double wave_phase_deg = 0.0;  // uniform in 0..360
  double hb_phase = 0.0;        // first heartbeat after this share of a period, 0..1
  double report_phase = 0.0;    // first phase report after this share of a period, 0..1
  std::uint64_t in_seed = 0;    // inbound DelayLine
  std::uint64_t out_seed = 0;   // outbound DelayLine
  std::uint64_t wave_seed = 0;
  std::uint64_t step_seed = 0;  // its clock's steps (--clock-step-ms)
};
NodeDraw draw_node(std::uint64_t seed, std::size_t index, double offset_max_ms, double drift_max_ppm);

// Exactly round(fraction * n) distinct nodes out of n, chosen by the seed
// (one stream per failure kind): a flag per node.
std::vector<bool> pick_nodes(std::uint64_t seed, std::uint64_t stream, std::size_t n, double fraction);

}  // namespace kairos::sim

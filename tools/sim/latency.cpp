#include "tools/sim/latency.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace kairos::sim {

std::uint64_t Rng::next() {
  std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

double Rng::uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

double Rng::uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

double Rng::exponential(double mean) {
  // Inverse CDF; 1 - u lies in (0, 1], so the log is finite.
  return -mean * std::log(1.0 - uniform());
}

std::uint64_t derive_seed(std::uint64_t seed, std::uint64_t stream) {
  Rng r(seed ^ (stream * 0xD1B54A32D192ED03ULL));
  r.next();
  return r.next();
}

double tail_mean_ms(double base_ms, double jitter) { return std::max(kMinTailMs, jitter * base_ms); }

std::int64_t draw_delay_us(Rng& rng, double base_ms, double jitter) {
  double ms = std::max(0.0, base_ms) + rng.exponential(tail_mean_ms(std::max(0.0, base_ms), jitter));
  return static_cast<std::int64_t>(std::llround(ms * 1000.0));
}

std::int64_t DelayLine::pass(std::int64_t now_us, double base_ms, double jitter, std::int64_t grid_us) {
  std::int64_t t = std::max(now_us + draw_delay_us(rng_, base_ms, jitter), last_us_);
  if (grid_us > 0) t = (t + grid_us - 1) / grid_us * grid_us;
  last_us_ = t;
  return t;
}

std::int64_t NodeClock::node_us(std::int64_t t) const {
  double drift = drift_ppm * 1e-6 * static_cast<double>(t - start_us);
  return t + offset_us + static_cast<std::int64_t>(std::llround(drift));
}

std::int64_t NodeClock::true_us(std::int64_t n) const {
  // Invert n = t + offset + d (t - start), then step to the first microsecond
  // that reads n or later (rounding makes the estimate off by one or two).
  double d = drift_ppm * 1e-6;
  auto t =
      static_cast<std::int64_t>(std::llround(static_cast<double>(n - offset_us - start_us) / (1.0 + d))) + start_us;
  while (node_us(t) < n) ++t;
  while (node_us(t - 1) >= n) --t;
  return t;
}

NodeDraw draw_node(std::uint64_t seed, std::size_t index, double offset_max_ms, double drift_max_ppm) {
  Rng r(derive_seed(seed, 1'000'000 + index));
  NodeDraw d;
  d.offset_us = static_cast<std::int64_t>(std::llround(r.uniform(-offset_max_ms, offset_max_ms) * 1000.0));
  d.drift_ppm = r.uniform(-drift_max_ppm, drift_max_ppm);
  d.wave_period_s = r.uniform(0.5, 5.0);
  d.wave_phase_deg = r.uniform(0.0, 360.0);
  d.hb_phase = r.uniform();
  d.report_phase = r.uniform();
  d.in_seed = r.next();
  d.out_seed = r.next();
  d.wave_seed = r.next();
  return d;
}

std::vector<bool> pick_nodes(std::uint64_t seed, std::uint64_t stream, std::size_t n, double fraction) {
  std::vector<bool> out(n, false);
  auto k = static_cast<std::size_t>(std::llround(std::clamp(fraction, 0.0, 1.0) * static_cast<double>(n)));
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), std::size_t{0});
  Rng r(derive_seed(seed, stream));
  // The first k of a partial Fisher-Yates shuffle.
  for (std::size_t i = 0; i < k; ++i) {
    std::size_t j = i + static_cast<std::size_t>(r.next() % (n - i));
    std::swap(order[i], order[j]);
    out[order[i]] = true;
  }
  return out;
}

}  // namespace kairos::sim

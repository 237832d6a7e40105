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

double Rng::normal() {
  // Box-Muller; 1 - u lies in (0, 1], so the log is finite.
  const double u = 1.0 - uniform(), v = uniform();
  return std::sqrt(-2.0 * std::log(u)) * std::cos(2.0 * 3.14159265358979323846 * v);
}

std::optional<Profile> parse_profile(std::string_view s) {
  if (s == "exponential" || s == "exp") return Profile::exponential;
  if (s == "lognormal") return Profile::lognormal;
  if (s == "pareto") return Profile::pareto;
  if (s == "wifi") return Profile::wifi;
  return std::nullopt;
}

const char* to_string(Profile p) {
  switch (p) {
    case Profile::exponential: return "exponential";
    case Profile::lognormal: return "lognormal";
    case Profile::pareto: return "pareto";
    case Profile::wifi: return "wifi";
  }
  return "?";
}

double normal_quantile(double p) {
  // Acklam's rational approximation of the inverse normal CDF.
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                                 1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                                 6.680131188771972e+01, -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                                 -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                                 3.754408661907416e+00};
  const double lo = 0.02425;
  if (p <= 0) return -INFINITY;
  if (p >= 1) return INFINITY;
  if (p < lo) {
    const double q = std::sqrt(-2 * std::log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
           ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - lo) return -normal_quantile(1 - p);
  const double q = p - 0.5, r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
         (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

namespace {

// The tail (ms) above the base, without stalls and losses.
double draw_tail_ms(Rng& rng, double base_ms, const DelayModel& m) {
  const double scale = tail_mean_ms(base_ms, m.jitter);
  switch (m.profile) {
    case Profile::exponential: return rng.exponential(scale);
    case Profile::lognormal: return scale * std::exp(m.sigma * rng.normal());
    case Profile::pareto:  // Lomax with mean `scale`: scale (alpha - 1) ((1 - u)^(-1/alpha) - 1)
      return scale * (m.alpha - 1) * (std::pow(1.0 - rng.uniform(), -1.0 / m.alpha) - 1);
    case Profile::wifi: return m.wifi_floor_ms + m.wifi_median_ms * std::exp(m.wifi_sigma * rng.normal());
  }
  return 0;
}

}  // namespace

std::int64_t draw_delay_us(Rng& rng, double base_ms, const DelayModel& m) {
  base_ms = std::max(0.0, base_ms);
  double ms = base_ms + draw_tail_ms(rng, base_ms, m);
  if (m.profile == Profile::wifi && m.stall_p > 0 && rng.uniform() < m.stall_p)
    ms += rng.uniform(m.stall_min_ms, m.stall_max_ms);
  for (double rto = m.rto_ms; m.loss > 0 && rng.uniform() < m.loss && rto < 60'000; rto *= 2) ms += rto;
  return static_cast<std::int64_t>(std::llround(ms * 1000.0));
}

double delay_quantile_ms(const DelayModel& m, double base_ms, double p) {
  base_ms = std::max(0.0, base_ms);
  const double scale = tail_mean_ms(base_ms, m.jitter);
  switch (m.profile) {
    case Profile::exponential: return base_ms - scale * std::log(1 - p);
    case Profile::lognormal: return base_ms + scale * std::exp(m.sigma * normal_quantile(p));
    case Profile::pareto: return base_ms + scale * (m.alpha - 1) * (std::pow(1 - p, -1.0 / m.alpha) - 1);
    case Profile::wifi: return base_ms + m.wifi_floor_ms + m.wifi_median_ms * std::exp(m.wifi_sigma * normal_quantile(p));
  }
  return base_ms;
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
  DelayModel m;
  m.jitter = jitter;
  return pass(now_us, base_ms, m, grid_us);
}

std::int64_t DelayLine::pass(std::int64_t now_us, double base_ms, const DelayModel& m, std::int64_t grid_us) {
  std::int64_t t = std::max(now_us + draw_delay_us(rng_, base_ms, m), last_us_);
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
  d.step_seed = r.next();
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

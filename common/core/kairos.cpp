#include "common/core/kairos.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace kairos {

void log_spaced_taus(double base_s, double max_s, std::size_t k, std::span<double> out) {
  if (k == 0 || k > kMaxScales || out.size() < k || base_s <= 0 || max_s < base_s)
    throw std::invalid_argument("log_spaced_taus: bad arguments");
  if (k == 1) {
    out[0] = base_s;
    return;
  }
  double ratio = std::log(max_s / base_s) / static_cast<double>(k - 1);
  for (std::size_t i = 0; i < k; ++i) out[i] = base_s * std::exp(ratio * static_cast<double>(i));
  out[k - 1] = max_s;  // exact end point, no rounding drift
}

void KairosScale::reset(Phase s) {
  z = s;
  var = 0.0;
  c = 1.0;
}

void KairosScale::update(Phase s, double dt_s) {
  double alpha = 1.0 - std::exp(-dt_s / tau_s);
  Phase d = s - z;
  z += alpha * d;
  var = (1.0 - alpha) * (var + alpha * std::norm(d));
  c = std::clamp(1.0 - 2.0 * std::sqrt(var), 0.0, 1.0);
}

KairosFilter::KairosFilter(std::span<const double> taus_s) {
  if (taus_s.empty() || taus_s.size() > kMaxScales)
    throw std::invalid_argument("KairosFilter: 1..8 scales");
  k_ = taus_s.size();
  for (std::size_t i = 0; i < k_; ++i) {
    if (!(taus_s[i] > 0)) throw std::invalid_argument("KairosFilter: tau must be > 0");
    scales_[i].tau_s = taus_s[i];
  }
}

void KairosFilter::update(Phase s, double t_s) {
  if (!has_sample_) {
    for (std::size_t i = 0; i < k_; ++i) scales_[i].reset(s);
    has_sample_ = true;
    last_t_s_ = t_s;
    return;
  }
  double dt = std::max(0.0, t_s - last_t_s_);
  last_t_s_ = std::max(last_t_s_, t_s);
  for (std::size_t i = 0; i < k_; ++i) scales_[i].update(s, dt);
}

double normalise(double x, double lo, double hi) {
  if (!(hi > lo)) return 0.0;
  return std::clamp((x - lo) / (hi - lo), 0.0, 1.0);
}

}  // namespace kairos

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

RhythmDetector::RhythmDetector(double tau_s, Params params)
    : tau_s_(tau_s), slot_s_(tau_s / static_cast<double>(kSlots)), params_(params) {
  v_slot_.fill(-1);
}

bool RhythmDetector::add(Phase s, double t_s) {
  auto slot = static_cast<std::int64_t>(std::floor(t_s / slot_s_));
  if (!started_) {
    started_ = true;
    slot_ = slot;
  } else if (slot > slot_) {
    close_slot();
    slot_ = slot;
  }
  // A sample stamped before the open slot (clock step) joins the open slot.
  sum_ += s;
  ++count_;
  bool was = collapsed_;
  double r2 = r_ * r_;
  // No verdict before the EMAs have seen one full window (4 tau): a few
  // early points can look alike by chance.
  if (!warm_) return false;
  if (!collapsed_ && r2 >= params_.i_c) collapsed_ = true;
  else if (collapsed_ && r2 < params_.release * params_.i_c) collapsed_ = false;
  return was != collapsed_;
}

void RhythmDetector::close_slot() {
  if (count_ == 0) return;
  Phase p = sum_ / static_cast<double>(count_);
  sum_ = {0.0, 0.0};
  count_ = 0;
  if (!has_prev_) {
    prev_p_ = p;
    has_prev_ = true;
    return;
  }
  Phase v = p - prev_p_;
  prev_p_ = p;
  // The ring holds v by slot index modulo N: what sits at this position is
  // v from exactly N slots (one tau) ago, if that slot had a point.
  auto pos = static_cast<std::size_t>(((slot_ % static_cast<std::int64_t>(kSlots)) + static_cast<std::int64_t>(kSlots)) %
                                      static_cast<std::int64_t>(kSlots));
  bool lagged = v_slot_[pos] == slot_ - static_cast<std::int64_t>(kSlots);
  Phase v_lag = v_[pos];
  v_[pos] = v;
  v_slot_[pos] = slot_;
  if (!lagged) return;
  double dt = has_ema_ ? static_cast<double>(slot_ - last_ema_slot_) * slot_s_ : 0.0;
  double a = has_ema_ ? 1.0 - std::exp(-dt / (4.0 * tau_s_)) : 1.0;
  Phase prod = v * std::conj(v_lag);
  if (params_.omega != 0.0) prod *= std::polar(1.0, params_.omega * (static_cast<double>(slot_) + 0.5) * slot_s_);
  t_ += a * (prod - t_);
  p_ += a * (std::norm(v) - p_);
  if (!has_ema_) first_ema_slot_ = slot_;
  last_ema_slot_ = slot_;
  has_ema_ = true;
  warm_ = static_cast<double>(slot_ - first_ema_slot_) * slot_s_ >= 4.0 * tau_s_;
  // docs/DESIGN.md 3.4 divides by P + 1e-12. Both EMAs decay alike once a signal
  // stops moving, so their ratio would keep a finished rhythm collapsed for
  // ever; a stillness floor of 1e-6 (a step of 0.001 of the normalised range
  // per slot) lets R fall when the movement does.
  r_ = (params_.omega == 0.0 ? std::max(0.0, t_.real()) : std::abs(t_)) / (p_ + kStillness);
}

KairosFilter::KairosFilter(std::span<const double> taus_s, RhythmDetector::Params rhythm) {
  if (taus_s.empty() || taus_s.size() > kMaxScales)
    throw std::invalid_argument("KairosFilter: 1..8 scales");
  k_ = taus_s.size();
  for (std::size_t i = 0; i < k_; ++i) {
    if (!(taus_s[i] > 0)) throw std::invalid_argument("KairosFilter: tau must be > 0");
    scales_[i].tau_s = taus_s[i];
    rhythm_[i] = RhythmDetector(taus_s[i], rhythm);
  }
}

std::uint32_t KairosFilter::update(Phase s, double t_s) {
  std::uint32_t changed = 0;
  for (std::size_t i = 0; i < k_; ++i)
    if (rhythm_[i].add(s, t_s)) changed |= 1u << i;
  if (!has_sample_) {
    for (std::size_t i = 0; i < k_; ++i) scales_[i].reset(s);
    has_sample_ = true;
    last_t_s_ = t_s;
    return changed;
  }
  double dt = std::max(0.0, t_s - last_t_s_);
  last_t_s_ = std::max(last_t_s_, t_s);
  for (std::size_t i = 0; i < k_; ++i) scales_[i].update(s, dt);
  return changed;
}

double normalise(double x, double lo, double hi) {
  if (!(hi > lo)) return 0.0;
  return std::clamp((x - lo) / (hi - lo), 0.0, 1.0);
}

}  // namespace kairos

#include "common/core/impedance.h"

#include <algorithm>
#include <cmath>

namespace kairos {

bool ClockFilter::add(const ClockSample& s) {
  if (s.rtt_us() < 0) return false;
  // A step of the node's clock: this good sample and the good one before it
  // both off the line the same way.
  int sign = 0;
  if (n_ >= kStepWindow && good(s, std::min(rtt_us(), s.rtt_us())) && off_the_line(s))
    sign = s.offset_us() > offset_at_us(s.mid_us()) ? 1 : -1;
  s_[next_] = s;
  next_ = (next_ + 1) % kSamples;
  n_ = std::min(n_ + 1, kSamples);
  if (sign != 0 && sign == off_sign_) {
    // The run since the step: back to the previous good sample (it was off too).
    std::size_t run = 2;
    const double floor = rtt_us();
    while (run <= n_ && !good(at(run - 1), floor)) ++run;
    keep_newest(std::min(run, n_));
    ++steps_;
    off_sign_ = 0;
  } else {
    if (sign != 0 || good(s, rtt_us())) off_sign_ = sign;
    if (std::size_t run = level_shift()) {
      keep_newest(run);
      ++shifts_;
    }
  }
  fit();
  return true;
}

void ClockFilter::keep_newest(std::size_t run) {
  // Keep only the run, oldest first.
  std::array<ClockSample, kSamples> keep;
  for (std::size_t i = 0; i < run; ++i) keep[i] = at(run - 1 - i);
  n_ = 0;
  next_ = 0;
  for (std::size_t i = 0; i < run; ++i) {
    s_[next_++] = keep[i];
    ++n_;
  }
  next_ %= kSamples;
}

bool ClockFilter::good(const ClockSample& s, double min_rtt) const {
  return s.rtt_us() <= min_rtt + std::max(1000.0, 0.25 * min_rtt);
}

bool ClockFilter::tight(const ClockSample& s, double min_rtt) const {
  return s.rtt_us() <= min_rtt + std::max(2000.0, 0.05 * min_rtt);
}

bool ClockFilter::off_the_line(const ClockSample& s) const {
  // A sample's offset is off by at most half its round trip's excess over
  // the floor (the asymmetry it can hide); 2 ms more is a step, not noise.
  // So is what the drift may have added since the anchor: up to 150 ppm
  // while none is fitted, 20 ppm (the fit's own error) once it is.
  // The anchor's own offset is off by up to half its excess over the floor
  // (a tighter sample than any before shows how far).
  const std::int64_t t = s.mid_us();
  const double floor = std::min(rtt_us(), s.rtt_us());
  const double uncertainty = (s.rtt_us() - floor) / 2 + (rtt_us() - floor) / 2 +
                             (fitted_ ? 20e-6 : 150e-6) * static_cast<double>(std::abs(t - anchor_t_us_));
  // And three times the scatter of the good samples about the line: a
  // heavy tail leaves even the tightest samples asymmetric by more than
  // their excess over the window's floor shows.
  return std::abs(s.offset_us() - offset_at_us(t)) > uncertainty + 3 * scatter_us_ + 2000.0;
}

void ClockFilter::fit() {
  // A sample off the line (a step begun?) stays out of the line until the
  // next one says whether it was.
  const std::size_t suspect = off_sign_ != 0 && n_ > 1 ? (next_ + kSamples - 1) % kSamples : kSamples;
  double floor = INFINITY;
  const ClockSample* best = nullptr;
  for (std::size_t i = 0; i < n_; ++i)
    if (i != suspect && s_[i].rtt_us() < floor) {
      floor = s_[i].rtt_us();
      best = &s_[i];
    }
  anchor_t_us_ = best->mid_us();
  anchor_offset_us_ = best->offset_us();
  // The tight samples give the drift, the good ones the scatter about the line.
  std::array<double, kSamples> dt{}, off{};
  std::size_t n = 0;
  for (std::size_t i = 0; i < n_; ++i) {
    if (i == suspect || !tight(s_[i], floor)) continue;
    dt[n] = static_cast<double>(s_[i].mid_us() - anchor_t_us_);
    off[n++] = s_[i].offset_us();
  }
  fit_drift({dt.data(), n}, {off.data(), n});
  double sum = 0, good_n = 0;
  for (std::size_t i = 0; i < n_; ++i) {
    if (i == suspect || !good(s_[i], floor)) continue;
    sum += std::pow(s_[i].offset_us() - offset_at_us(s_[i].mid_us()), 2);
    good_n += 1;
  }
  scatter_us_ = good_n > 1 ? std::sqrt(sum / (good_n - 1)) : 0;
}

void ClockFilter::fit_drift(std::span<const double> dt, std::span<const double> off) {
  // Least squares of offset on time. When too few points for a fit (a
  // tighter sample narrowed them, or the window restarted), the last drift
  // stands: a crystal's rate does not change with the route or a step.
  const std::size_t n = dt.size();
  if (n < 6) return;
  const auto [first, last] = std::minmax_element(dt.begin(), dt.end());
  if (*last - *first < static_cast<double>(kDriftSpanUs)) return;
  double mt = 0, mo = 0;
  for (std::size_t k = 0; k < n; ++k) {
    mt += dt[k] / static_cast<double>(n);
    mo += off[k] / static_cast<double>(n);
  }
  double sxx = 0, sxy = 0;
  for (std::size_t k = 0; k < n; ++k) {
    sxx += (dt[k] - mt) * (dt[k] - mt);
    sxy += (dt[k] - mt) * (off[k] - mo);
  }
  if (sxx <= 0) return;
  // Taken when it is precise (a standard error within 10 ppm) or stands
  // out of its own noise (four standard errors): on a heavy tail the good
  // samples scatter by tens of ms, and a slope read from that noise,
  // carried to T, would be worse than none.
  const double slope = sxy / sxx;
  double rss = 0;
  for (std::size_t k = 0; k < n; ++k) rss += std::pow(off[k] - mo - slope * (dt[k] - mt), 2);
  const double se = std::sqrt(rss / static_cast<double>(n - 2) / sxx);
  if (se <= 10e-6 || std::abs(slope) > 4 * se) {
    drift_ppm_ = std::clamp(slope * 1e6, -kMaxDriftPpm, kMaxDriftPpm);
    fitted_ = true;
  }
}

std::size_t ClockFilter::level_shift() const {
  // The run: the newest samples, at least 3, reaching back over 2 s (a
  // congested second is not a new route; pinged fast, that is many samples).
  std::size_t run = kShiftRun;
  while (run < n_ && at(0).t1_us - at(run - 1).t1_us < kShiftSpanUs) ++run;
  // Needs at least 3 samples before the run to compare with.
  if (at(0).t1_us - at(run - 1).t1_us < kShiftSpanUs || n_ < run + kShiftRun) return 0;
  double lo = INFINITY, mean = 0;
  const std::size_t older = n_ - run;
  for (std::size_t age = run; age < n_; ++age) {
    double r = at(age).rtt_us();
    lo = std::min(lo, r);
    mean += r;
  }
  mean /= static_cast<double>(older);
  double var = 0;
  for (std::size_t age = run; age < n_; ++age) var += std::pow(at(age).rtt_us() - mean, 2);
  double sd = std::sqrt(var / static_cast<double>(older));
  // Well away from the old floor: by 4 standard deviations, 2 ms and a
  // quarter of the level, whichever is most.
  double margin = std::max({4 * sd, 2000.0, 0.25 * lo});
  bool up = true, down = true;
  for (std::size_t age = 0; age < run; ++age) {
    double r = at(age).rtt_us();
    up = up && r > lo + margin;
    down = down && r < lo - margin;
  }
  return up || down ? run : 0;
}

double ClockFilter::inbound_tail_us() const {
  if (n_ == 0) return 0;
  const double floor = one_way_us();
  // The largest excess, or with 8 samples or more the second largest: one
  // stray sample (a stalled moment) should not set the lead for 16 pings.
  double first = 0, second = 0;
  for (std::size_t i = 0; i < n_; ++i) {
    double excess = static_cast<double>(s_[i].t2_us - s_[i].t1_us) - offset_at_us(s_[i].t1_us) - floor;
    if (excess > first) {
      second = first;
      first = excess;
    } else {
      second = std::max(second, excess);
    }
  }
  return n_ >= 8 ? second : first;
}

double ClockFilter::offset_us() const {
  if (n_ == 0) return 0;
  return offset_at_us(at(0).mid_us());
}

double ClockFilter::offset_at_us(std::int64_t t_us) const {
  if (n_ == 0) return 0;
  return anchor_offset_us_ + drift_ppm_ * 1e-6 * static_cast<double>(t_us - anchor_t_us_);
}

double ClockFilter::rtt_us() const {
  if (n_ == 0) return 0;
  double m = s_[0].rtt_us();
  for (std::size_t i = 1; i < n_; ++i) m = std::min(m, s_[i].rtt_us());
  return m;
}

double ClockFilter::jitter_us() const {
  if (n_ < 2) return 0;
  double mean = 0;
  for (std::size_t i = 0; i < n_; ++i) mean += s_[i].rtt_us() / 2;
  mean /= static_cast<double>(n_);
  double var = 0;
  for (std::size_t i = 0; i < n_; ++i) var += std::pow(s_[i].rtt_us() / 2 - mean, 2);
  return std::sqrt(var / static_cast<double>(n_));
}

void OneWayFloors::Ring::add(std::int64_t t_us, double raw_us) {
  if (n == 0) {
    base = raw_us;
    t0 = t_us;
  }
  // The frame it replaces held the minimum: found again when asked.
  if (n == kSamples && !stale && key(next, min_drift) <= min_key) stale = true;
  t[next] = t_us;
  raw[next] = static_cast<float>(raw_us - base);
  if (!stale) min_key = std::min(min_key, key(next, min_drift));
  next = (next + 1) % kSamples;
  n = std::min(n + 1, kSamples);
}

double OneWayFloors::Ring::floor_at(std::int64_t t_us, double drift) const {
  if (stale || drift != min_drift) {
    min_key = INFINITY;
    for (std::size_t i = 0; i < n; ++i) min_key = std::min(min_key, key(i, drift));
    min_drift = drift;
    stale = false;
  }
  return base + min_key - sign * drift * static_cast<double>(t_us - t0);
}

bool OneWayFloors::offset_at_us(std::int64_t t_us, double drift_ppm, double& offset_us) const {
  if (in_.n < kEnough || out_.n < kEnough) return false;
  // inbound raw = d + offset(t_i) = d + offset(t) + drift (t_i - t); outbound raw = d - offset(t) - drift (t_i - t).
  const double drift = drift_ppm * 1e-6;
  offset_us = (in_.floor_at(t_us, drift) - out_.floor_at(t_us, drift)) / 2;
  return true;
}

double class_base_ms(int c) {
  static constexpr double base[] = {150, 10, 50, 200, 100, 150, 60000};  // ?, A..F
  return c >= 1 && c <= 6 ? base[c] : base[0];
}

Impedance impedance(const ImpedanceInputs& in, double baseline_score) {
  Impedance r;
  double base = in.processing_ema_ms >= 0 ? in.processing_ema_ms : class_base_ms(in.device_class);
  r.processing_est_ms = base * (1 + 0.5 * in.payload_weight) * (1 + 0.1 * in.queue_depth) + std::max(0.0, in.output_ms);
  r.calibration_ms = std::max(0.0, in.calibration_ms);
  if (in.delay_tail_ms >= 0) {
    r.buffer_ms = 2;  // a loop turn at each end
    r.lead_ms = std::max(in.delay_tail_ms, in.rtt_ms / 2) + r.processing_est_ms + r.buffer_ms + r.calibration_ms;
  } else {
    r.buffer_ms = 3 * in.jitter_ms + 2;
    r.lead_ms = in.rtt_ms / 2 + r.processing_est_ms + r.buffer_ms + r.calibration_ms;
  }
  r.score = static_cast<int>(std::min(1000.0, std::round(r.lead_ms)));
  r.drift = in.jitter_ms / std::max(1.0, in.rtt_ms / 2);
  r.confidence = std::clamp(0.5 * in.reliability - 0.3 * r.drift + 0.2 * (in.heartbeat_fresh ? 1 : 0), 0.0, 1.0);
  r.degraded = r.score > 800 || (baseline_score > 0 && r.score > 2 * baseline_score);
  r.unstable = r.drift > 0.5;
  return r;
}

}  // namespace kairos

#include "common/core/impedance.h"

#include <algorithm>
#include <cmath>

namespace kairos {

bool ClockFilter::add(const ClockSample& s) {
  if (s.rtt_us() < 0) return false;
  s_[next_] = s;
  next_ = (next_ + 1) % kSamples;
  n_ = std::min(n_ + 1, kSamples);
  if (std::size_t run = level_shift()) {
    // Keep only the run that shows the new level, oldest first.
    std::array<ClockSample, kSamples> keep;
    for (std::size_t i = 0; i < run; ++i) keep[i] = at(run - 1 - i);
    n_ = 0;
    next_ = 0;
    for (std::size_t i = 0; i < run; ++i) {
      s_[next_++] = keep[i];
      ++n_;
    }
    next_ %= kSamples;
    ++shifts_;
  }
  return true;
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
  const double offset = offset_us(), floor = one_way_us();
  // The largest excess, or with 8 samples or more the second largest: one
  // stray sample (a stalled moment) should not set the lead for 16 pings.
  double first = 0, second = 0;
  for (std::size_t i = 0; i < n_; ++i) {
    double excess = static_cast<double>(s_[i].t2_us - s_[i].t1_us) - offset - floor;
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
  const ClockSample* best = &s_[0];
  for (std::size_t i = 1; i < n_; ++i)
    if (s_[i].rtt_us() < best->rtt_us()) best = &s_[i];
  return best->offset_us();
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

double class_base_ms(int c) {
  static constexpr double base[] = {150, 10, 50, 200, 100, 150, 60000};  // ?, A..F
  return c >= 1 && c <= 6 ? base[c] : base[0];
}

Impedance impedance(const ImpedanceInputs& in, double baseline_score) {
  Impedance r;
  double base = in.processing_ema_ms >= 0 ? in.processing_ema_ms : class_base_ms(in.device_class);
  r.processing_est_ms = base * (1 + 0.5 * in.payload_weight) * (1 + 0.1 * in.queue_depth);
  r.buffer_ms = 3 * in.jitter_ms + 2;
  r.calibration_ms = std::max(0.0, in.calibration_ms);
  r.lead_ms = in.rtt_ms / 2 + r.processing_est_ms + r.buffer_ms + r.calibration_ms;
  r.score = static_cast<int>(std::min(1000.0, std::round(r.lead_ms)));
  r.drift = in.jitter_ms / std::max(1.0, in.rtt_ms / 2);
  r.confidence = std::clamp(0.5 * in.reliability - 0.3 * r.drift + 0.2 * (in.heartbeat_fresh ? 1 : 0), 0.0, 1.0);
  r.degraded = r.score > 800 || (baseline_score > 0 && r.score > 2 * baseline_score);
  r.unstable = r.drift > 0.5;
  return r;
}

}  // namespace kairos

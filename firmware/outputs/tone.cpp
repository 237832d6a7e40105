#include "firmware/outputs/tone.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace kairos::node {

ToneGenerator::ToneGenerator(int rate_hz, double ramp_ms)
    : rate_(rate_hz), step_(1.0 - std::exp(-1.0 / (std::max(0.1, ramp_ms) / 1000.0 * rate_hz / 3.0))) {}

void ToneGenerator::set_target(double frequency_hz, double gain) {
  target_freq_ = std::clamp(frequency_hz, 0.0, rate_ / 2.0);
  target_gain_ = std::clamp(gain, 0.0, 1.0);
  if (!started_) {  // the first frequency is taken at once; the gain still ramps up from silence
    freq_ = target_freq_;
    started_ = true;
  }
}

void ToneGenerator::render(std::span<std::int16_t> out) {
  constexpr double kTwoPi = 2.0 * std::numbers::pi;
  for (auto& sample : out) {
    // exponential glide: ~95 % of the way after the ramp time (3 time constants)
    freq_ += step_ * (target_freq_ - freq_);
    gain_ += step_ * (target_gain_ - gain_);
    phase_ += kTwoPi * freq_ / rate_;
    if (phase_ >= kTwoPi) phase_ -= kTwoPi;
    sample = static_cast<std::int16_t>(std::lround(32767.0 * gain_ * std::sin(phase_)));
  }
}

}  // namespace kairos::node

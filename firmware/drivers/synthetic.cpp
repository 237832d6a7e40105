#include "firmware/drivers/synthetic.h"

#include <cmath>
#include <numbers>

namespace kairos::node {

SyntheticInput::SyntheticInput(const SyntheticConfig& config)
    : config_(config), state_(config.seed * 0x9E3779B97F4A7C15ULL + 1) {}

bool SyntheticInput::setup() { return true; }

double SyntheticInput::uniform() {
  // xorshift64*: deterministic per seed
  state_ ^= state_ >> 12;
  state_ ^= state_ << 25;
  state_ ^= state_ >> 27;
  std::uint64_t r = state_ * 0x2545F4914F6CDD1DULL;
  return static_cast<double>(r >> 11) / static_cast<double>(1ULL << 53) * 2.0 - 1.0;
}

double SyntheticInput::wave(double t_s) const {
  double cycles = t_s / config_.period_s + config_.phase_deg / 360.0;
  double frac = cycles - std::floor(cycles);
  const auto& w = config_.waveform;
  if (w == "sine") return std::sin(2.0 * std::numbers::pi * frac);
  if (w == "square") return frac < 0.5 ? 1.0 : -1.0;
  if (w == "triangle") return frac < 0.5 ? 4.0 * frac - 1.0 : 3.0 - 4.0 * frac;
  return 0.0;  // constant and noise: no wave
}

ReadResult SyntheticInput::read(std::int64_t now_us) {
  if (start_us_ < 0) start_us_ = now_us;
  double t = static_cast<double>(now_us - start_us_) / 1e6;
  double x = config_.offset + config_.amplitude * wave(t);
  if (config_.waveform == "noise") x = config_.offset + config_.amplitude * uniform();
  if (config_.noise > 0) x += config_.noise * uniform();
  return ReadResult::of(x);
}

std::string SyntheticInput::dump_config() const {
  return "synthetic " + config_.waveform + " period " + std::to_string(config_.period_s) + " s";
}

}  // namespace kairos::node

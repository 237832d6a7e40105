#pragma once
// A click-free tone (docs/DESIGN.md 3.5 speaker): a phase-continuous oscillator whose
// frequency glides and whose gain ramps towards their targets, so that no
// change of target ever makes a step in the waveform.
#include <cstdint>
#include <span>

namespace kairos::node {

class ToneGenerator {
 public:
  ToneGenerator(int rate_hz, double ramp_ms);
  // New targets; reached within the ramp time.
  void set_target(double frequency_hz, double gain);
  // Renders the next samples (mono, 16-bit).
  void render(std::span<std::int16_t> out);

  double frequency() const { return freq_; }
  double gain() const { return gain_; }
  int rate() const { return rate_; }

 private:
  int rate_;
  double step_;         // per-sample glide factor, 0..1
  double phase_ = 0.0;  // radians, kept in [0, 2 pi)
  double freq_ = 0.0;
  double gain_ = 0.0;
  double target_freq_ = 0.0;
  double target_gain_ = 0.0;
  bool started_ = false;
};

}  // namespace kairos::node

#pragma once
#include <cstdint>
#include <string>

#include "firmware/drivers/input.h"

namespace kairos::node {

// [inputs.<name>] of kind synthetic.
struct SyntheticConfig {
  std::string waveform = "sine";  // sine, square, triangle, noise, constant
  double period_s = 1.0;
  double amplitude = 0.5;
  double offset = 0.5;
  double phase_deg = 0.0;
  double noise = 0.0;  // uniform noise amplitude added to the wave
  std::uint64_t seed = 1;
};

// Deterministic generator (docs/DESIGN.md 3.3 `synthetic`): the embedded default for
// demos and tests. Time comes from the caller, so a run is reproducible.
class SyntheticInput : public Input {
 public:
  explicit SyntheticInput(const SyntheticConfig& config);
  bool setup() override;
  ReadResult read(std::int64_t now_us) override;
  std::string dump_config() const override;

  // The noiseless wave at t seconds (from the first read).
  double wave(double t_s) const;

 private:
  double uniform();  // -1..1

  const SyntheticConfig config_;
  std::uint64_t state_;
  std::int64_t start_us_ = -1;
};

}  // namespace kairos::node

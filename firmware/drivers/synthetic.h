#pragma once
#include "firmware/drivers/input.h"
#include "firmware/node_config.h"

namespace kairos::node {

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

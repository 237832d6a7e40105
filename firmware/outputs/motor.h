#pragma once
// motor (docs/DESIGN.md 3.5): an H-bridge driven either by two PWM channels (forward
// and reverse, e.g. DRV8833 / L9110 on sysfs PWM) or by a direction line plus
// one PWM channel (libgpiod, software PWM). velocity in [-1, 1] sets the
// direction and the duty. Failsafe: any missing or stale source value, exit,
// quarantine or freeze stops it at once.
#include <memory>

#include "firmware/drivers/pwm.h"
#include "firmware/outputs/output.h"

namespace kairos::node {

class Motor : public Output {
 public:
  // reverse or direction may be null (exactly one of them is used).
  Motor(OutputConfig config, std::unique_ptr<PwmChannel> forward, std::unique_ptr<PwmChannel> reverse,
        std::unique_ptr<OutputLine> direction);
  ~Motor() override;
  bool setup() override;
  void update(std::int64_t now_us, const SourceValue* value) override;
  void safe_state(std::int64_t now_us) override;
  std::string dump_config() const override;

  double velocity() const { return velocity_; }
  bool stopped() const { return velocity_ == 0.0; }

 private:
  void drive(double velocity);

  OutputConfig c_;
  std::unique_ptr<PwmChannel> forward_;
  std::unique_ptr<PwmChannel> reverse_;
  std::unique_ptr<OutputLine> direction_;
  double velocity_ = 0.0;
  bool ready_ = false;
};

}  // namespace kairos::node

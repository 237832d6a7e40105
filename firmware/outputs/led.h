#pragma once
// led (docs/DESIGN.md 3.5): an RGB LED on three PWM channels; hue (degrees) and
// brightness from the source, full saturation. Off when the source is stale.
#include <array>
#include <memory>

#include "firmware/drivers/pwm.h"
#include "firmware/outputs/output.h"

namespace kairos::node {

// HSV (s = 1) to RGB duties: hue in degrees, value 0..1.
std::array<double, 3> hue_to_rgb(double hue_deg, double value);

class Led : public Output {
 public:
  Led(OutputConfig config, std::array<std::unique_ptr<PwmChannel>, 3> rgb);
  ~Led() override;
  bool setup() override;
  void update(std::int64_t now_us, const SourceValue* value) override;
  void safe_state(std::int64_t now_us) override;
  std::string dump_config() const override { return "led (RGB PWM)"; }

 private:
  void show(const std::array<double, 3>& rgb);
  OutputConfig c_;
  std::array<std::unique_ptr<PwmChannel>, 3> rgb_;
  bool ready_ = false;
};

}  // namespace kairos::node

#include "firmware/outputs/led.h"

#include <algorithm>
#include <cmath>

#include "common/io/log.h"

namespace kairos::node {

std::array<double, 3> hue_to_rgb(double hue_deg, double value) {
  double h = std::fmod(std::fmod(hue_deg, 360.0) + 360.0, 360.0) / 60.0;
  double v = std::clamp(value, 0.0, 1.0);
  double x = v * (1.0 - std::abs(std::fmod(h, 2.0) - 1.0));
  switch (static_cast<int>(h)) {
    case 0: return {v, x, 0};
    case 1: return {x, v, 0};
    case 2: return {0, v, x};
    case 3: return {0, x, v};
    case 4: return {x, 0, v};
    default: return {v, 0, x};
  }
}

Led::Led(OutputConfig config, std::array<std::unique_ptr<PwmChannel>, 3> rgb) : c_(std::move(config)), rgb_(std::move(rgb)) {}

Led::~Led() {
  if (!ready_) return;
  for (auto& ch : rgb_) ch->disable();
}

bool Led::setup() {
  if (ready_) return true;
  ready_ = true;
  for (auto& ch : rgb_) ready_ = ready_ && ch->setup();
  if (!ready_)
    for (auto& ch : rgb_)
      if (!ch->error().empty()) log::warn("led", c_.name + ": " + ch->error());
  return ready_;
}

void Led::show(const std::array<double, 3>& rgb) {
  if (!ready_) return;
  for (std::size_t i = 0; i < 3; ++i) rgb_[i]->set_duty(rgb[i]);
}

void Led::update(std::int64_t, const SourceValue* v) {
  if (!v) return show({0, 0, 0});
  show(hue_to_rgb(c_.channels.at("hue").apply(*v), c_.channels.at("brightness").apply(*v)));
}

void Led::safe_state(std::int64_t) { show({0, 0, 0}); }

}  // namespace kairos::node

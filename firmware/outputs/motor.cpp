#include "firmware/outputs/motor.h"

#include <cmath>

#include "common/io/log.h"

namespace kairos::node {

Motor::Motor(OutputConfig config, std::unique_ptr<PwmChannel> forward, std::unique_ptr<PwmChannel> reverse,
             std::unique_ptr<OutputLine> direction)
    : c_(std::move(config)), forward_(std::move(forward)), reverse_(std::move(reverse)), direction_(std::move(direction)) {}

Motor::~Motor() {
  // Exit: stopped, and the channels switched off.
  drive(0.0);
  if (!ready_) return;
  forward_->disable();
  if (reverse_) reverse_->disable();
  if (direction_) direction_->set(false);
}

bool Motor::setup() {
  if (ready_) return true;
  ready_ = forward_->setup() && (!reverse_ || reverse_->setup()) && (!direction_ || direction_->setup());
  if (!ready_) {
    const auto& e = !forward_->error().empty() ? forward_->error()
                    : reverse_ && !reverse_->error().empty() ? reverse_->error()
                    : direction_ ? direction_->error() : forward_->error();
    log::warn("motor", c_.name + ": " + e);
  }
  return ready_;
}

void Motor::drive(double v) {
  velocity_ = v;
  if (!ready_) return;
  double duty = std::min(1.0, std::abs(v));
  if (reverse_) {
    forward_->set_duty(v > 0 ? duty : 0.0);
    reverse_->set_duty(v < 0 ? duty : 0.0);
  } else {
    if (direction_) direction_->set(v < 0);
    forward_->set_duty(duty);
  }
}

void Motor::update(std::int64_t, const SourceValue* value) {
  if (!value) {
    if (velocity_ != 0.0) log::warn("motor", c_.name + ": failsafe stop (no fresh value from " + c_.source + ")");
    drive(0.0);
    return;
  }
  drive(c_.channels.at("velocity").apply(*value));
}

void Motor::safe_state(std::int64_t) { drive(0.0); }

std::string Motor::dump_config() const {
  return std::string("motor, ") + (reverse_ ? "two PWM channels" : "direction line + PWM") + ", failsafe " +
         std::to_string(static_cast<int>(c_.failsafe_ms)) + " ms";
}

}  // namespace kairos::node

#pragma once
// Fakes of the firmware's hardware seams, in one place for every test.
#include <string>

#include "firmware/drivers/pwm.h"

namespace kairos::node::test {

// A PWM channel writing its duty to *duty; disable() sets it to 0 and *disabled.
struct FakePwm : PwmChannel {
  explicit FakePwm(double* duty, bool works = true, bool* disabled = nullptr)
      : duty_(duty), works_(works), disabled_(disabled) {
    if (!works) error_ = "fake PWM refuses";
  }
  bool setup() override { return works_; }
  void set_duty(double d) override { *duty_ = d; }
  void disable() override {
    *duty_ = 0;
    if (disabled_) *disabled_ = true;
  }
  const std::string& error() const override { return error_; }

 private:
  double* duty_;
  bool works_;
  bool* disabled_;
  std::string error_;
};

// A digital line writing its level to *value.
struct FakeLine : OutputLine {
  explicit FakeLine(int* value) : value_(value) {}
  bool setup() override { return true; }
  void set(bool high) override { *value_ = high; }
  const std::string& error() const override { return error_; }

 private:
  int* value_;
  std::string error_;
};

}  // namespace kairos::node::test

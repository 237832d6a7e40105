#pragma once
// PWM and GPIO output seams for the motor and LED outputs (docs/DESIGN.md 3.5):
// Linux sysfs PWM (/sys/class/pwm) and libgpiod 1.6 lines with software PWM,
// each with a small interface that tests replace with a fake.
#include <atomic>
#include <memory>
#include <string>
#include <thread>

namespace kairos::node {

// One PWM channel; duty in [0, 1]. Failures are reported by ok() and error().
class PwmChannel {
 public:
  virtual ~PwmChannel() = default;
  virtual bool setup() = 0;
  virtual void set_duty(double duty) = 0;
  virtual void disable() = 0;  // output low, channel off
  virtual const std::string& error() const = 0;
};

// One digital output line.
class OutputLine {
 public:
  virtual ~OutputLine() = default;
  virtual bool setup() = 0;
  virtual void set(bool high) = 0;
  virtual const std::string& error() const = 0;
};

// /sys/class/pwm/<chip>/pwm<n>: exported on setup, period in ns.
class SysfsPwm : public PwmChannel {
 public:
  SysfsPwm(std::string sysfs_root, std::string chip, int channel, int period_ns);
  bool setup() override;
  void set_duty(double duty) override;
  void disable() override;
  const std::string& error() const override { return error_; }

 private:
  bool write(const std::string& file, const std::string& value);
  std::string dir_;
  std::string chip_dir_;
  int channel_;
  int period_ns_;
  int last_duty_ns_ = -1;
  bool enabled_ = false;
  std::string error_;
};

// A GPIO line found by chip label and line name (never by number), libgpiod 1.6.
class GpiodLine : public OutputLine {
 public:
  GpiodLine(std::string chip_label, std::string line_name, std::string consumer);
  ~GpiodLine() override;
  bool setup() override;
  void set(bool high) override;
  const std::string& error() const override { return error_; }

 private:
  std::string chip_label_, line_name_, consumer_;
  void* chip_ = nullptr;  // gpiod_chip*
  void* line_ = nullptr;  // gpiod_line*
  std::string error_;
};

// Software PWM on an output line: a thread toggles it at `hz`.
class SoftPwm : public PwmChannel {
 public:
  SoftPwm(std::unique_ptr<OutputLine> line, int hz);
  ~SoftPwm() override;
  bool setup() override;
  void set_duty(double duty) override { duty_.store(duty); }
  void disable() override { duty_.store(0.0); }
  const std::string& error() const override { return line_->error(); }

 private:
  std::unique_ptr<OutputLine> line_;
  int hz_;
  std::atomic<double> duty_{0.0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace kairos::node

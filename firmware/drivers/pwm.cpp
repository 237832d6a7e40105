#include "firmware/drivers/pwm.h"

#include <gpiod.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>

namespace kairos::node {

SysfsPwm::SysfsPwm(std::string sysfs_root, std::string chip, int channel, int period_ns)
    : dir_(sysfs_root + "/class/pwm/" + chip + "/pwm" + std::to_string(channel)),
      chip_dir_(sysfs_root + "/class/pwm/" + chip),
      channel_(channel),
      period_ns_(period_ns) {}

bool SysfsPwm::write(const std::string& file, const std::string& value) {
  std::ofstream out(file);
  out << value << "\n";
  out.flush();
  if (!out) {
    error_ = file + ": cannot write";
    return false;
  }
  return true;
}

bool SysfsPwm::setup() {
  if (::access(dir_.c_str(), F_OK) != 0 && !write(chip_dir_ + "/export", std::to_string(channel_))) return false;
  if (::access(dir_.c_str(), F_OK) != 0) {
    error_ = dir_ + ": not exported";
    return false;
  }
  // duty first: the kernel refuses a period shorter than the current duty
  return write(dir_ + "/duty_cycle", "0") && write(dir_ + "/period", std::to_string(period_ns_)) &&
         write(dir_ + "/enable", "1") && (enabled_ = true);
}

void SysfsPwm::set_duty(double duty) {
  int ns = static_cast<int>(std::clamp(duty, 0.0, 1.0) * period_ns_);
  if (ns == last_duty_ns_) return;  // sysfs writes are not free: only changes
  if (write(dir_ + "/duty_cycle", std::to_string(ns))) last_duty_ns_ = ns;
  if (!enabled_) enabled_ = write(dir_ + "/enable", "1");
}

void SysfsPwm::disable() {
  write(dir_ + "/duty_cycle", "0");
  write(dir_ + "/enable", "0");
  last_duty_ns_ = 0;
  enabled_ = false;
}

GpiodLine::GpiodLine(std::string chip_label, std::string line_name, std::string consumer)
    : chip_label_(std::move(chip_label)), line_name_(std::move(line_name)), consumer_(std::move(consumer)) {}

GpiodLine::~GpiodLine() {
  if (line_) {
    gpiod_line_set_value(static_cast<gpiod_line*>(line_), 0);
    gpiod_line_release(static_cast<gpiod_line*>(line_));
  }
  if (chip_) gpiod_chip_close(static_cast<gpiod_chip*>(chip_));
}

bool GpiodLine::setup() {
  if (line_) return true;
  if (!chip_) chip_ = gpiod_chip_open_by_label(chip_label_.c_str());
  if (!chip_) {
    error_ = "no GPIO chip labelled '" + chip_label_ + "': " + std::strerror(errno);
    return false;
  }
  auto* line = gpiod_chip_find_line(static_cast<gpiod_chip*>(chip_), line_name_.c_str());
  if (!line) {
    error_ = "no line '" + line_name_ + "' on " + chip_label_;
    return false;
  }
  if (gpiod_line_request_output(line, consumer_.c_str(), 0) != 0) {
    error_ = "line '" + line_name_ + "' busy: " + std::strerror(errno);
    return false;
  }
  line_ = line;
  return true;
}

void GpiodLine::set(bool high) {
  if (line_) gpiod_line_set_value(static_cast<gpiod_line*>(line_), high ? 1 : 0);
}

SoftPwm::SoftPwm(std::unique_ptr<OutputLine> line, int hz) : line_(std::move(line)), hz_(hz) {}

SoftPwm::~SoftPwm() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
  line_->set(false);
}

bool SoftPwm::setup() {
  if (thread_.joinable()) return true;
  if (!line_->setup()) return false;
  thread_ = std::thread([this] {
    using namespace std::chrono;
    const auto period = duration_cast<steady_clock::duration>(duration<double>(1.0 / hz_));
    auto next = steady_clock::now();
    while (!stop_.load()) {
      double d = duty_.load();
      auto on = duration_cast<steady_clock::duration>(period * d);
      if (d > 0) line_->set(true);
      if (d < 1) {
        std::this_thread::sleep_until(next + on);
        line_->set(false);
      }
      next += period;
      std::this_thread::sleep_until(next);
    }
    line_->set(false);
  });
  return true;
}

}  // namespace kairos::node

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "firmware/drivers/pwm.h"
#include "firmware/outputs/motor.h"
#include "tests/unit/firmware/fakes.h"

using namespace kairos::node;
using namespace kairos::node::test;
namespace fs = std::filesystem;

namespace {

OutputConfig motor_config() {
  OutputConfig c;
  c.name = std::string(1, 'm');
  c.kind = std::string("motor");
  c.source = std::string("local:x");
  c.channels = default_channels(c.kind);
  return c;
}

}  // namespace

TEST(Motor, DirectionLineAndDuty) {
  double duty = -1;
  int dir = -1;
  Motor m(motor_config(), std::make_unique<FakePwm>(&duty), nullptr, std::make_unique<FakeLine>(&dir));
  ASSERT_TRUE(m.setup());
  SourceValue v{0.9, 0.5, 1};
  m.update(0, &v);
  EXPECT_NEAR(duty, 0.8, 1e-12);  // velocity = (re - 0.5) * 2
  EXPECT_EQ(dir, 0);
  v.re = 0.25;
  m.update(1, &v);
  EXPECT_NEAR(duty, 0.5, 1e-12);
  EXPECT_EQ(dir, 1);  // reverse
  m.update(2, nullptr);  // stale source: failsafe
  EXPECT_EQ(duty, 0.0);
  EXPECT_TRUE(m.stopped());
}

TEST(Motor, TwoChannelBridgeAndSafeStates) {
  double fwd = -1, rev = -1;
  {
    Motor m(motor_config(), std::make_unique<FakePwm>(&fwd), std::make_unique<FakePwm>(&rev), nullptr);
    ASSERT_TRUE(m.setup());
    SourceValue v{1.0, 0.5, 1};
    m.update(0, &v);
    EXPECT_DOUBLE_EQ(fwd, 1.0);
    EXPECT_DOUBLE_EQ(rev, 0.0);
    v.re = 0.0;
    m.update(1, &v);
    EXPECT_DOUBLE_EQ(fwd, 0.0);
    EXPECT_DOUBLE_EQ(rev, 1.0);
    m.safe_state(2);  // quarantine / freeze
    EXPECT_DOUBLE_EQ(rev, 0.0);
    m.update(3, &v);
    EXPECT_DOUBLE_EQ(rev, 1.0);
  }
  EXPECT_DOUBLE_EQ(fwd, 0.0);  // destroyed (exit): stopped
  EXPECT_DOUBLE_EQ(rev, 0.0);
}

TEST(Motor, HardwareMissingIsNotFatal) {
  double duty = 0.5;
  Motor m(motor_config(), std::make_unique<FakePwm>(&duty, false), nullptr, nullptr);
  EXPECT_FALSE(m.setup());
  SourceValue v{1.0, 0.5, 1};
  m.update(0, &v);  // nothing driven, nothing thrown
  EXPECT_DOUBLE_EQ(duty, 0.5);
}

TEST(SysfsPwm, ExportsConfiguresAndDisables) {
  auto root = fs::temp_directory_path() / ("kairos-pwm-" + std::to_string(::getpid()));
  fs::create_directories(root / "class/pwm/pwmchip0/pwm1");  // as if the kernel exported it
  auto text = [&](const char* f) {
    std::ifstream in(root / "class/pwm/pwmchip0/pwm1" / f);
    std::string s;
    std::getline(in, s);
    return s;
  };
  SysfsPwm p(root.string(), "pwmchip0", 1, 20'000'000);
  ASSERT_TRUE(p.setup()) << p.error();
  EXPECT_EQ(text("period"), "20000000");
  EXPECT_EQ(text("enable"), "1");
  p.set_duty(0.25);
  EXPECT_EQ(text("duty_cycle"), "5000000");
  p.set_duty(7);  // clamped
  EXPECT_EQ(text("duty_cycle"), "20000000");
  p.disable();
  EXPECT_EQ(text("duty_cycle"), "0");
  EXPECT_EQ(text("enable"), "0");
  SysfsPwm missing(root.string(), "pwmchip9", 0, 1000);
  EXPECT_FALSE(missing.setup());
  EXPECT_FALSE(missing.error().empty());
  fs::remove_all(root);
}

TEST(GpiodLine, AChipThatDoesNotExistIsReported) {
  GpiodLine line("no-such-chip-label", "GPIO23", "kairos-test");
  EXPECT_FALSE(line.setup());
  EXPECT_NE(line.error().find("no-such-chip-label"), std::string::npos);
  line.set(true);  // harmless when not set up
}

#pragma once
// temperature / pressure / humidity from Linux sysfs (docs/DESIGN.md 3.3): an IIO
// channel (BME280, BMP280, ... through their kernel drivers) or a 1-Wire
// DS18B20 (w1_slave, CRC checked). The sysfs root is configurable, so tests
// run against a fake tree.
#include <string>

#include "firmware/drivers/input.h"

namespace kairos::node {

struct SysfsConfig {
  std::string kind;                 // temperature, pressure, humidity
  std::string source = "iio";       // iio or w1
  std::string sysfs_root = "/sys";
  std::string device;               // iio:device0, or the 1-Wire id 28-0000012345ab
  std::string channel;              // IIO file; default by kind (in_temp_input, ...)
  double scale = 0.0;               // raw to unit; 0 = by kind (milli-degC -> degC, ...)
};

class SysfsSensorInput : public Input {
 public:
  explicit SysfsSensorInput(SysfsConfig config);
  bool setup() override;
  ReadResult read(std::int64_t now_us) override;
  std::string dump_config() const override;

  const std::string& path() const { return path_; }

 private:
  const SysfsConfig config_;
  std::string path_;
  double scale_;
};

// Dallas/Maxim 1-Wire CRC-8 (polynomial x^8 + x^5 + x^4 + 1, reflected).
std::uint8_t dallas_crc8(const std::uint8_t* data, std::size_t n);

// Parses a DS18B20 w1_slave text: temperature in degrees C, or an error.
ReadResult parse_w1_slave(const std::string& text);

}  // namespace kairos::node

#include "firmware/drivers/sysfs_sensor.h"

#include <charconv>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

namespace kairos::node {

namespace {

std::string default_channel(const std::string& kind) {
  if (kind == "temperature") return "in_temp_input";          // milli-degC
  if (kind == "pressure") return "in_pressure_input";         // kPa
  return "in_humidityrelative_input";                          // milli-percent
}

double default_scale(const std::string& kind, const std::string& source) {
  if (source == "w1") return 1.0;  // parse_w1_slave already gives degC
  if (kind == "pressure") return 1.0;
  return 0.001;
}

bool read_text(const std::string& path, std::string& out) {
  std::ifstream in(path);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return !in.bad();
}

}  // namespace

std::uint8_t dallas_crc8(const std::uint8_t* data, std::size_t n) {
  std::uint8_t crc = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::uint8_t byte = data[i];
    for (int bit = 0; bit < 8; ++bit) {
      bool mix = ((crc ^ byte) & 1) != 0;
      crc = static_cast<std::uint8_t>(crc >> 1);
      if (mix) crc ^= 0x8C;
      byte = static_cast<std::uint8_t>(byte >> 1);
    }
  }
  return crc;
}

ReadResult parse_w1_slave(const std::string& text) {
  // "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n"
  auto eol = text.find('\n');
  if (eol == std::string::npos) return ReadResult::failure("w1_slave: truncated");
  std::string first = text.substr(0, eol);
  if (first.size() < 3 || first.substr(first.size() - 3) != "YES")
    return ReadResult::failure("w1_slave: the kernel's CRC check failed");
  std::istringstream hex(first);
  std::vector<std::uint8_t> bytes;
  std::string tok;
  while (hex >> tok && tok != ":") bytes.push_back(static_cast<std::uint8_t>(std::strtoul(tok.c_str(), nullptr, 16)));
  if (bytes.size() != 9) return ReadResult::failure("w1_slave: expected 9 bytes");
  if (dallas_crc8(bytes.data(), 8) != bytes[8]) return ReadResult::failure("w1_slave: CRC mismatch");
  auto t = text.find("t=", eol);
  if (t == std::string::npos) return ReadResult::failure("w1_slave: no t=");
  long milli = 0;
  const char* begin = text.data() + t + 2;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(begin, end, milli);
  if (ec != std::errc() || ptr == begin) return ReadResult::failure("w1_slave: bad t=");
  // 85000 is the power-on reset value: a conversion that never ran.
  if (milli == 85000) return ReadResult::failure("w1_slave: power-on value 85 C (no conversion)");
  return ReadResult::of(static_cast<double>(milli) / 1000.0);
}

SysfsSensorInput::SysfsSensorInput(SysfsConfig config)
    : config_(std::move(config)), scale_(config_.scale != 0 ? config_.scale : default_scale(config_.kind, config_.source)) {
  if (config_.source == "w1") {
    path_ = config_.sysfs_root + "/bus/w1/devices/" + config_.device + "/w1_slave";
  } else {
    path_ = config_.sysfs_root + "/bus/iio/devices/" + config_.device + "/" +
            (config_.channel.empty() ? default_channel(config_.kind) : config_.channel);
  }
}

bool SysfsSensorInput::setup() {
  std::ifstream in(path_);
  return static_cast<bool>(in);
}

ReadResult SysfsSensorInput::read(std::int64_t) {
  std::string text;
  if (!read_text(path_, text)) return ReadResult::failure(path_ + ": cannot read");
  if (config_.source == "w1") {
    auto r = parse_w1_slave(text);
    if (r.status == ReadResult::Status::sample) r.reading.x *= scale_;
    return r;
  }
  double raw = 0;
  const char* begin = text.data();
  while (begin < text.data() + text.size() && (*begin == ' ' || *begin == '\t')) ++begin;
  auto [ptr, ec] = std::from_chars(begin, text.data() + text.size(), raw);
  if (ec != std::errc() || ptr == begin) return ReadResult::failure(path_ + ": not a number");
  return ReadResult::of(raw * scale_);
}

std::string SysfsSensorInput::dump_config() const {
  return config_.kind + " from " + path_ + " (x" + std::to_string(scale_) + ")";
}

}  // namespace kairos::node

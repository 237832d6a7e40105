#include "common/core/board.h"

#include <algorithm>
#include <iterator>
#include <string_view>

#include "common/core/config.h"

namespace kairos {

namespace {

kairos_v1_DeviceClass parse_class(Section& s, std::string_view key, std::string_view def) {
  auto c = s.choice(key, def, {"A", "B", "C", "D", "E", "F"});
  return static_cast<kairos_v1_DeviceClass>(kairos_v1_DeviceClass_CLASS_A + (c[0] - 'A'));
}

// board.arch: one or more Debian architectures, each once.
std::vector<std::string> parse_arches(Section& s) {
  static constexpr std::string_view kKnown[] = {"armel", "armhf", "arm64", "native"};
  auto arches = s.strings("arch", std::size(kKnown));
  if (arches.empty()) s.fail("arch", "expected at least one architecture: armel, armhf, arm64 or native");
  for (auto it = arches.begin(); it != arches.end(); ++it) {
    if (std::find(std::begin(kKnown), std::end(kKnown), *it) == std::end(kKnown))
      s.fail("arch", "'" + *it + "' is not one of armel, armhf, arm64, native");
    if (std::find(arches.begin(), it, *it) != it) s.fail("arch", "'" + *it + "' is listed twice");
  }
  return arches;
}

}  // namespace

BoardConfig parse_board(const std::string& text, const std::string& file, const std::string& name,
                        std::string& canonical) {
  Config cfg(text, file);
  auto root = cfg.root();
  BoardConfig b;
  b.name = name;
  auto board = root.section("board");
  b.cpu = board.str("cpu", "");
  b.arches = parse_arches(board);
  b.device_class = parse_class(board, "device_class", "E");
  b.tau_base_s = board.num("tau_base_s", 0.001, 86400);
  b.tau_max_s = board.num("tau_max_s", 0.001, 86400);
  if (b.tau_max_s < b.tau_base_s) board.fail("tau_max_s", "must be >= tau_base_s");
  auto gpio = root.section("gpio");
  b.gpio_chip_label = gpio.str("chip_label", "");
  b.pins = root.section("pins").string_entries();
  b.default_adapters = root.section("defaults").strings("adapters", 16);
  auto power = root.section("power");
  b.wifi = power.boolean("wifi", false);
  b.power_advice = power.str("advice", "");
  cfg.finish();
  canonical = cfg.dump();
  return b;
}

}  // namespace kairos

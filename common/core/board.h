#pragma once
// A board file (boards/<name>.toml, docs/DESIGN.md 3.2): data only, read by
// the node at boot and by kairosctl provision.
#include <string>
#include <utility>
#include <vector>

#include "kairos.pb.h"

namespace kairos {

struct BoardConfig {
  std::string name;
  std::string cpu;
  // Debian architectures the board runs, in order of preference: armel,
  // armhf, arm64 or native (the build machine's).
  std::vector<std::string> arches;
  kairos_v1_DeviceClass device_class = kairos_v1_DeviceClass_CLASS_E;
  double tau_base_s = 0.1;
  double tau_max_s = 10.0;
  std::string gpio_chip_label;  // resolve lines through this label, never a chip number
  std::vector<std::pair<std::string, std::string>> pins;  // header name -> GPIO line name
  std::vector<std::string> default_adapters;
  bool wifi = false;            // has a Wi-Fi radio (provisioning turns power save off)
  std::string power_advice;
};

// Parses and validates a board file (boards/<name>.toml); its canonical
// dump goes to canonical. Throws ConfigError.
BoardConfig parse_board(const std::string& text, const std::string& file, const std::string& name,
                        std::string& canonical);

}  // namespace kairos

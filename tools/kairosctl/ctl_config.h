#pragma once
// The console's config file (/etc/kairos/kairosctl.toml): [broker] and [ctl].
#include <string>

#include "common/core/broker.h"

namespace kairos::ctl {

struct CtlConfig {
  BrokerConfig broker;
  std::string mesh = "default";
  std::string key_file;   // the operator key
  int timeout_ms = 3000;  // how long to wait for the gateway
};

// Parses and validates the console's config text. Throws ConfigError.
CtlConfig parse_ctl_config(const std::string& text, const std::string& file);

}  // namespace kairos::ctl

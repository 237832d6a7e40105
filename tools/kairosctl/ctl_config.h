#pragma once
// The console's config file (/etc/kairos/kairosctl.toml): [broker] and [ctl].
#include <string>

#include "common/core/broker.h"

namespace kairos::ctl {

struct CtlConfig {
  BrokerConfig broker;
  std::string mesh = "default";
  std::string key_file;   // the key that signs this console's requests: its operator's own, or the shared one
  // The named operator this console speaks for (requests on _ctl/req/<name>);
  // "" for the shared operator key on the legacy _ctl/req.
  std::string operator_name;
  // The shared operator key, which checks alerts and Ball heads and
  // deliveries; "" = key_file (a console of the shared key).
  std::string shared_key_file;
  int timeout_ms = 3000;  // how long to wait for the gateway
};

// Parses and validates the console's config text. Throws ConfigError.
CtlConfig parse_ctl_config(const std::string& text, const std::string& file);

}  // namespace kairos::ctl

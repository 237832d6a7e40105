#pragma once
#include <cstddef>
#include <string>

#include "common/core/config.h"

namespace kairos {

// The [broker] table shared by node, gateway and console configs.
struct BrokerConfig {
  std::string uri = "tcp://127.0.0.1:1883";
  std::string username;
  std::string password_file;  // first line is the password
  int keepalive_s = 10;
  double reconnect_max_s = 30.0;
  std::size_t backlog = 1000;  // QoS 1 frames kept while offline
};

BrokerConfig read_broker(Section broker, std::size_t default_backlog);

}  // namespace kairos

#pragma once
// A node's birth as the gateway's unit tests need it: its cluster, one
// capability, its class and (when hash is not 0) a context hash of that
// byte; a heartbeat every second.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>

#include "kairos.pb.h"

namespace kairos::test {

inline kairos_v1_NodeBirth birth(const std::string& cluster = "c1", const std::string& capability = "",
                                 kairos_v1_DeviceClass cls = kairos_v1_DeviceClass_CLASS_UNSPECIFIED,
                                 std::uint8_t hash = 0) {
  kairos_v1_NodeBirth b = kairos_v1_NodeBirth_init_zero;
  std::snprintf(b.cluster, sizeof b.cluster, "%s", cluster.c_str());
  b.device_class = cls;
  b.heartbeat_period_ms = 1000;
  if (!capability.empty()) {
    std::snprintf(b.capabilities[0], sizeof b.capabilities[0], "%s", capability.c_str());
    b.capabilities_count = 1;
  }
  if (hash) {
    b.context_hash.size = 32;
    std::fill_n(b.context_hash.bytes, 32, hash);
  }
  return b;
}

}  // namespace kairos::test

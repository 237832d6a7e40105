#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

#include "common/core/crypto.h"
#include "common/io/log.h"

namespace kairos::gw {

// Keys the gateway holds (docs/DESIGN.md 4): one per node under <dir>/nodes/<id>.key,
// the mesh broadcast key <dir>/broadcast.key and the operator key
// <dir>/operator.key. Node keys load on first use; a missing one is looked
// for again at most every retry_us so that junk names cost no disk reads.
class KeyRing {
 public:
  KeyRing(std::string dir, std::int64_t retry_us = 5'000'000);
  // Throws std::runtime_error when broadcast or operator key is unusable.
  void load_shared();
  const Key* node_key(const std::string& id, std::int64_t now_us);
  const Key& broadcast() const { return broadcast_; }
  const Key& operator_key() const { return operator_; }

 private:
  std::string dir_;
  std::int64_t retry_us_;
  Key broadcast_{};
  Key operator_{};
  std::unordered_map<std::string, Key> nodes_;
  std::unordered_map<std::string, std::int64_t> missing_;  // id -> when last looked for
  log::Gate missing_log_{1.0, 5.0};  // junk names arrive by the thousand
};

}  // namespace kairos::gw

#pragma once
// A key of one repeated byte, for unit tests that need a few distinct keys.
#include <cstdint>

#include "common/core/crypto.h"

namespace kairos::test {

inline Key key_of(std::uint8_t fill) {
  Key k{};
  k.bytes.fill(fill);
  return k;
}

}  // namespace kairos::test

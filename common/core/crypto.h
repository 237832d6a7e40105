#pragma once
#include <array>
#include <optional>
#include <string_view>

#include "common/core/bytes.h"

namespace kairos {

using Digest = std::array<std::uint8_t, 32>;

// A 256-bit secret shared by exactly the parties of docs/DESIGN.md 4 (node key,
// mesh broadcast key or operator key).
struct Key {
  std::array<std::uint8_t, 32> bytes{};
};

// Parses a key file's text: 64 hex digits, surrounding white space allowed.
std::optional<Key> parse_key(std::string_view text);

Digest sha256(ByteView data);

// HMAC-SHA256 over the concatenation of parts (no separators added).
Digest hmac_sha256(const Key& key, std::initializer_list<ByteView> parts);

// Comparison whose time does not depend on where a and b differ.
bool equal_constant_time(ByteView a, ByteView b);

}  // namespace kairos

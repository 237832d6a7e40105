#pragma once
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace kairos {

using Bytes = std::vector<std::uint8_t>;
using ByteView = std::span<const std::uint8_t>;

inline ByteView as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// Lower-case hex of b.
std::string to_hex(ByteView b);
// Parses hex (either case, no separators); nullopt on any other character or odd length.
std::optional<Bytes> from_hex(std::string_view hex);

}  // namespace kairos

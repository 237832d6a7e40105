#pragma once
// Strings from the wire at the boundary (docs/DESIGN.md 4): UTF-8 checked
// strictly, and anything shown in a log made safe and short.
#include <cstddef>
#include <string>
#include <string_view>

namespace kairos {

// Length of the well-formed UTF-8 sequence starting at s[i] (1..4), or 0
// when the bytes there are not one (overlong, surrogate, above U+10FFFF,
// truncated, a stray continuation byte).
std::size_t utf8_sequence(std::string_view s, std::size_t i);

bool valid_utf8(std::string_view s);

// The longest prefix of s of at most n bytes that does not end inside a
// multi-byte sequence: truncating valid UTF-8 there keeps it valid.
std::size_t utf8_cut(std::string_view s, std::size_t n);

// s for a log line: control characters, backslashes and bytes that are not
// UTF-8 escaped (\xNN), at most max characters of it, then how much was
// left out. Every string that came from the wire goes through this.
std::string log_safe(std::string_view s, std::size_t max = 96);

}  // namespace kairos

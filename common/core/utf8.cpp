#include "common/core/utf8.h"

#include <cstdio>

namespace kairos {

std::size_t utf8_sequence(std::string_view s, std::size_t i) {
  auto at = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = at(i);
  if (c < 0x80) return 1;
  std::size_t n;
  unsigned char lo = 0x80, hi = 0xbf;  // the second byte's range (RFC 3629 table)
  if (c >= 0xc2 && c <= 0xdf) n = 2;
  else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0) lo = 0xa0;       // no overlongs
    else if (c == 0xed) hi = 0x9f;  // no surrogates
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0) lo = 0x90;
    else if (c == 0xf4) hi = 0x8f;  // not above U+10FFFF
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (at(i + 1) < lo || at(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k)
    if (at(i + k) < 0x80 || at(i + k) > 0xbf) return 0;
  return n;
}

bool valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    std::size_t n = utf8_sequence(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::size_t utf8_cut(std::string_view s, std::size_t n) {
  if (n > s.size()) n = s.size();
  // Back to the start of the last sequence (at most 3 continuation bytes).
  std::size_t start = n;
  for (int k = 0; k < 4 && start > 0; ++k) {
    --start;
    if ((static_cast<unsigned char>(s[start]) & 0xc0) != 0x80) break;
  }
  if (start == n) return n;
  std::size_t len = utf8_sequence(s.substr(0, n), start);
  if (len != 0) return start + len == n ? n : start;
  // Not a sequence: cut a lead byte whose sequence the cut left short.
  auto lead = static_cast<unsigned char>(s[start]);
  std::size_t want = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc2 ? 2 : 1;
  return lead <= 0xf4 && start + want > n ? start : n;
}

std::string log_safe(std::string_view s, std::size_t max) {
  std::string out;
  std::size_t i = 0;
  while (i < s.size() && out.size() < max) {
    auto c = static_cast<unsigned char>(s[i]);
    std::size_t n = utf8_sequence(s, i);
    if (c == '\\') {
      out += "\\\\";
    } else if (n == 0 || c < 0x20 || c == 0x7f) {
      char b[8];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
      n = 1;
    } else {
      out.append(s.substr(i, n));
    }
    i += n;
  }
  if (i < s.size()) out += "...(" + std::to_string(s.size() - i) + " more bytes)";
  return out;
}

}  // namespace kairos

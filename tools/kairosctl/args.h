#pragma once
// Small helpers shared by the kairosctl verbs' argument parsing and output.
#include <cstdint>
#include <cstdio>
#include <string>

#include "common/core/frame.h"

namespace kairos::ctl {

// A whole decimal number in lo..hi (at most 9 digits) into out.
inline bool parse_whole(const std::string& s, unsigned long lo, unsigned long hi, std::uint32_t& out) {
  if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos) return false;
  unsigned long v = std::stoul(s);
  if (v < lo || v > hi) return false;
  out = static_cast<std::uint32_t>(v);
  return true;
}

// Prints "kairosctl: msg" on stderr; returns code (the exit status).
inline int fail(const std::string& msg, int code = 1) {
  std::fprintf(stderr, "kairosctl: %s\n", msg.c_str());
  return code;
}

// Bytes as text when printable (line breaks and tabs allowed if asked), else "hex:...".
inline std::string printable_or_hex(const std::uint8_t* p, std::size_t n, bool line_breaks) {
  for (std::size_t i = 0; i < n; ++i) {
    const bool allowed = line_breaks && (p[i] == '\n' || p[i] == '\t');
    if ((p[i] < 0x20 && !allowed) || p[i] == 0x7f) return "hex:" + to_hex(ByteView(p, n));
  }
  return std::string(reinterpret_cast<const char*>(p), n);
}

}  // namespace kairos::ctl

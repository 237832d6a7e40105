#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "common/core/ratelimit.h"

namespace kairos::log {

enum class Level { debug, info, warn, error };

void set_level(Level level);
Level level();
// One line to stderr: "<wall time> <level> [<tag>] <text>".
void write(Level level, std::string_view tag, std::string_view text);

inline void debug(std::string_view tag, std::string_view text) { write(Level::debug, tag, text); }
inline void info(std::string_view tag, std::string_view text) { write(Level::info, tag, text); }
inline void warn(std::string_view tag, std::string_view text) { write(Level::warn, tag, text); }
inline void error(std::string_view tag, std::string_view text) { write(Level::error, tag, text); }

// The lines a frame from the wire causes (docs/DESIGN.md 4): at most burst at
// once and per_s a second, the next line that passes saying how many were
// held back. Strings from the wire in them go through log_safe (utf8.h).
class Gate {
 public:
  Gate(double per_s, double burst) : limit_(per_s, burst) {}
  void write(Level level, std::string_view tag, std::string_view text, std::int64_t now_mono_us) {
    if (!limit_.allow(now_mono_us)) return;
    auto held = limit_.take_suppressed();
    if (!held) return log::write(level, tag, text);
    log::write(level, tag, std::string(text) + " (" + std::to_string(held) + " lines like it held back)");
  }

 private:
  RateLimiter limit_;
};

// Parses "debug", "info", "warn" or "error".
bool parse_level(std::string_view text, Level& out);

}  // namespace kairos::log

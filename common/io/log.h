#pragma once
#include <string>
#include <string_view>

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

// Parses "debug", "info", "warn" or "error".
bool parse_level(std::string_view text, Level& out);

}  // namespace kairos::log

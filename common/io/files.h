#pragma once
#include <string>
#include <vector>

#include "common/core/crypto.h"

namespace kairos {

// Reads a config file; a missing or unreadable one is a ConfigError at 0:0.
std::string read_config_file(const std::string& path);
// Reads a file whole; "" when it is missing or unreadable (state that may
// not exist yet: a passwd, an ACL, a card's dpkg status).
std::string read_file_or_empty(const std::string& path);

// Reads a 256-bit key file (64 hex digits). Refuses a file that others may
// access or the group may change (0600 and 0640 pass), with a message
// saying how to fix it.
// Throws std::runtime_error.
Key load_key_file(const std::string& path);

// Writes text to path through a temporary file and rename (no torn files).
void write_file_atomic(const std::string& path, const std::string& text, unsigned mode);

// The boards in dir (boards/<name>.toml): the names of its *.toml files,
// sorted (empty when dir cannot be read).
std::vector<std::string> board_names(const std::string& dir);

}  // namespace kairos

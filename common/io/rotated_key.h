#pragma once
// Rotated key files on disk (docs/PROTOCOL.md, Key rotation): a node's
// <state>/<id>.key, the gateway's <rotated_keys_dir>/nodes/<id>.key{,.next,.old}.
#include <optional>
#include <string>

#include "common/core/keywrap.h"

namespace kairos {

// The rotated key at path; nullopt when there is no file. Throws
// std::runtime_error (naming the path and how to fix it) for a file that
// others may read or the group may change, or one that does not read.
std::optional<RotatedKey> load_rotated_key(const std::string& path);

// Writes k to path durably, so that a key confirmed to anyone survives a
// power cut: a temporary file of mode 0600, fsync, rename over path, fsync
// of the directory. Missing directories are made (mode 0700). Throws
// std::runtime_error naming what failed.
void save_rotated_key(const std::string& path, const RotatedKey& k);

// Removes path, durably; nothing when it is absent. Throws std::runtime_error.
void remove_rotated_key(const std::string& path);

}  // namespace kairos

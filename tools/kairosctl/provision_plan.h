#pragma once
// What one provisioning run will write, and what it tells the user to do
// afterwards; the run writes it all in one transaction, or nothing.
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace kairos::ctl {

// path -> (content, mode).
using Files = std::map<std::filesystem::path, std::pair<std::string, unsigned>>;

struct Plan {
  Files files;
  std::vector<std::string> notes;  // what the user must do afterwards
  bool passwd_changed = false;
  bool acl_changed = false;
};

}  // namespace kairos::ctl

#include "common/io/session_file.h"

#include <sstream>
#include <stdexcept>

#include "common/io/files.h"
#include "common/io/log.h"

namespace kairos {

SessionFile::SessionFile(std::string path) : path_(std::move(path)) {
  if (path_.empty()) return;
  std::istringstream in(read_file_or_empty(path_));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string what, name;
    std::uint64_t value = 0;
    if (!(words >> what)) continue;
    if (what == "session" && words >> value) session_ = value;
    else if (what == "peer" && words >> name >> value) peers_[name] = value;
  }
}

std::uint64_t SessionFile::next_session(std::uint64_t now_us) {
  session_ = next_session_id(session_, now_us);
  save();
  return session_;
}

std::uint64_t SessionFile::peer(const std::string& name) const {
  auto it = peers_.find(name);
  return it == peers_.end() ? 0 : it->second;
}

void SessionFile::set_peer(const std::string& name, std::uint64_t session) {
  auto& p = peers_[name];
  if (session <= p) return;
  p = session;
  save();
}

void SessionFile::save() {
  if (path_.empty()) return;
  std::string text = "session " + std::to_string(session_) + "\n";
  for (const auto& [name, s] : peers_) text += "peer " + name + " " + std::to_string(s) + "\n";
  try {
    write_file_atomic(path_, text, 0600);
  } catch (const std::exception& e) {
    if (!warned_)
      log::warn("session", std::string(e.what()) +
                               ": sessions are not persisted, so after a restart with the clock set back its "
                               "frames would be refused as stale (node.state_file)");
    warned_ = true;
  }
}

}  // namespace kairos

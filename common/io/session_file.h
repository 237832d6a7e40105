#pragma once
// A daemon's persisted sessions (docs/DESIGN.md 4): its own boot counter,
// which only ever rises, and the newest session of each peer it obeyed
// (a node: the gateway's), so that frames of older sessions are refused
// after a restart too.
#include <cstdint>
#include <map>
#include <string>

namespace kairos {

// The session after prev: above it, and at least now_us, so that a daemon
// whose record was lost still moves forward with the wall clock.
inline std::uint64_t next_session_id(std::uint64_t prev, std::uint64_t now_us) {
  return now_us > prev ? now_us : prev + 1;
}

class SessionFile {
 public:
  // path empty: nothing is persisted, sessions follow the wall clock alone.
  // An unreadable or unwritable file is said once in the log, not fatal.
  explicit SessionFile(std::string path);

  // The next session of this daemon, persisted before it is returned.
  std::uint64_t next_session(std::uint64_t now_us);
  // The newest session of peer seen (0: none).
  std::uint64_t peer(const std::string& name) const;
  // Records a newer session of peer (persisted); older ones are ignored.
  void set_peer(const std::string& name, std::uint64_t session);
  const std::map<std::string, std::uint64_t>& peers() const { return peers_; }
  const std::string& path() const { return path_; }

 private:
  void save();
  std::string path_;
  std::uint64_t session_ = 0;
  std::map<std::string, std::uint64_t> peers_;
  bool warned_ = false;
};

}  // namespace kairos

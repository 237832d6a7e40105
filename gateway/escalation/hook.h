#pragma once
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace kairos::gw {

// Runs the operator's alert hook (docs/DESIGN.md 5.6): argv as configured, no shell,
// the alert in environment variables, never waited for in the gateway's
// loop. A hook still running after its timeout is killed; at most a few run
// at once, the rest are dropped and counted.
class Hook {
 public:
  Hook(std::vector<std::string> argv, std::int64_t timeout_us, std::size_t max_running = 4);
  ~Hook();
  Hook(const Hook&) = delete;
  Hook& operator=(const Hook&) = delete;

  // Starts the hook with these extra environment variables; false when it
  // is not configured, too many run, or it could not start.
  bool run(const std::map<std::string, std::string>& env, std::int64_t now_us);
  // Reaps finished hooks and kills overdue ones.
  void service(std::int64_t now_us);
  bool configured() const { return !argv_.empty(); }
  std::uint64_t dropped() const { return dropped_; }
  std::uint64_t failed() const { return failed_; }

 private:
  std::vector<std::string> argv_;
  std::int64_t timeout_us_;
  std::size_t max_running_;
  std::map<pid_t, std::int64_t> running_;  // pid -> started (monotonic us)
  std::uint64_t dropped_ = 0;
  std::uint64_t failed_ = 0;
};

}  // namespace kairos::gw

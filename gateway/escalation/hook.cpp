#include "gateway/escalation/hook.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>

#include "common/io/log.h"

extern char** environ;

namespace kairos::gw {

Hook::Hook(std::vector<std::string> argv, std::int64_t timeout_us, std::size_t max_running)
    : argv_(std::move(argv)), timeout_us_(timeout_us), max_running_(max_running) {}

Hook::~Hook() {
  for (const auto& [pid, started] : running_) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
}

bool Hook::run(const std::map<std::string, std::string>& env, std::int64_t now_us) {
  if (argv_.empty()) return false;
  service(now_us);
  if (running_.size() >= max_running_) {
    ++dropped_;
    return false;
  }
  // Everything the child needs is built before fork: after it, only
  // async-signal-safe calls.
  std::vector<std::string> vars;
  for (char** e = environ; *e; ++e) vars.emplace_back(*e);
  for (const auto& [k, v] : env) vars.push_back(k + "=" + v);
  std::vector<char*> envp, args;
  for (auto& v : vars) envp.push_back(v.data());
  envp.push_back(nullptr);
  for (auto& a : argv_) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    ++failed_;
    return false;
  }
  if (pid == 0) {
    int null = ::open("/dev/null", O_RDWR);
    if (null >= 0) ::dup2(null, 0);
    ::setpgid(0, 0);
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  running_[pid] = now_us;
  return true;
}

void Hook::service(std::int64_t now_us) {
  for (auto it = running_.begin(); it != running_.end();) {
    int status = 0;
    pid_t r = ::waitpid(it->first, &status, WNOHANG);
    if (r == it->first) {
      if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        ++failed_;
        log::warn("alerts", "hook " + argv_[0] + " failed (" +
                                (WIFEXITED(status) ? "exit " + std::to_string(WEXITSTATUS(status))
                                                   : "signal " + std::to_string(WTERMSIG(status))) +
                                ")");
      }
      it = running_.erase(it);
      continue;
    }
    if (now_us - it->second > timeout_us_) {
      ::kill(-it->first, SIGKILL);
      ::kill(it->first, SIGKILL);
      log::warn("alerts", "hook " + argv_[0] + " killed after its timeout");
    }
    ++it;
  }
}

}  // namespace kairos::gw

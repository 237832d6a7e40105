// kairos-mcp: the Model Context Protocol server of docs/MCP.md on stdio.
// Usage: kairos-mcp [--allow-write] [--kairosctl PATH] [kairosctl's global options ...]
// Every other option (--broker, --mesh, --key, --operator, --config, ...) is
// given to kairosctl as it is, for every tool call.
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "tools/mcp/mcp.h"

namespace {

// kairosctl beside this binary (the build tree, /usr/bin), else on PATH.
std::string default_kairosctl(const char* argv0) {
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    auto sibling = self.parent_path() / "kairosctl";
    if (std::filesystem::exists(sibling)) return sibling.string();
  }
  (void)argv0;
  return "kairosctl";
}

// Both outputs read as they come (no pipe fills while the other waits); at most 4 MB each.
kairos::mcp::Run run(const std::vector<std::string>& argv) {
  kairos::mcp::Run r;
  int out[2] = {-1, -1}, err[2] = {-1, -1};
  auto fail = [&](const char* why) {
    for (int fd : {out[0], out[1], err[0], err[1]})
      if (fd >= 0) ::close(fd);
    r.status = 1;
    r.err = std::string("kairos-mcp: ") + why;
    return r;
  };
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) return fail("cannot make a pipe");
  const pid_t pid = ::fork();
  if (pid < 0) return fail("cannot start kairosctl (fork failed)");
  if (pid == 0) {
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);  // never the MCP channel
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "kairos-mcp: cannot run %s\n", args[0]);
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  std::string* into[2] = {&r.out, &r.err};
  int open = 2;
  char buf[8192];
  while (open > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open;
      } else if (into[i]->size() < (4u << 20)) {
        into[i]->append(buf, static_cast<std::size_t>(n));
      }
    }
  }
  for (auto& f : fds)
    if (f.fd >= 0) ::close(f.fd);  // a poll that failed: the child gets EPIPE, not a full pipe
  int status = 0;
  pid_t got;
  while ((got = ::waitpid(pid, &status, 0)) < 0 && errno == EINTR) {
  }
  if (got != pid) {
    r.status = 1;
    r.err += "kairos-mcp: lost track of kairosctl";
    return r;
  }
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  while (!r.out.empty() && (r.out.back() == '\n' || r.out.back() == '\r')) r.out.pop_back();
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  bool allow_write = false;
  std::string kairosctl = default_kairosctl(argv[0]);
  std::vector<std::string> global;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--allow-write") {
      allow_write = true;
    } else if (a == "--kairosctl" && i + 1 < argc) {
      kairosctl = argv[++i];
    } else if (a == "--help" || a == "-h") {
      std::fprintf(stderr,
                   "usage: kairos-mcp [--allow-write] [--kairosctl PATH] [kairosctl options: --broker URI --mesh M "
                   "--key FILE --operator NAME --config FILE ...]\n"
                   "A Model Context Protocol server on stdio (docs/MCP.md). Without --allow-write only the read tools "
                   "run.\n");
      return 0;
    } else {
      global.push_back(a);
    }
  }
  kairos::mcp::Server server(
      [&](const std::vector<std::string>& words) {
        std::vector<std::string> cmd{kairosctl};
        cmd.insert(cmd.end(), global.begin(), global.end());
        cmd.push_back("--json");
        cmd.insert(cmd.end(), words.begin(), words.end());
        return run(cmd);
      },
      allow_write);
  std::fprintf(stderr, "kairos-mcp: ready on stdio (%s)\n", allow_write ? "read and write" : "read only");
  std::string line;
  while (std::getline(std::cin, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    if (auto reply = server.handle(line)) {
      std::cout << *reply << '\n';
      std::cout.flush();
    }
  }
  return 0;
}

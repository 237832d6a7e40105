#include "firmware/jobs.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <utility>

namespace kairos::node {

namespace {

constexpr std::size_t kErrorTail = 200;  // bytes of stderr kept for JobResult.error (257 chars)
constexpr int kReadsPerPoll = 16;        // 64 KiB per pipe per loop turn: a chatty handler cannot hold the loop

// The payload is written before the handler starts; a write of at most
// PIPE_BUF bytes into an empty pipe never blocks.
static_assert(sizeof(kairos_v1_Job_payload_t::bytes) <= PIPE_BUF);

class Fd {
 public:
  Fd() = default;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }
  explicit operator bool() const { return fd_ >= 0; }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

bool make_pipe(Fd& read_end, Fd& write_end) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return false;
  read_end.reset(p[0]);
  write_end.reset(p[1]);
  return true;
}

// Reads what fd holds now into sink (bounded per call); closes fd at end of file or on an error.
template <class Sink>
void read_available(Fd& fd, Sink&& sink) {
  char buf[4096];
  for (int i = 0; i < kReadsPerPoll && fd; ++i) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n > 0) {
      sink(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 || errno != EAGAIN) fd.reset();
    return;
  }
}

// SIGKILL to the handler's process group; to the handler alone if the group is gone.
void kill_job(pid_t pid) {
  if (::kill(-pid, SIGKILL) != 0) ::kill(pid, SIGKILL);
}

std::uint32_t elapsed_ms(std::int64_t from_us, std::int64_t to_us) {
  return static_cast<std::uint32_t>(std::max<std::int64_t>(0, to_us - from_us) / 1000);
}

}  // namespace

std::string printable(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : c == '\n' || c == '\t' ? ' ' : '?');
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

JobOutcome job_outcome(const kairos_v1_Job& job, kairos_v1_JobStatus status, std::string error) {
  JobOutcome o;
  o.job_id = job.job_id;
  o.attempt = job.attempt;
  o.status = status;
  o.error = std::move(error);
  return o;
}

EnvelopePtr result_envelope(const JobOutcome& o) {
  auto env = make_envelope("", 0, 0, 0);
  env->which_message = kairos_v1_Envelope_result_tag;
  auto& r = env->message.result;
  r.job_id = o.job_id;
  r.attempt = o.attempt;
  r.status = o.status;
  std::size_t n = std::min(o.output.size(), sizeof r.output.bytes);
  std::memcpy(r.output.bytes, o.output.data(), n);
  r.output.size = static_cast<pb_size_t>(n);
  r.truncated = o.truncated || n < o.output.size();
  set_string(r.error, printable(o.error));  // a string on the wire: ASCII, whatever the handler wrote
  r.exit_code = o.exit_code;
  r.duration_ms = o.duration_ms;
  return env;
}

std::optional<ActuateRequest> parse_actuate(std::string_view payload, std::string& error) {
  std::vector<std::string_view> words;
  for (std::size_t i = 0; i < payload.size();) {
    auto start = payload.find_first_not_of(" \t\r\n", i);
    if (start == std::string_view::npos) break;
    auto end = std::min(payload.find_first_of(" \t\r\n", start), payload.size());
    words.push_back(payload.substr(start, end - start));
    i = end;
  }
  error = "expected \"<output> <re> <im> <c> [hold_ms]\"";
  if (words.size() < 4 || words.size() > 5) return std::nullopt;
  ActuateRequest r;
  r.output = std::string(words[0]);
  double* values[] = {&r.re, &r.im, &r.c};
  for (std::size_t i = 0; i < 3; ++i) {
    auto w = words[i + 1];
    auto [end, ec] = std::from_chars(w.data(), w.data() + w.size(), *values[i]);
    if (ec != std::errc() || end != w.data() + w.size() || !std::isfinite(*values[i])) {
      // Formatted: GCC 12 on ARM warns falsely on string concatenation here.
      char what[96];
      std::snprintf(what, sizeof what, "'%.60s' is not a number", printable(w).c_str());
      error = what;
      return std::nullopt;
    }
  }
  if (r.c < 0 || r.c > 1) {
    error = "coherence must be in [0, 1]";
    return std::nullopt;
  }
  if (words.size() == 5) {
    auto w = words[4];
    auto [end, ec] = std::from_chars(w.data(), w.data() + w.size(), r.hold_ms);
    if (ec != std::errc() || end != w.data() + w.size()) {
      error = "hold_ms '" + printable(w) + "' is not a whole number of milliseconds";
      return std::nullopt;
    }
  }
  error.clear();
  return r;
}

struct JobRunner::Job {
  JobOutcome outcome;
  pid_t pid = -1;  // also the id of its process group
  Fd out, err;
  std::size_t max_output = 0;
  std::string err_tail;
  std::int64_t started_us = 0;
  std::int64_t deadline_us = 0;
  std::uint32_t timeout_ms = 0;
  bool killed = false;  // for running out of time

  void collect() {
    read_available(out, [&](const char* data, std::size_t n) {
      std::size_t keep = std::min(n, max_output - outcome.output.size());
      outcome.output.append(data, keep);
      outcome.truncated = outcome.truncated || keep < n;
    });
    read_available(err, [&](const char* data, std::size_t n) {
      err_tail.append(data, n);
      if (err_tail.size() > 2 * kErrorTail) err_tail.erase(0, err_tail.size() - kErrorTail);
    });
  }

  // The outcome of a handler that ended with wait status `status` (reaped false: it could not be reaped).
  JobOutcome finish(int status, bool reaped, std::int64_t now_us) {
    outcome.duration_ms = elapsed_ms(started_us, now_us);
    if (killed) {
      outcome.status = kairos_v1_JobStatus_JOB_TIMEOUT;
      outcome.exit_code = -SIGKILL;
      outcome.error = "stopped after " + std::to_string(timeout_ms) + " ms";
    } else if (!reaped) {
      outcome.status = kairos_v1_JobStatus_JOB_ERROR;
      outcome.error = "the handler's exit status was lost";
    } else if (WIFEXITED(status)) {
      outcome.exit_code = WEXITSTATUS(status);
      outcome.status = outcome.exit_code == 0 ? kairos_v1_JobStatus_JOB_OK : kairos_v1_JobStatus_JOB_ERROR;
      if (outcome.exit_code != 0) outcome.error = "exit status " + std::to_string(outcome.exit_code);
    } else {
      outcome.status = kairos_v1_JobStatus_JOB_ERROR;
      outcome.exit_code = -WTERMSIG(status);
      outcome.error = "killed by signal " + std::to_string(WTERMSIG(status));
    }
    auto tail = printable(err_tail.size() > kErrorTail ? std::string_view(err_tail).substr(err_tail.size() - kErrorTail)
                                                       : std::string_view(err_tail));
    if (outcome.status != kairos_v1_JobStatus_JOB_OK && !tail.empty()) outcome.error += ": " + tail;
    return std::move(outcome);
  }
};

JobRunner::JobRunner(std::size_t max_running) : max_running_(max_running) {}

JobRunner::~JobRunner() { stop(0); }

std::optional<JobOutcome> JobRunner::start(const JobConfig& handler, const kairos_v1_Job& job, std::int64_t now_us) {
  if (jobs_.size() >= max_running_)
    return job_outcome(job, kairos_v1_JobStatus_JOB_REFUSED, "busy: " + std::to_string(jobs_.size()) + " jobs running");
  if (handler.command.empty()) return job_outcome(job, kairos_v1_JobStatus_JOB_REFUSED, "handler has no command");
  auto cannot = [&](int err) {
    return job_outcome(job, kairos_v1_JobStatus_JOB_REFUSED, "cannot run " + handler.command[0] + ": " + std::strerror(err));
  };
  // posix_spawn reports a failed exec itself, but not where vfork is a fork
  // (qemu-user, which runs the ARM tests): ask first for a clear refusal.
  if (::access(handler.command[0].c_str(), X_OK) != 0) return cannot(errno);
  Fd in_r, in_w, out_r, out_w, err_r, err_w;
  if (!make_pipe(in_r, in_w) || !make_pipe(out_r, out_w) || !make_pipe(err_r, err_w)) return cannot(errno);
  if (job.payload.size > 0 && ::write(in_w.get(), job.payload.bytes, job.payload.size) != static_cast<ssize_t>(job.payload.size))
    return cannot(errno);
  in_w.reset();  // the handler reads the payload, then end of file
  if (::fcntl(out_r.get(), F_SETFL, O_NONBLOCK) != 0 || ::fcntl(err_r.get(), F_SETFL, O_NONBLOCK) != 0) return cannot(errno);

  std::vector<char*> argv;
  for (const auto& a : handler.command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  // A fixed environment: the handler sees the same one however the node was started.
  std::string env_id = "KAIROS_JOB_ID=" + std::to_string(job.job_id);
  std::string env_attempt = "KAIROS_JOB_ATTEMPT=" + std::to_string(job.attempt);
  std::string env_handler = "KAIROS_JOB_HANDLER=" + handler.name;
  char env_path[] = "PATH=/usr/local/bin:/usr/bin:/bin";
  char* envp[] = {env_path, env_id.data(), env_attempt.data(), env_handler.data(), nullptr};

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_r.get(), 0);
  posix_spawn_file_actions_adddup2(&actions, out_w.get(), 1);
  posix_spawn_file_actions_adddup2(&actions, err_w.get(), 2);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);  // no socket or file of the node leaks into a handler
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Its own process group, so that a timeout kills what it started too;
  // default signal dispositions and an empty mask (the node ignores SIGPIPE).
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, handler.command[0].c_str(), &actions, &attr, argv.data(), envp);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return cannot(rc);
  // Where vfork is a fork (qemu-user) posix_spawn may return before the child
  // made its group: make it here too, so that a kill right away reaches it.
  ::setpgid(pid, pid);

  auto j = std::make_unique<Job>();
  j->outcome = job_outcome(job, kairos_v1_JobStatus_JOB_OK);
  j->pid = pid;
  j->out.reset(out_r.release());
  j->err.reset(err_r.release());
  j->max_output = handler.max_output;
  j->outcome.output.reserve(handler.max_output);
  j->started_us = now_us;
  j->timeout_ms = job.timeout_ms != 0 ? std::min(job.timeout_ms, handler.timeout_ms) : handler.timeout_ms;
  j->deadline_us = now_us + static_cast<std::int64_t>(j->timeout_ms) * 1000;
  jobs_.push_back(std::move(j));
  return std::nullopt;
}

std::vector<JobOutcome> JobRunner::poll(std::int64_t now_us) {
  std::vector<JobOutcome> done;
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    Job& j = **it;
    j.collect();
    // WNOWAIT: the handler stays a zombie, so its pid (its group's id)
    // cannot be reused until the group is killed and it is reaped.
    siginfo_t si{};
    int r = ::waitid(P_PID, static_cast<id_t>(j.pid), &si, WEXITED | WNOHANG | WNOWAIT);
    const bool exited = r == 0 && si.si_pid == j.pid;
    if (exited || (r != 0 && errno == ECHILD)) {
      if (exited) kill_job(j.pid);  // whatever the handler left running in its group
      j.collect();
      int status = 0;
      bool reaped = ::waitpid(j.pid, &status, 0) == j.pid;
      done.push_back(j.finish(status, reaped, now_us));
      it = jobs_.erase(it);
      continue;
    }
    if (!j.killed && now_us >= j.deadline_us) {
      kill_job(j.pid);  // reaped by a later poll, reported as a timeout
      j.killed = true;
    }
    ++it;
  }
  return done;
}

std::vector<JobOutcome> JobRunner::stop(std::int64_t now_us) {
  std::vector<JobOutcome> done;
  for (auto& j : jobs_) {
    kill_job(j->pid);
    int status = 0;
    while (::waitpid(j->pid, &status, 0) < 0 && errno == EINTR) {
    }
    auto o = std::move(j->outcome);
    o.status = kairos_v1_JobStatus_JOB_REFUSED;
    o.error = "node stopping";
    o.output.clear();
    o.truncated = false;
    o.duration_ms = elapsed_ms(j->started_us, now_us);
    done.push_back(std::move(o));
  }
  jobs_.clear();
  return done;
}

}  // namespace kairos::node

// The node's job runner (docs/DESIGN.md 5.5): real child processes, /bin/sh scripts
// in a scratch directory as handlers.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <fstream>
#include <thread>

#include "common/io/clock.h"
#include "firmware/jobs.h"
#include "tests/unit/scratch.h"

using namespace kairos;
using namespace kairos::node;
using kairos::test::ScratchDir;

namespace {

kairos_v1_Job job(std::uint64_t id, const std::string& payload = "", std::uint32_t timeout_ms = 0) {
  kairos_v1_Job j = kairos_v1_Job_init_zero;
  j.job_id = id;
  j.attempt = 1;
  j.payload.size = static_cast<pb_size_t>(payload.size());
  std::copy(payload.begin(), payload.end(), j.payload.bytes);
  j.timeout_ms = timeout_ms;
  return j;
}

// Whether pid is a live process (a zombie counts as gone: it no longer runs).
bool alive(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), {});
  auto paren = text.rfind(')');
  return paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] != 'Z';
}

// Whether pid is gone within 5 s: a process killed a moment ago is torn
// down asynchronously (under qemu-user that can take a while).
bool gone_soon(pid_t pid) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (alive(pid)) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

// Whether this test process still has a child of any kind (running or zombie).
bool has_children() { return !(::waitpid(-1, nullptr, WNOHANG) == -1 && errno == ECHILD); }

class NodeJobs : public ::testing::Test {
 protected:
  // A handler running a /bin/sh script (the script's shebang, not a shell invocation of ours).
  JobConfig script(const std::string& name, const std::string& body, std::uint32_t timeout_ms = 10'000,
                   std::size_t max_output = 4096) {
    auto path = scratch_.write(name, "#!/bin/sh\n" + body + "\n");
    ::chmod(path.c_str(), 0755);
    return {name, {path}, timeout_ms, max_output};
  }
  // Polls, as the node's loop does, until no job runs or 10 s passed: the outcomes.
  std::vector<JobOutcome> finish(JobRunner& runner) {
    std::vector<JobOutcome> all;
    for (auto until = mono_us() + 10'000'000; runner.running() > 0 && mono_us() < until;) {
      for (auto& o : runner.poll(mono_us())) all.push_back(std::move(o));
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return all;
  }
  // The outcome of the one job running.
  std::optional<JobOutcome> wait(JobRunner& runner) {
    auto all = finish(runner);
    return all.size() == 1 ? std::optional<JobOutcome>(all.front()) : std::nullopt;
  }
  std::string read(const std::string& rel) {
    std::ifstream in(scratch_.file(rel));
    std::string s((std::istreambuf_iterator<char>(in)), {});
    return s;
  }
  ScratchDir scratch_{"jobs"};
};

}  // namespace

TEST_F(NodeJobs, RunsAHandlerAndKeepsItsOutput) {
  JobRunner runner;
  auto h = script("hello", "echo hello; echo world");
  ASSERT_FALSE(runner.start(h, job(7), mono_us()));
  EXPECT_EQ(runner.running(), 1u);
  auto o = wait(runner);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->status, kairos_v1_JobStatus_JOB_OK) << o->error;
  EXPECT_EQ(o->job_id, 7u);
  EXPECT_EQ(o->attempt, 1u);
  EXPECT_EQ(o->output, "hello\nworld\n");
  EXPECT_EQ(o->exit_code, 0);
  EXPECT_FALSE(o->truncated);
  EXPECT_TRUE(o->error.empty());
  EXPECT_EQ(runner.running(), 0u);
}

TEST_F(NodeJobs, ThePayloadIsTheHandlersStdin) {
  JobRunner runner;
  auto h = script("upper", "tr a-z A-Z");
  ASSERT_FALSE(runner.start(h, job(1, "abc\nxyz"), mono_us()));
  auto o = wait(runner);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->status, kairos_v1_JobStatus_JOB_OK) << o->error;
  EXPECT_EQ(o->output, "ABC\nXYZ");
  // An empty payload is an empty stdin, not a handler waiting forever.
  ASSERT_FALSE(runner.start(script("count", "wc -c"), job(2), mono_us()));
  o = wait(runner);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->output.substr(o->output.find_first_not_of(' ')), "0\n");
}

TEST_F(NodeJobs, ANonZeroExitIsAnErrorWithItsStatusAndStderr) {
  JobRunner runner;
  ASSERT_FALSE(runner.start(script("fail", "echo partial; echo 'disk \001full' >&2; exit 3"), job(1), mono_us()));
  auto o = wait(runner);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->status, kairos_v1_JobStatus_JOB_ERROR);
  EXPECT_EQ(o->exit_code, 3);
  EXPECT_EQ(o->error, "exit status 3: disk ?full");
  EXPECT_EQ(o->output, "partial\n");
  // A handler ended by a signal: minus the signal.
  ASSERT_FALSE(runner.start(script("crash", "kill -TERM $$"), job(2), mono_us()));
  o = wait(runner);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->status, kairos_v1_JobStatus_JOB_ERROR);
  EXPECT_EQ(o->exit_code, -SIGTERM);
}

TEST_F(NodeJobs, ATimeoutKillsTheHandlerAndWhatItStarted) {
  JobRunner runner;
  // The handler's own limit.
  auto h = script("slow", "echo started; sleep 30 & echo $! > " + scratch_.file("child.pid") + "; echo $$ > " +
                              scratch_.file("self.pid") + "; wait", 300);
  const auto t0 = mono_us();
  ASSERT_FALSE(runner.start(h, job(1), t0));
  auto o = wait(runner);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->status, kairos_v1_JobStatus_JOB_TIMEOUT);
  EXPECT_EQ(o->exit_code, -SIGKILL);
  EXPECT_EQ(o->output, "started\n") << "what it wrote before it was stopped";
  EXPECT_NE(o->error.find("stopped after 300 ms"), std::string::npos) << o->error;
  EXPECT_GE(o->duration_ms, 300u);
  EXPECT_LT(mono_us() - t0, 5'000'000);
  const pid_t self = std::stoi(read("self.pid")), child = std::stoi(read("child.pid"));
  EXPECT_TRUE(gone_soon(self));
  EXPECT_TRUE(gone_soon(child)) << "the sleep it started runs on";
  // The job's own timeout when it is the smaller one.
  ASSERT_FALSE(runner.start(script("slower", "sleep 30", 600'000), job(2, "", 100), mono_us()));
  o = wait(runner);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->status, kairos_v1_JobStatus_JOB_TIMEOUT);
  EXPECT_NE(o->error.find("stopped after 100 ms"), std::string::npos) << o->error;
}

TEST_F(NodeJobs, OutputBeyondTheLimitIsReadAndDropped) {
  JobRunner runner;
  // 200 kB: more than a pipe holds, so the handler would block if the rest were not read.
  auto h = script("chatty", "head -c 200000 /dev/zero | tr '\\000' x; echo done >&2", 10'000, 1000);
  ASSERT_FALSE(runner.start(h, job(1), mono_us()));
  auto o = wait(runner);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->status, kairos_v1_JobStatus_JOB_OK) << o->error;
  EXPECT_TRUE(o->truncated);
  EXPECT_EQ(o->output, std::string(1000, 'x'));
  // Exactly the limit is not truncated.
  ASSERT_FALSE(runner.start(script("exact", "printf abcd", 10'000, 4), job(2), mono_us()));
  o = wait(runner);
  ASSERT_TRUE(o);
  EXPECT_EQ(o->output, "abcd");
  EXPECT_FALSE(o->truncated);
}

TEST_F(NodeJobs, MoreThanTheLimitAtOnceIsRefusedBusy) {
  JobRunner runner(2);
  auto h = script("sleepy", "sleep 30");
  ASSERT_FALSE(runner.start(h, job(1), mono_us()));
  ASSERT_FALSE(runner.start(h, job(2), mono_us()));
  auto refused = runner.start(h, job(3), mono_us());
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, kairos_v1_JobStatus_JOB_REFUSED);
  EXPECT_EQ(refused->job_id, 3u);
  EXPECT_NE(refused->error.find("busy"), std::string::npos);
  EXPECT_EQ(runner.running(), 2u);
  // The node stops: both are killed and reaped at once, each with an outcome.
  const auto t0 = mono_us();
  auto stopped = runner.stop(mono_us());
  EXPECT_LT(mono_us() - t0, 5'000'000) << "stop() waited for the handlers instead of killing them";
  ASSERT_EQ(stopped.size(), 2u);
  for (const auto& o : stopped) {
    EXPECT_EQ(o.status, kairos_v1_JobStatus_JOB_REFUSED);
    EXPECT_EQ(o.error, "node stopping");
  }
  EXPECT_EQ(runner.running(), 0u);
  EXPECT_FALSE(has_children());
}

TEST_F(NodeJobs, EveryChildIsReaped) {
  {
    JobRunner runner(4);
    auto quick = script("quick", "echo $$");
    for (int round = 0; round < 3; ++round) {
      for (std::uint64_t i = 0; i < 4; ++i) ASSERT_FALSE(runner.start(quick, job(i), mono_us()));
      auto done = finish(runner);
      ASSERT_EQ(done.size(), 4u);
      for (const auto& o : done) EXPECT_EQ(o.status, kairos_v1_JobStatus_JOB_OK) << o.error;
    }
    EXPECT_FALSE(has_children()) << "a zombie is left";
    // A runner destroyed with jobs still running kills and reaps them.
    ASSERT_FALSE(runner.start(script("forever", "sleep 30"), job(9), mono_us()));
  }
  EXPECT_FALSE(has_children());
}

TEST_F(NodeJobs, AHandlerThatCannotRunIsRefused) {
  JobRunner runner;
  auto o = runner.start({"ghost", {"/nonexistent/handler"}, 1000, 4096}, job(1), mono_us());
  ASSERT_TRUE(o);
  EXPECT_EQ(o->status, kairos_v1_JobStatus_JOB_REFUSED);
  EXPECT_EQ(o->error, "cannot run /nonexistent/handler: No such file or directory");
  auto plain = scratch_.write("plain", "#!/bin/sh\necho hi\n");
  ::chmod(plain.c_str(), 0644);
  o = runner.start({"plain", {plain}, 1000, 4096}, job(2), mono_us());
  ASSERT_TRUE(o);
  EXPECT_EQ(o->status, kairos_v1_JobStatus_JOB_REFUSED);
  EXPECT_NE(o->error.find("Permission denied"), std::string::npos) << o->error;
  EXPECT_EQ(runner.running(), 0u);
  EXPECT_FALSE(has_children());
}

TEST_F(NodeJobs, AHandlerGetsItsArgvAFixedEnvironmentAndNothingElseOfTheNode) {
  // A descriptor of "the node" without close-on-exec, and SIGPIPE ignored as the node does.
  int fd = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::dup2(fd, 200), 200);
  auto old = std::signal(SIGPIPE, SIG_IGN);
  JobRunner runner;
  auto h = script("env", "echo \"$1|$2|$KAIROS_JOB_ID|$KAIROS_JOB_ATTEMPT|$KAIROS_JOB_HANDLER|$PATH|$HOME\"\n"
                         "[ -e /proc/$$/fd/200 ] && echo leaked || echo closed\n"
                         "grep SigIgn /proc/$$/status");
  h.command.push_back("two words");
  h.command.push_back("$HOME;*");
  ASSERT_FALSE(runner.start(h, job(42), mono_us()));
  auto o = wait(runner);
  std::signal(SIGPIPE, old);
  ::close(200);
  ::close(fd);
  ASSERT_TRUE(o);
  const std::string expect = "two words|$HOME;*|42|1|env|/usr/local/bin:/usr/bin:/bin|\nclosed\nSigIgn:\t";
  ASSERT_EQ(o->output.substr(0, expect.size()), expect) << o->output;
  const auto ignored = std::stoull(o->output.substr(expect.size()), nullptr, 16);
  EXPECT_EQ(ignored & (1ULL << (SIGPIPE - 1)), 0u) << "SIGPIPE is ignored in the handler";
}

TEST(NodeJobsFormats, ResultsAreBoundedAndPrintable) {
  JobOutcome o;
  o.job_id = 5;
  o.attempt = 2;
  o.status = kairos_v1_JobStatus_JOB_ERROR;
  o.output = std::string(5000, 'y');
  o.error = "bad \xff\xfe byte\n";
  o.exit_code = -9;
  auto env = result_envelope(o);
  ASSERT_EQ(env->which_message, kairos_v1_Envelope_result_tag);
  const auto& r = env->message.result;
  EXPECT_EQ(r.job_id, 5u);
  EXPECT_EQ(r.attempt, 2u);
  EXPECT_EQ(r.output.size, 4096u);
  EXPECT_TRUE(r.truncated);
  EXPECT_STREQ(r.error, "bad ?? byte");
  EXPECT_EQ(r.exit_code, -9);
  // It round-trips through the wire format.
  env->seq = 1;
  env->session_id = 1;
  std::string err;
  auto back = decode_envelope(encode_envelope(*env), err);
  ASSERT_TRUE(back) << err;
  EXPECT_EQ(back->message.result.output.size, 4096u);
}

TEST(NodeJobsFormats, ActuatePayloads) {
  struct Case {
    const char* payload;
    bool ok;
    const char* output;
    double re, im, c;
    std::uint32_t hold_ms;
  };
  const Case cases[] = {
      {"led 0.25 0.5 0.75", true, "led", 0.25, 0.5, 0.75, 0},
      {"  motor 1 0 1 250\n", true, "motor", 1, 0, 1, 250},
      {"led 0.25 0.5", false, "", 0, 0, 0, 0},
      {"led 0.25 0.5 0.75 10 extra", false, "", 0, 0, 0, 0},
      {"led x 0.5 0.75", false, "", 0, 0, 0, 0},
      {"led nan 0.5 0.75", false, "", 0, 0, 0, 0},
      {"led 0.1 0.5 1.5", false, "", 0, 0, 0, 0},
      {"led 0.1 0.5 0.5 -3", false, "", 0, 0, 0, 0},
      {"led 0.1 0.5 0.5 99999999999", false, "", 0, 0, 0, 0},
      {"", false, "", 0, 0, 0, 0},
  };
  for (const auto& c : cases) {
    std::string err;
    auto r = parse_actuate(c.payload, err);
    ASSERT_EQ(r.has_value(), c.ok) << c.payload << ": " << err;
    if (!r) {
      EXPECT_FALSE(err.empty()) << c.payload;
      continue;
    }
    EXPECT_EQ(r->output, c.output);
    EXPECT_DOUBLE_EQ(r->re, c.re);
    EXPECT_DOUBLE_EQ(r->im, c.im);
    EXPECT_DOUBLE_EQ(r->c, c.c);
    EXPECT_EQ(r->hold_ms, c.hold_ms);
  }
}

// Jobs on a real kairos-node (docs/DESIGN.md 5.5): signed Commands through a real
// Mosquitto, JobResults read back from the node's result topic.
#include <gtest/gtest.h>

#include <signal.h>

#include <cstdlib>

#include "common/core/frame.h"
#include "common/core/topic.h"
#include "common/io/clock.h"
#include "tests/integration/harness.h"

using namespace kairos;
using namespace kairos::test;
using namespace std::chrono_literals;

namespace {

// A node n1 in cluster c1 with a constant input (0.25), a text output and
// `extra` appended to its config; and a client that sends it jobs.
struct JobBench {
  TempDir dir;
  Broker broker{dir};
  Mesh mesh{dir, broker};
  std::string out_file = dir.file("out.txt");
  Key key;
  std::unique_ptr<Process> node;
  std::unique_ptr<Client> client;
  Signer signer{"operator-test", static_cast<std::uint64_t>(wall_us())};
  std::uint64_t next_id = 100;

  std::string topic(TopicKind kind) const { return node_topic(mesh.name(), "c1", "n1", kind); }

  void start(const std::string& extra, const std::string& node_extra = "") {
    dir.write("n1.toml", mesh.node_config("n1", "c1", "waveform = \"constant\"\noffset = 0.25\n", node_extra) + "\n[outputs.log]\n" +
                             "kind = \"text\"\nsource = \"local:main\"\nfile = \"" + out_file + "\"\ninterval_s = 0.05\n" + extra);
    key = mesh.node_key("n1");
    client = std::make_unique<Client>(broker.uri());
    for (auto kind : {TopicKind::ack, TopicKind::result, TopicKind::birth, TopicKind::hb}) client->subscribe(topic(kind));
    node = std::make_unique<Process>(std::vector<std::string>{bin("kairos-node"), "--config", dir.file("n1.toml")},
                                     dir.file("n1.log"));
    // It takes commands once a ping is answered.
    ASSERT_TRUE(eventually([&] {
      auto id = send([](auto& k) { k.which_action = kairos_v1_Command_ping_tag; });
      return client->wait_for([&](const auto&) { return ack(id).has_value(); }, 500ms);
    })) << log();
  }
  std::string log() const { return read_text(dir.file("n1.log")); }

  std::uint64_t send(const std::function<void(kairos_v1_Command&)>& fill) {
    auto env = make_envelope("", 0, 0, 0);
    env->which_message = kairos_v1_Envelope_command_tag;
    env->message.command.command_id = ++next_id;
    env->message.command.to_session = mesh.node_session("n1");
    fill(env->message.command);
    client->publish(topic(TopicKind::cmd), signer.seal(topic(TopicKind::cmd), *env, key, wall_us()));
    return next_id;
  }
  // Sends job `job_id` for handler with payload; returns the command id.
  std::uint64_t send_job(std::uint64_t job_id, const std::string& handler, const std::string& payload) {
    return send([&](kairos_v1_Command& k) {
      k.which_action = kairos_v1_Command_job_tag;
      auto& j = k.action.job;
      j.job_id = job_id;
      j.attempt = 1;
      set_string(j.handler, handler);
      j.payload.size = static_cast<pb_size_t>(payload.size());
      std::copy(payload.begin(), payload.end(), j.payload.bytes);
    });
  }
  std::optional<kairos_v1_Ack> ack(std::uint64_t command_id) const {
    for (const auto& env : client->frames(topic(TopicKind::ack), key, kairos_v1_Envelope_ack_tag))
      if (env->message.ack.command_id == command_id) return env->message.ack;
    return std::nullopt;
  }
  // The results for job_id that verify with the node's key.
  std::vector<kairos_v1_JobResult> results(std::uint64_t job_id) const {
    std::vector<kairos_v1_JobResult> out;
    for (const auto& env : client->frames(topic(TopicKind::result), key, kairos_v1_Envelope_result_tag))
      if (env->message.result.job_id == job_id) out.push_back(env->message.result);
    return out;
  }
  // The ack of a command and the one result of its job, waited for with a bound.
  std::pair<std::optional<kairos_v1_Ack>, std::optional<kairos_v1_JobResult>> outcome(std::uint64_t command_id,
                                                                                         std::uint64_t job_id) {
    client->wait_for([&](const auto&) { return ack(command_id) && !results(job_id).empty(); }, 15s);
    auto r = results(job_id);
    EXPECT_LE(r.size(), 1u) << "one result per job";
    return {ack(command_id), r.empty() ? std::nullopt : std::optional(r.front())};
  }
};

std::string output_of(const kairos_v1_JobResult& r) {
  return std::string(reinterpret_cast<const char*>(r.output.bytes), r.output.size);
}

}  // namespace

TEST(JobsOnNode, AnAllowedHandlerRunsAndItsSignedResultFollowsTheAck) {
  JobBench b;
  ASSERT_NO_FATAL_FAILURE(b.start("\n[jobs.hash]\ncommand = [\"/usr/bin/sha256sum\"]\ntimeout_ms = 5000\n"));

  // The birth advertises every handler, the built-ins included.
  ASSERT_TRUE(b.client->wait_for(
      [&](const auto&) { return !b.client->frames(b.topic(TopicKind::birth), b.key, kairos_v1_Envelope_birth_tag).empty(); }));
  // Held: frames() returns fresh copies, and the reference below must outlive the call.
  const auto birth_env = b.client->frames(b.topic(TopicKind::birth), b.key, kairos_v1_Envelope_birth_tag).back();
  const auto& birth = birth_env->message.birth;
  std::vector<std::string> caps(birth.capabilities, birth.capabilities + birth.capabilities_count);
  for (const char* cap : {"job:hash", "job:read", "job:actuate"})
    EXPECT_NE(std::find(caps.begin(), caps.end(), cap), caps.end()) << cap;

  // The payload goes to sha256sum's stdin; its stdout is the result.
  auto cmd = b.send_job(1, "hash", "hello");
  auto [ack, result] = b.outcome(cmd, 1);
  ASSERT_TRUE(ack) << b.log();
  EXPECT_EQ(ack->state, 1) << ack->detail;
  ASSERT_TRUE(result) << b.log();
  EXPECT_EQ(result->status, kairos_v1_JobStatus_JOB_OK) << result->error;
  EXPECT_EQ(result->attempt, 1u);
  EXPECT_EQ(output_of(*result), to_hex(sha256(as_bytes("hello"))) + "  -\n");
  EXPECT_EQ(result->exit_code, 0);
  EXPECT_FALSE(result->truncated);

  // A handler outside the allow-list: CONFLICT, and a REFUSED result.
  cmd = b.send_job(2, "rm-rf", "/");
  std::tie(ack, result) = b.outcome(cmd, 2);
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->state, -1);
  EXPECT_STREQ(ack->detail, "no handler 'rm-rf'");
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, kairos_v1_JobStatus_JOB_REFUSED);
  EXPECT_STREQ(result->error, "no handler 'rm-rf'");
  EXPECT_TRUE(b.node->running());
}

TEST(JobsOnNode, BuiltinsReadAnInputAndDriveAnOutputAndAFrozenNodeRefuses) {
  JobBench b;
  ASSERT_NO_FATAL_FAILURE(b.start(""));

  // read: the input's latest sample, as a number.
  auto cmd = b.send_job(1, "read", "main");
  auto [ack, result] = b.outcome(cmd, 1);
  ASSERT_TRUE(ack && result) << b.log();
  EXPECT_EQ(ack->state, 1);
  EXPECT_EQ(result->status, kairos_v1_JobStatus_JOB_OK) << result->error;
  const auto text = output_of(*result);
  char* end = nullptr;
  EXPECT_DOUBLE_EQ(std::strtod(text.c_str(), &end), 0.25) << text;
  EXPECT_EQ(end, text.c_str() + text.size()) << text;

  std::tie(ack, result) = b.outcome(b.send_job(2, "read", "nothing"), 2);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, kairos_v1_JobStatus_JOB_ERROR);
  EXPECT_STREQ(result->error, "no input 'nothing'");

  // actuate: drives the output as set_output does.
  std::tie(ack, result) = b.outcome(b.send_job(3, "actuate", "log 0.125 0.5 0.75 60000"), 3);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, kairos_v1_JobStatus_JOB_OK) << result->error;
  EXPECT_TRUE(eventually([&] { return read_text(b.out_file).find("log re=0.1250 im=0.5000 c=0.7500") != std::string::npos; }));
  std::tie(ack, result) = b.outcome(b.send_job(4, "actuate", "siren 1 1 1"), 4);
  ASSERT_TRUE(result);
  EXPECT_EQ(result->status, kairos_v1_JobStatus_JOB_ERROR);
  EXPECT_STREQ(result->error, "no output 'siren' on this node");

  // Frozen: every job is refused, with the reason in ack and result.
  auto freeze = b.send([](auto& k) {
    k.which_action = kairos_v1_Command_freeze_tag;
    k.action.freeze = true;
  });
  ASSERT_TRUE(b.client->wait_for([&](const auto&) { return b.ack(freeze).has_value(); }));
  std::tie(ack, result) = b.outcome(b.send_job(5, "read", "main"), 5);
  ASSERT_TRUE(ack && result);
  EXPECT_EQ(ack->state, -1);
  EXPECT_EQ(result->status, kairos_v1_JobStatus_JOB_REFUSED);
  EXPECT_NE(std::string(result->error).find("frozen"), std::string::npos) << result->error;
}

TEST(JobsOnNode, ARunningJobShowsAsProcessingAndStopsWithTheNode) {
  JobBench b;
  const auto pid_file = b.dir.file("nap.pid");
  b.dir.write("nap.sh", "#!/bin/sh\necho $$ > " + pid_file + ".tmp && mv " + pid_file + ".tmp " + pid_file + "\nexec sleep 30\n", 0755);
  ASSERT_NO_FATAL_FAILURE(b.start("\n[jobs.nap]\ncommand = [\"" + b.dir.file("nap.sh") + "\"]\n", "heartbeat_period_s = 0.2\n"));
  auto cmd = b.send_job(1, "nap", "");
  ASSERT_TRUE(b.client->wait_for([&](const auto&) { return b.ack(cmd).has_value(); })) << b.log();
  EXPECT_EQ(b.ack(cmd)->state, 1);
  EXPECT_STREQ(b.ack(cmd)->detail, "started");
  ASSERT_TRUE(eventually([&] { return !read_text(pid_file).empty(); })) << b.log();
  const pid_t pid = std::stoi(read_text(pid_file));

  // While it runs the node says PROCESSING.
  auto processing = [&] {
    for (const auto& env : b.client->frames(b.topic(TopicKind::hb), b.key, kairos_v1_Envelope_heartbeat_tag))
      if (env->message.heartbeat.status == kairos_v1_NodeStatus_PROCESSING) return true;
    return false;
  };
  EXPECT_TRUE(b.client->wait_for([&](const auto&) { return processing(); })) << b.log();

  // The node stops: the handler is killed and reaped, and the job answered.
  b.node->signal(SIGTERM);
  ASSERT_EQ(b.node->wait(10s).value_or(-1), 0) << b.log();
  EXPECT_NE(::kill(pid, 0), 0) << "the handler outlived the node";
  ASSERT_TRUE(b.client->wait_for([&](const auto&) { return !b.results(1).empty(); })) << b.log();
  auto r = b.results(1).front();
  EXPECT_EQ(r.status, kairos_v1_JobStatus_JOB_REFUSED);
  EXPECT_STREQ(r.error, "node stopping");
}

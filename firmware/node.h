#pragma once
#include <memory>
#include <string>
#include <vector>

#include "common/core/frame.h"
#include "common/core/kairos.h"
#include "common/core/ratelimit.h"
#include "common/core/replay.h"
#include "common/io/log.h"
#include "common/io/mqtt.h"
#include "firmware/backlog.h"
#include "firmware/intake.h"
#include "firmware/jobs.h"
#include "firmware/drivers/input.h"
#include "firmware/drivers/pipe.h"
#include "firmware/node_config.h"
#include "firmware/rekey.h"
#include "firmware/reports.h"
#include "firmware/outputs/output.h"
#include <map>
#include <optional>

namespace kairos::node {

// The kairos-node daemon: samples inputs through the KAIROS loop and reports
// birth, state, heartbeats and phases as signed frames (docs/DESIGN.md 3, 4).
class Node {
 public:
  // config_path and boards_override are re-read by config_reload.
  Node(NodeConfig config, NodeKey key, std::string config_path, std::string boards_override);
  // Runs until SIGTERM / SIGINT; returns the exit status, or kRestartStatus
  // after an accepted config_reload (main then starts the process over).
  int run();
  static constexpr int kRestartStatus = 75;

 private:
  struct InputSlot {
    InputConfig config;
    std::unique_ptr<Input> input;
    KairosFilter filter;
    std::int64_t next_us = 0;
    std::int64_t period_us = 0;
    bool failed = false;
    std::uint64_t failures = 0;
    std::int64_t retry_us = 0;     // current backoff
    std::int64_t retry_at_us = 0;  // next setup attempt while failed
    std::int64_t last_sample_us = -1;
    double last_a = 0.0, last_b = 0.0;  // the latest sample (built-in job `read`)
    PipeInput* lines = nullptr;  // inputs fed by MQTT messages (pipe/llm with a topic)
  };

  struct OutputSlot {
    OutputConfig config;
    std::unique_ptr<Output> output;
    int input = -1;  // index into inputs_, -1 for the mesh
    bool ready = false;
    std::optional<SourceValue> forced;  // set_output, until forced_until_us
    std::int64_t forced_until_us = 0;
  };

  void tick(std::int64_t now_us);
  void drive_outputs(std::int64_t now_us);
  void on_mesh_state(const Inbound& msg);
  void on_gateway_state(const Inbound& msg);
  // Runs the held commands whose time has come; returns the monotonic time of the next one (or max).
  std::int64_t run_held(std::int64_t now_mono_us);
  void perform(const Envelope& env, std::int64_t received_wall_us);
  void ack(const kairos_v1_Command& cmd, int state, const std::string& detail, std::int64_t received_us,
           std::int64_t executed_us);
  // CONFLICT ack; a refused job also gets its JobResult (REFUSED, why).
  void refuse(const kairos_v1_Command& cmd, const std::string& why, std::int64_t received_us);
  // Drives an output to v for hold_ms (0 = 1 s) over its source; false when there is no such output.
  void start_output_at(const kairos_v1_Command& cmd);  // a held set_output, to an output that starts on its own clock
  bool force_output(std::string_view name, const SourceValue& v, std::uint32_t hold_ms);
  void run_job(const kairos_v1_Command& cmd, std::int64_t received_us);
  // Takes the new key of a rekey command, keeps it and switches to it (firmware/rekey.cpp).
  void rekey(const kairos_v1_Command& cmd, std::int64_t received_us);
  JobOutcome read_job(const kairos_v1_Job& job) const;
  JobOutcome actuate_job(const kairos_v1_Job& job);
  void publish_result(const JobOutcome& outcome);
  void cat1(const std::string& why);
  void check_config();
  void sample(InputSlot& slot, std::int64_t now_us);
  void on_connected();
  void on_message(const Inbound& msg);
  void publish_birth();
  void publish_heartbeat(std::int64_t now_us);
  void publish_phase();
  void publish_event(kairos_v1_EventKind kind, const std::string& source, const std::string& detail);
  void publish(TopicKind kind, Envelope& env, int qos, bool retain);
  void drain_backlog();
  Bytes state_frame(bool online, std::uint64_t seq);
  void arm_will();
  std::string topic(TopicKind kind) const;

  const NodeConfig config_;
  NodeKey key_;  // rotates: rekey (docs/PROTOCOL.md, Key rotation)
  const std::string config_path_;
  const std::string boards_override_;
  bool quarantined_ = false;
  bool frozen_ = false;
  bool restart_requested_ = false;
  bool config_changed_ = false;
  std::string config_stamp_;  // mtimes and sizes of config and board file when last checked
  SessionFile sessions_;  // this node's boot counter and the newest gateway session obeyed
  const std::uint64_t session_;
  CommandIntake intake_;  // verifies commands, holds scheduled ones until execute_at (docs/DESIGN.md 5.4)
  JobRunner jobs_;
  // While jobs run the loop wakes this often to collect them.
  static constexpr std::int64_t kJobPollUs = 10'000;
  BirthInfo birth_;  // what every birth announces (capabilities: configured ones, then job:<handler>)
  static constexpr std::int64_t kSpinUs = 1500;  // the last stretch before execute_at is spun, not slept
  Signer signer_;
  std::unique_ptr<MqttLink> link_;
  Backlog backlog_;
  std::uint64_t phase_queued_ = 0;
  // A gateway says it is online (_gw/<id>/state): held frames are sent only
  // then, so that none reaches a broker with nobody subscribed to take it.
  bool gateway_online_ = false;
  bool connected_once_ = false;
  std::int64_t connected_at_us_ = 0;
  // No gateway state after this long on a new connection: send held frames anyway.
  static constexpr std::int64_t kDrainWaitUs = 5'000'000;
  std::vector<InputSlot> inputs_;
  std::vector<InputFilter> phase_inputs_;  // views of inputs_' names and filters
  std::vector<OutputSlot> outputs_;
  std::optional<Key> broadcast_key_;
  SessionGuard mesh_guard_;
  SourceValue mesh_value_;
  std::int64_t mesh_at_us_ = -1;
  DropCounters rx_drops_;
  log::Gate wire_log_{1.0, 5.0};  // every line a frame (or a failing input) causes

  std::int64_t start_us_ = 0;
  std::int64_t next_hb_us_ = 0;
  std::int64_t next_phase_us_ = 0;
  std::uint64_t will_seq_ = 0;
  std::uint64_t samples_ = 0;
  std::uint64_t cat2_ = 0;
  double processing_ms_ema_ = 0.0;
  double busy_us_ = 0.0;      // busy time in the current heartbeat period
  std::int64_t load_window_start_us_ = 0;
  double loop_load_ = 0.0;
};

}  // namespace kairos::node

#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "common/core/board.h"
#include "common/core/broker.h"
#include "common/core/crypto.h"
#include "firmware/drivers/capture.h"
#include "firmware/drivers/gpio_input.h"
#include "firmware/drivers/pipe.h"
#include "firmware/drivers/synthetic.h"
#include "firmware/jobs.h"
#include "firmware/outputs/output.h"
#include "firmware/drivers/sysfs_sensor.h"
#include "kairos.pb.h"

namespace kairos::node {

struct InputConfig {
  std::string name;
  std::string kind;  // synthetic, temperature, pressure, humidity, pipe, llm
  double sample_period_s = 0.01;
  double omega = 0.0;  // rad/s for rhythm detection; 0 = plain repetition (docs/DESIGN.md 3.4)
  double lo = 0.0;
  double hi = 1.0;
  bool mesh = false;
  SyntheticConfig synthetic;
  SysfsConfig sysfs;  // temperature, pressure, humidity
  PipeConfig pipe;    // pipe, llm
  GpioInputConfig gpio;
  std::string device;           // microphone: ALSA device; camera: /dev/videoN
  int rate_hz = 16000;          // microphone
  std::uint32_t width = 160, height = 120;  // camera
  bool grey = false;            // camera: GREY instead of YUYV
};


struct NodeConfig {
  std::string id;
  std::string cluster;
  std::string mesh;
  std::string key_file;
  double heartbeat_period_s = 5.0;
  double phase_period_s = 1.0;
  std::size_t scales = 4;
  std::size_t primary_scale = 0;
  double collapse_threshold = 0.5;  // I_c: a scale collapses when R^2 >= I_c
  std::vector<std::string> capabilities;
  std::string log_level = "info";
  BrokerConfig broker;
  BoardConfig board;
  std::vector<InputConfig> inputs;
  std::vector<OutputConfig> outputs;
  std::vector<JobConfig> jobs;  // the allow-list of command handlers, [jobs.<name>] (docs/DESIGN.md 5.5)
  std::string broadcast_key_file;  // needed when an output follows the mesh
  std::string backlog_file;        // store and forward across restarts; empty = RAM only
  std::string state_file;          // persisted sessions (docs/DESIGN.md 4); empty = $STATE_DIRECTORY/session or none
  std::string rotated_key_file;    // where a rotated key is kept (docs/PROTOCOL.md, Key rotation); empty = beside the state file
  std::string board_file;          // the board file read (watched with the config file)
  std::size_t mesh_input = 0;  // index into inputs
  std::vector<double> taus_s;  // the K scales from the board

  std::string canonical;  // effective config, canonical text (node, then board)
  // SHA-256 of canonical without the node's identity lines (node.id,
  // node.key_file, node.boards_dir, broker.username, broker.password_file):
  // nodes set up alike share it, so a divergent one stands out (docs/DESIGN.md 5.6).
  Digest context_hash{};
};

// Parses and validates a node config and its board file. boards_dir
// overrides node.boards_dir when not empty. Throws ConfigError.
NodeConfig load_node_config(const std::string& path, const std::string& boards_dir);
// The same for a config's text; file names it in error messages.
NodeConfig parse_node_config(const std::string& text, const std::string& file, const std::string& boards_dir);

}  // namespace kairos::node

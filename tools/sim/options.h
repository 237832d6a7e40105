#pragma once
// The command line of kairos-sim (docs/SIM.md): parsed and checked here,
// apart from the simulator, so that every rule is unit-tested.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tools/sim/latency.h"

namespace kairos::sim {

inline constexpr int kMaxNodes = 30'000;
// The MQTT client of the simulator's connections: Paho (as the node's firmware) or the lean one.
enum class SimClient { paho, lean };

// Nodes per MQTT connection when --connections is not given.
inline constexpr int kNodesPerConnection = 250;
// ... with --client lean, whose every connection has a thread of its own.
inline constexpr int kNodesPerLeanConnection = 2500;

// --jump ID:+MS@S: at S seconds after start, node ID's base one-way latency
// changes by delta_ms, both directions.
struct Jump {
  std::string node;
  double delta_ms = 0.0;
  double at_s = 0.0;
};

// --fail: fractions of the nodes (0..1) given each failure.
struct Failures {
  double crash = 0.0;   // stops at --crash-after-s; its offline state goes out as its Will would
  double slow = 0.0;    // kSlowFactor times its class's base latency
  double lying = 0.0;   // reports executed_at 50 ms earlier than it executed
  double badmac = 0.0;  // one byte of the MAC of every frame it sends flipped
  double diverge = 0.0; // its context hash differs from the other nodes' (another config)
  double paradox = 0.0; // stamps its job results 10 s before it ran them (effect before cause)
};

struct SimOptions {
  std::string broker;
  std::string mesh;
  std::string keys_dir;
  int nodes = 100;
  std::string prefix = "sim";
  int clusters = 4;
  std::string cluster_prefix = "c";  // clusters <prefix>1..<prefix>K
  std::vector<std::size_t> classes{0, 1, 2, 3, 4};  // A..E, assigned round-robin
  std::array<double, kClasses> latency_ms = kDefaultLatencyMs;
  DelayModel delay;      // --profile, --jitter and the rest of the network model (docs/SIM.md)
  double clock_step_ms = 0;      // --clock-step-ms: a node's clock steps by up to +-this (an NTP correction)
  double clock_step_every_s = 60;  // ... on average this often
  double offset_max_ms = 2000;
  double drift_ppm = 0;
  std::optional<std::uint64_t> seed;  // none: a random one, printed
  int connections = 0;                // 0: ceil(nodes / kNodesPerConnection)
  SimClient client = SimClient::paho;  // --client: the MQTT client the connections use (sim_link.h)
  double hb_period_s = 5;
  double phase_period_s = 1;  // 0: no phase reports
  double duration_s = 0;      // 0: until SIGTERM / SIGINT
  std::string ledger;
  double job_ms = 10;  // how long a built-in job handler takes
  std::string roster;
  Failures fail;
  double crash_after_s = 10;
  std::vector<Jump> jumps;

  // Node `index` (0-based): "<prefix>-00001" onwards.
  std::string node_id(std::size_t index) const;
  int effective_connections() const;
};

// Parses the arguments after argv[0]. On an error returns false with a
// message naming the option and what it takes. "--help" sets help.
bool parse_options(const std::vector<std::string>& args, SimOptions& out, bool& help, std::string& error);

// The --help text.
std::string usage_text();

}  // namespace kairos::sim

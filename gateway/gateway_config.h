#pragma once
#include <array>
#include <map>
#include <string>
#include <vector>

#include "common/core/broker.h"

namespace kairos::gw {

struct GatewayConfig {
  std::string path;      // the file it was read from
  std::string id;
  std::string mesh;
  std::string keys_dir;  // nodes/<id>.key, broadcast.key, operator.key
  std::string database;  // SQLite file
  std::string rotated_keys_dir;  // rotated node keys (docs/PROTOCOL.md, Key rotation); default beside database
  std::string log_level = "info";
  BrokerConfig broker;
  // The connection node frames arrive on (docs/DESIGN.md 4, "The ingest
  // connection"): "lean", Kairos's own subscriber (plain tcp:// and mqtt://
  // URIs; TLS always goes through Paho), or "paho".
  std::string ingest_client = "lean";
  // liveness (docs/DESIGN.md 5.1)
  double heartbeat_period_s = 5.0;  // used when a birth gives none
  int missed_heartbeats = 3;
  double rebirth_after_s = 10.0;    // ask unclear nodes to re-announce after this long
  // mesh sync (docs/DESIGN.md 5.3)
  double sync_period_s = 0.1;
  double unified_enter = 0.75;
  double unified_leave = 0.70;
  double stale_after_s = 15.0;      // 3 heartbeat periods
  double mesh_publish_s = 1.0;      // _mesh/state at least this often
  std::array<double, 6> class_weight{1, 1, 1, 1, 1, 1};  // A..F
  // clock sync (docs/DESIGN.md 5.1)
  double ping_period_s = 10.0;       // per node
  double fast_ping_period_s = 2.0;   // while unstable or with few samples
  double ping_timeout_s = 5.0;       // no ack by then: a missed command (reliability)
  std::size_t max_pings_in_flight = 256;  // Paho keeps unacknowledged publishes in lists it walks: keep them few
  double ping_share = 0.08;          // pings a second per node frame a second accepted (the rate budget)
  double min_ping_rate = 1000;       // pings a second the budget never goes below
  // scheduling (docs/DESIGN.md 5.4): commands per second the path to the nodes takes
  // (gateway, broker, links); a burst is spread back from T at this rate.
  double send_rate = 4'000;
  double lead_quantile = 0.999;     // the share of a node's one-way delays its lead covers
  // jobs (docs/DESIGN.md 5.5)
  double job_backoff_s = 0.2;       // before the first retry; doubles with each
  double job_backoff_max_s = 5.0;
  double job_grace_s = 1.0;         // transit allowed on top of a job's timeout
  int job_per_node = 4;             // copies in flight on one node
  std::uint32_t job_timeout_ms = 10'000;  // when a delegate names none
  int job_retries = 3;
  std::size_t jobs_in_memory = 10'000;    // finished jobs kept in memory (all stay in the database)
  // circuit breakers (docs/DESIGN.md 5.6)
  double breaker_window_s = 60;
  int cluster_failures = 5;         // more than this within the window: OPEN
  int sector_failures = 50;
  int global_sectors = 10;          // more sectors open than this: global OPEN
  double breaker_open_s = 30;       // wait before the first probe; doubles after a failed one
  double breaker_healthy_s = 60;    // HALF_OPEN this long without failure: CLOSED
  std::map<std::string, std::vector<std::string>> sectors;  // sector -> clusters
  // alerts (docs/DESIGN.md 5.6): a command run for conflicts of priority >= 4
  std::vector<std::string> alert_hook;
  double alert_hook_timeout_s = 10;
  // Ball (docs/BALL.md): a node holder whose job failed is asked again this
  // long after, doubling with each failure in a row up to the maximum.
  double ball_retry_s = 30;
  double ball_retry_max_s = 600;
  // control RPC
  double ctl_max_age_s = 60.0;      // refuse requests older or newer than this
  // hierarchy (docs/DESIGN.md 5.9)
  enum class Role { standalone, sector, root };
  Role role = Role::standalone;
  std::string sector;                    // role sector: the sector it runs
  std::vector<std::string> root_sectors; // role root: the sectors it reads
  double summary_period_s = 5.0;         // a sector's summaries at least this often
  std::string metrics_listen;            // [metrics] listen: HOST:PORT of the Prometheus endpoint; empty = off
  struct Web {
    std::string listen;                  // HOST:PORT of the live page (docs/WEB.md); empty = off
    std::string static_dir;              // its index.html, app.js and style.css
    std::size_t max_clients = 16;        // WebSocket clients at once (each holds a server thread)
    std::vector<std::string> hosts;      // names the page answers to besides IP addresses and localhost
  } web;
  int stale_periods = 3;                 // no summary for this many periods: the sector is stale
  // [homeassistant] (docs/HOMEASSISTANT.md): discovery configs and JSON state topics, off by default.
  struct HomeAssistant {
    bool enabled = false;
    std::string discovery_prefix = "homeassistant";
    std::string state_prefix;        // default "kairos-ha/<mesh>"
    bool allow_commands = false;     // outputs as number entities whose commands become set_output
    double state_interval_s = 1.0;   // a node's or the mesh's JSON state at most this often
    std::uint32_t hold_ms = 60'000;  // how long a value set from Home Assistant holds on the output
    double max_messages_per_s = 1000;  // what the bridge publishes, configs and states together
  } homeassistant;
  // [sparkplug] (docs/SPARKPLUG.md): the gateway as a Sparkplug B edge node, its nodes as devices; off by default.
  struct Sparkplug {
    bool enabled = false;
    std::string group_id;            // default: the mesh's name
    double data_interval_s = 1.0;    // NDATA/DDATA of changed metrics at most this often
    double max_messages_per_s = 1000;  // births and data together
  } sparkplug;
  // The key a sector and its root sign their traffic with: keys_dir/sectors/<name>.key.
  std::string sector_key_path(const std::string& name) const { return keys_dir + "/sectors/" + name + ".key"; }
};

const char* to_string(GatewayConfig::Role role);

// Parses and validates a gateway config file. Throws ConfigError.
GatewayConfig load_gateway_config(const std::string& path);

}  // namespace kairos::gw

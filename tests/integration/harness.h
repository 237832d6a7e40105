#pragma once
// Integration harness: a real Mosquitto on a free loopback port, real
// kairos-node / kairos-gateway processes, and helpers to wait for events
// with a bound instead of sleeping.
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/core/crypto.h"
#include "common/core/frame.h"
#include "common/io/ctl_client.h"
#include "common/io/mqtt.h"

namespace kairos::test {

// A fresh directory under $TMPDIR, removed at the end unless KAIROS_KEEP_TMP is set.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  void write(const std::string& name, const std::string& text, unsigned mode = 0644) const;

 private:
  std::string path_;
};

std::string read_text(const std::string& path);
int free_port();

// A child process with stdout and stderr captured to a file.
class Process {
 public:
  Process(std::vector<std::string> argv, std::string log_path);
  ~Process();  // SIGKILL and reap if still running
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  void signal(int sig) const;
  // Waits for exit up to timeout; the exit status (or 128+signal), nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  bool running();
  std::string output() const { return read_text(log_); }

 private:
  pid_t pid_ = -1;
  std::string log_;
  std::optional<int> status_;
};

// Runs a command to completion: exit status and combined output.
struct RunResult {
  int status;
  std::string output;
};
RunResult run_command(const std::vector<std::string>& argv, const std::string& dir,
                      std::chrono::milliseconds timeout = std::chrono::seconds(30));

// One HTTP/1.1 request to 127.0.0.1:port (the gateway's [metrics] and
// [web]): its status (0 when nothing answered), head and body. headers
// ("Name: value\r\n" lines) may name their own Host.
struct HttpReply {
  int status = 0;
  std::string head, body;
};
HttpReply http_request(int port, const std::string& method, const std::string& path, const std::string& body = "",
                       const std::string& headers = "");

// Polls pred every 20 ms until it holds or the timeout passes.
bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds timeout = std::chrono::seconds(15));

class Broker {
 public:
  // limited: with the max_packet_size every config of the project sets
  // (docs/DESIGN.md 4); unlimited only to show what a client does without it.
  // extra: more of Mosquitto's config (a bridge).
  explicit Broker(const TempDir& dir, int port = 0, bool limited = true, std::string extra = "");
  ~Broker();
  int port() const { return port_; }
  std::string uri() const { return "tcp://127.0.0.1:" + std::to_string(port_); }
  void kill();
  void start();

 private:
  const TempDir& dir_;
  int port_;
  bool limited_;
  std::string extra_;
  std::unique_ptr<Process> proc_;
};

// The number after "key": in a JSON text (first occurrence), or NaN.
double json_number(const std::string& json, const std::string& key);

// kairos-sim's ledger (--ledger): when each simulated node really ran a scheduled command.
struct LedgerExec {
  std::string node;
  std::int64_t true_exec_us;
};
// The `exec` lines of the ledger from line `from` on.
std::vector<LedgerExec> ledger_execs(const std::string& path, std::size_t from);
std::size_t line_count(const std::string& path);

// The samples of a mono 16-bit WAV file as far as its header counts them
// (the speaker's WAV sink keeps the header right while it writes), and its rate.
std::vector<std::int16_t> read_wav(const std::string& path, std::uint32_t& rate);

std::string bin(const std::string& name);  // path of one of our binaries
Key write_key(const std::string& path);     // a random key, mode 0600

// A mesh under test: keys, configs, a gateway and nodes.
class Mesh {
 public:
  // A mesh name of its own per test, so that tests never hear each other.
  Mesh(const TempDir& dir, const Broker& broker, std::string mesh = "");
  const std::string& name() const { return mesh_; }
  std::string keys_dir() const { return dir_.file("keys"); }
  Key node_key(const std::string& id);  // creates the key on first use
  const Key& broadcast_key() const { return broadcast_; }
  const Key& operator_key() const { return operator_; }

  std::string gateway_config(const std::string& extra = "") const;
  Process& start_gateway(const std::string& extra = "");
  // A node config with one synthetic input; `input` is the body of [inputs.main].
  std::string node_config(const std::string& id, const std::string& cluster, const std::string& input,
                          const std::string& node_extra = "", const std::string& broker_extra = "");
  Process& start_node(const std::string& id, const std::string& cluster, const std::string& input,
                      const std::string& node_extra = "", const std::string& broker_extra = "");
  Process& node(const std::string& id) { return *nodes_.at(id); }
  // The session of the node's latest start, from its state file (0: none yet).
  std::uint64_t node_session(const std::string& id) const;
  // Board files for the nodes started after this (default: the shipped ones).
  void set_boards_dir(std::string dir) { boards_dir_ = std::move(dir); }
  Process& gateway() { return *gateway_; }
  void stop_gateway() { gateway_.reset(); }

  // The gateway's answer to the control RPC, or nullptr.
  std::unique_ptr<kairos_v1_ControlResponse> ctl(kairos_v1_ControlRequest& req);
  std::vector<kairos_v1_NodeInfo> nodes();
  std::optional<kairos_v1_NodeInfo> node_info(const std::string& id);
  std::optional<kairos_v1_StatusReply> status();
  std::uint64_t drops(const std::string& reason);
  // kairos-sim's command line on this mesh's broker, name and keys, then more.
  std::vector<std::string> sim_argv(const std::vector<std::string>& more) const;
  // kairosctl's command line with this mesh's broker, name and operator key, then args.
  std::vector<std::string> kairosctl_argv(const std::vector<std::string>& args) const;
  // kairosctl with this mesh's broker, name and operator key, then args.
  RunResult kairosctl(const std::vector<std::string>& args,
                      std::chrono::milliseconds timeout = std::chrono::seconds(60)) const;

 private:
  const TempDir& dir_;
  const Broker& broker_;
  std::string mesh_;
  Key broadcast_;
  Key operator_;
  std::map<std::string, Key> node_keys_;
  std::string boards_dir_ = std::string(KAIROS_SOURCE_DIR) + "/boards";
  std::unique_ptr<Process> gateway_;
  std::map<std::string, std::unique_ptr<Process>> nodes_;
  std::unique_ptr<CtlClient> ctl_;
};

// The rows of a query on an SQLite file (read-only), each as its columns'
// text. Throws std::runtime_error when the file or the query fails.
std::vector<std::vector<std::string>> query_db(const std::string& path, const std::string& sql);
// Runs SQL statements on an SQLite file read-write (what someone with the
// file could do behind the gateway's back). Throws on failure.
void exec_db(const std::string& path, const std::string& sql);

// A raw MQTT client for the tests: publishes frames, records what arrives.
class Client {
 public:
  explicit Client(const std::string& uri);
  void subscribe(const std::string& filter);
  void publish(const std::string& topic, const Bytes& payload, int qos = 1, bool retain = false,
               const PublishProps& props = {});
  // Pumps events for up to timeout until pred holds over the messages seen.
  bool wait_for(const std::function<bool(const std::vector<Inbound>&)>& pred,
                std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // Until a message on exactly this topic has been seen.
  bool wait_for_topic(const std::string& topic, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // The newest message seen on topic.
  std::optional<Inbound> last_on(const std::string& topic) const;
  const std::vector<Inbound>& seen() const { return seen_; }
  // The frames seen on topic that verify with key and carry message type
  // `which` (an Envelope oneof tag), decoded, in arrival order.
  std::vector<std::shared_ptr<const Envelope>> frames(const std::string& topic, const Key& key, pb_size_t which) const;
  void clear() { seen_.clear(); }

 private:
  void pump(std::int64_t until_us);
  MqttLink link_;
  std::vector<Inbound> seen_;
};

}  // namespace kairos::test

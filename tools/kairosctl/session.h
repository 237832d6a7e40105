#pragma once
// kairosctl's global options, and a console verb's session with the gateway
// made from them and the console config: the broker, the mesh, the
// operator and its key, and the client that carries the requests
// (docs/DESIGN.md 5.8).
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/core/broker.h"
#include "common/core/crypto.h"
#include "common/io/ctl_client.h"
#include "common/io/mqtt.h"
#include "kairos.pb.h"
#include "tools/kairosctl/ball.h"

namespace kairos::ctl {

// Read when present and no --config is given.
inline constexpr const char* kDefaultConfig = "/etc/kairos/kairosctl.toml";

// The global options, wherever they stand, and the verb with its words.
struct Options {
  std::string config;
  bool config_given = false;
  std::string broker;
  std::string mesh;
  std::string key_file;
  std::string operator_name;    // --operator: with --key, instead of ctl.operator and ctl.key_file
  std::string shared_key_file;  // --shared-key: overrides ctl.shared_key_file
  std::string username;       // --username: overrides broker.username
  std::string password_file;  // --password-file: overrides broker.password_file
  int timeout_ms = 3000;  // ms
  bool timeout_given = false;
  bool json = false;
  std::string verb;
  std::vector<std::string> args;
};

// Each step returns 0, or the exit status with the failure printed.
class Session {
 public:
  explicit Session(const Options& o) : o_(o) {}
  const Options& options() const { return o_; }
  int timeout_ms() const { return timeout_ms_; }
  bool json() const { return o_.json; }

  // The console config, the options over it, and the operator's key (exit 2).
  int setup();
  // The client; its connection starts at once (exit 2: the broker settings do not work).
  int open();
  // Waits up to timeout_ms for the client's connection (exit 1).
  int connect();
  // open, then connect.
  int reach();
  // Sends req and waits wait_ms: the answer the gateway took, or nothing
  // with status set (the gateway silent or refusing).
  std::unique_ptr<kairos_v1_ControlResponse> call(kairos_v1_ControlRequest& req, int wait_ms, int& status);
  // open, connect and call, then print's exit status for the answer.
  int answer(kairos_v1_ControlRequest& req, int wait_ms,
             const std::function<int(const kairos_v1_ControlResponse&)>& print);
  // One try, for watch: nothing when no answer came, take_why() then says why.
  std::unique_ptr<kairos_v1_ControlResponse> try_call(kairos_v1_ControlRequest& req, int wait_ms);
  std::string take_why();

  // The shared operator key, which signs Ball heads and deliveries: --shared-key, else --key (exit 2).
  int shared_key(Key& out) const;
  // What a ball verb talks through; after open().
  BallLink ball_link(const Key& shared);

 private:
  // Says that the gateway was silent for waited_ms, and what to check (exit 1).
  int no_answer(int waited_ms);
  // The broker unreachable, or refusing us (then what to give: flags, keys).
  std::string broker_failure(int code) const;

  const Options& o_;
  BrokerConfig broker_;
  BrokerOrigin origin_;
  std::string mesh_, key_file_, operator_name_, shared_key_file_;
  int timeout_ms_ = 3000;  // ms
  Key key_;
  MqttOptions mqtt_;
  std::unique_ptr<CtlClient> client_;
  std::string why_;  // the last failure to connect or to get an answer
};

}  // namespace kairos::ctl

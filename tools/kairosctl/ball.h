#pragma once
// kairosctl ball: the operator's side of the Ball protocol (docs/DESIGN.md 6, docs/BALL.md).
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "common/core/crypto.h"
#include "common/io/ctl_client.h"
#include "common/io/mqtt.h"
#include "kairos.pb.h"

namespace kairos::ctl {

struct BallArgs {
  std::string verb;  // hut, say, ack, done, show, verify, list, listen
  kairos_v1_BallRequest req = kairos_v1_BallRequest_init_zero;
  std::uint32_t count = 0;  // listen: deliveries before it stops (0: until interrupted)
};

// Fills a from the words after `ball`; "" or the error (exit 2). `say`
// without a text (or with "-") reads it from `in`.
std::string parse_ball_args(const std::vector<std::string>& args, BallArgs& a, std::FILE* in);

// What a ball verb talks through. verify and listen subscribe on a
// connection of their own (CtlClient takes only its responses); listen
// sends no request and leaves client unconnected.
struct BallLink {
  CtlClient& client;
  MqttOptions options;  // the broker, for that second connection
  std::string mesh;
  Key key;  // the shared operator key: the gateway signs the heads and the deliveries with it
  int timeout_ms = 3000;
  bool json = false;
  // Connects client: 0, or the exit status with the failure printed. A
  // verb's own connection starts before it: Paho's network thread takes in a
  // new connection only after its 1 s poll of those already open (~2 s late).
  std::function<int()> connect;
  std::function<int(int waited_ms, const std::string& why)> no_answer;  // says the gateway is silent; the exit status
  // Why the broker could not be reached or refused us, by the failed
  // connect's code (0: none failed, the time ran out), and what to check.
  std::function<std::string(int code)> broker_failure;
};

// Runs a parsed ball verb; the exit status: 0 ok, 1 failure or refusal,
// 3 verify found a break.
int run_ball(const BallArgs& a, const BallLink& l);

}  // namespace kairos::ctl

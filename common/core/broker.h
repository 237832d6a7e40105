#pragma once
#include <cstddef>
#include <string>
#include <string_view>

#include "common/core/config.h"

namespace kairos {

// The [broker] table shared by node, gateway and console configs.
struct BrokerConfig {
  std::string uri = "tcp://127.0.0.1:1883";
  std::string username;
  std::string password_file;  // first line is the password
  int keepalive_s = 10;
  double reconnect_max_s = 30.0;
  std::size_t backlog = 1000;  // QoS 1 frames kept while offline
};

BrokerConfig read_broker(Section broker, std::size_t default_backlog);

}  // namespace kairos

namespace kairos {

// Why a connect to the broker failed, by the code Paho reports: an MQTT v5
// CONNACK reason code (128..159, MQTT 5.0 section 3.2.2.2) or one of Paho
// C's own client codes (negative, MQTTAsync.h).
enum class ConnectCause {
  unreachable,  // no MQTT answer: nothing listens, a timeout, an unknown host, TLS failed
  credentials,  // the broker refused the user name or password (134, 135)
  broker,       // the broker refused for a reason of its own (busy, banned, moved, quota)
  client,       // the client sent what the broker or Paho does not take
};

struct ConnectCode {
  int code = 0;
  std::string_view name;    // "not authorized"; "code N" for an unknown one
  ConnectCause cause = ConnectCause::broker;
  std::string_view advice;  // what to do, when it needs no names of keys; may be empty
};

// The name, cause and advice of a connect failure code.
ConnectCode connect_code(int code);

// True when trying again cannot help: the broker refused the credentials, or
// the client's own request (a console gives up at once; a daemon still retries).
bool connect_is_final(int code);

// "connect to URI refused: not authorized (MQTT reason 135)", or for a
// client code "connect to URI failed: ... (Paho code -1)".
std::string connect_failure(std::string_view uri, int code);

// Where a connection's settings came from, so that a hint names them.
struct BrokerOrigin {
  std::string uri;
  std::string username;       // "" when none
  std::string password_file;  // "" when none
  std::string config_file;    // the config file that was read; "" when none
  bool console = false;       // kairosctl: its --username / --password-file / --broker flags too
};

// The origin of a [broker] table read from config_file.
BrokerOrigin origin_of(const BrokerConfig& broker, std::string config_file);

// What to do about a failed connect: the keys (and flags) to check, and for
// refused credentials what the broker's password file and ACL must hold.
std::string connect_hint(int code, const BrokerOrigin& origin);

}  // namespace kairos

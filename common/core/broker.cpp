#include "common/core/broker.h"

namespace kairos {

BrokerConfig read_broker(Section broker, std::size_t default_backlog) {
  BrokerConfig b;
  b.uri = broker.str("uri", b.uri);
  bool scheme_ok = false;
  for (std::string_view s : {"tcp://", "ssl://", "mqtt://", "mqtts://"})
    if (b.uri.rfind(s, 0) == 0) scheme_ok = true;
  if (!scheme_ok) broker.fail("uri", "expected tcp://host:port or ssl://host:port");
  b.username = broker.str("username", "");
  b.password_file = broker.str("password_file", "");
  b.keepalive_s = static_cast<int>(broker.integer("keepalive_s", 10, 2, 600));
  b.reconnect_max_s = broker.num("reconnect_max_s", 30.0, 1.0, 300.0);
  b.backlog = static_cast<std::size_t>(
      broker.integer("backlog", static_cast<std::int64_t>(default_backlog), 10, 10'000'000));
  return b;
}

}  // namespace kairos

namespace kairos {

namespace {

constexpr std::string_view kLater =
    "the broker cannot take the connection now: try again later, and see the broker's log";

// MQTT v5 CONNACK reason codes (MQTT 5.0, 3.2.2.2) and Paho C's client codes (MQTTAsync.h).
constexpr ConnectCode kCodes[] = {
    {128, "unspecified error", ConnectCause::broker, "the broker refused without saying why: see its log"},
    {129, "malformed packet", ConnectCause::client,
     "the broker could not read the CONNECT packet: check that it speaks MQTT v5 (Mosquitto 1.6 or later)"},
    {130, "protocol error", ConnectCause::client,
     "the broker found a protocol error in the CONNECT packet: check that it speaks MQTT v5 (Mosquitto 1.6 or later)"},
    {131, "implementation specific error", ConnectCause::broker,
     "the broker (or one of its plugins) refused: see its log"},
    {132, "unsupported protocol version", ConnectCause::client,
     "the broker does not speak MQTT v5: use Mosquitto 1.6 or later"},
    {133, "client identifier not valid", ConnectCause::client,
     "the broker refused the client id: check its client id rules (Mosquitto's clientid_prefixes)"},
    {134, "bad user name or password", ConnectCause::credentials, ""},
    {135, "not authorized", ConnectCause::credentials, ""},
    {136, "server unavailable", ConnectCause::broker, kLater},
    {137, "server busy", ConnectCause::broker, kLater},
    {138, "banned", ConnectCause::broker, "the broker has banned this client: see its configuration"},
    {140, "bad authentication method", ConnectCause::broker,
     "the broker wants an authentication method other than a user name and password: configure it for password_file"},
    {149, "packet too large", ConnectCause::client,
     "the CONNECT packet (with its Will) is larger than the broker takes: raise its max_packet_size"},
    {151, "quota exceeded", ConnectCause::broker,
     "a quota of the broker is exhausted (e.g. max_connections): raise it or connect fewer clients"},
    {153, "payload format invalid", ConnectCause::client, "the broker refused the Will's payload format"},
    {156, "use another server", ConnectCause::broker, "the broker sends its clients to another server"},
    {157, "server moved", ConnectCause::broker, "the broker has moved to another server"},
    {159, "connection rate exceeded", ConnectCause::broker,
     "too many connects too fast: try again later, and see the broker's connection limits"},
    {-1, "no connection", ConnectCause::unreachable, ""},
    {-2, "persistence error", ConnectCause::client, ""},
    {-3, "disconnected", ConnectCause::unreachable, ""},
    {-4, "too many messages in flight", ConnectCause::client, ""},
    {-5, "bad UTF-8 string", ConnectCause::client, "a user name, client id or Will topic is not valid UTF-8"},
    {-6, "invalid parameter", ConnectCause::client, ""},
    {-7, "topic name truncated", ConnectCause::client, ""},
    {-8, "bad structure", ConnectCause::client, ""},
    {-9, "bad QoS", ConnectCause::client, ""},
    {-10, "no more message ids", ConnectCause::client, ""},
    {-11, "operation incomplete", ConnectCause::unreachable, ""},
    {-12, "too many buffered messages", ConnectCause::client, ""},
    {-13, "TLS not supported", ConnectCause::client,
     "this Paho library was built without TLS: use a tcp:// URI or a Paho build with TLS"},
    {-14, "bad protocol scheme", ConnectCause::client, "the URI must start with tcp://, ssl://, mqtt:// or mqtts://"},
    {-15, "bad MQTT option", ConnectCause::client, ""},
    {-16, "wrong MQTT version", ConnectCause::client, ""},
    {-17, "empty Will topic", ConnectCause::client, ""},
    {-18, "command ignored", ConnectCause::client, ""},
    {-19, "too many buffered messages", ConnectCause::client, ""},
};

std::string quoted(std::string_view s) { return std::string("'").append(s).append("'"); }  // not "'" + s: GCC 12 warns falsely on ARM

// "broker.username and broker.password_file in FILE", with kairosctl's flags first.
std::string credential_keys(const BrokerOrigin& o) {
  std::string keys = "broker.username and broker.password_file";
  if (!o.console) return keys + " in " + (o.config_file.empty() ? "the config" : o.config_file);
  return "--username NAME and --password-file FILE, or " + keys +
         (o.config_file.empty() ? " in a console config (--config FILE; none was read)" : " in " + o.config_file);
}

std::string uri_keys(const BrokerOrigin& o) {
  if (o.console)
    return "--broker, or broker.uri in " + (o.config_file.empty() ? "a console config (none was read)" : o.config_file);
  return "broker.uri in " + (o.config_file.empty() ? "the config" : o.config_file);
}

}  // namespace

ConnectCode connect_code(int code) {
  for (const auto& c : kCodes)
    if (c.code == code) return c;
  ConnectCode unknown{code, "unknown code", code < 0 ? ConnectCause::client : ConnectCause::broker, ""};
  return unknown;
}

bool connect_is_final(int code) {
  const ConnectCause cause = connect_code(code).cause;
  return code != 0 && (cause == ConnectCause::credentials || cause == ConnectCause::client);
}

std::string connect_failure(std::string_view uri, int code) {
  const ConnectCode c = connect_code(code);
  if (code > 0)
    return "connect to " + std::string(uri) + " refused: " + std::string(c.name) + " (MQTT reason " +
           std::to_string(code) + ")";
  const std::string what = code == -1 ? "no MQTT answer: refused, timed out or host unknown" : std::string(c.name);
  return "connect to " + std::string(uri) + " failed: " + what + " (Paho code " + std::to_string(code) + ")";
}

BrokerOrigin origin_of(const BrokerConfig& broker, std::string config_file) {
  return {broker.uri, broker.username, broker.password_file, std::move(config_file), false};
}

std::string connect_hint(int code, const BrokerOrigin& o) {
  const ConnectCode c = connect_code(code);
  switch (c.cause) {
    case ConnectCause::credentials: {
      const std::string keys = credential_keys(o);
      const std::string provision =
          "reinstall kairos-provision/mosquitto/passwd and acl, which kairosctl provision writes, and reload mosquitto";
      if (o.username.empty())
        return "the broker takes no client without a user name and password: set " + keys +
               " (the bundles kairosctl provision writes set both)";
      if (o.password_file.empty())
        return "the broker does not accept user " + quoted(o.username) + " without a password: set " + keys +
               ", and check that the broker's passwd has a " + quoted(o.username + ":") + " line (" + provision + ")";
      return "the broker does not accept user " + quoted(o.username) + " with the password in " + o.password_file +
             ": check " + keys + ", and that the broker's passwd has a " + quoted(o.username + ":") +
             " line and its ACL a " + quoted("user " + o.username) + " block (" + provision + ")";
    }
    case ConnectCause::unreachable:
      if (o.console) return "is the broker running? (check " + uri_keys(o) + ")";
      return "check that the broker runs and listens at " + o.uri + " (" + uri_keys(o) +
             ") and the network in between";
    case ConnectCause::broker:
    case ConnectCause::client:
      break;
  }
  std::string hint(c.advice);
  if (hint.empty())
    hint = code < 0 ? "an error inside the MQTT client library (Paho): report it with this log" : "see the broker's log";
  if (code == 156 || code == 157 || code == -14) hint += ": change " + uri_keys(o);
  if (code == -5) hint += ": check " + credential_keys(o);
  return hint;
}

}  // namespace kairos

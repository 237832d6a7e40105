#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

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
  // MQTT over TLS (ssl:// or mqtts://): the CA the broker's certificate
  // must chain to, and this client's certificate and key (PEM files).
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
};

// Reads the [broker] table. An ssl:// or mqtts:// URI needs ca_file;
// cert_file and key_file go together; a tcp:// or mqtt:// URI takes none
// of them. (The files themselves are checked where they are opened:
// mqtt_options in common/io.)
BrokerConfig read_broker(Section broker, std::size_t default_backlog);

// Whether a broker URI asks for TLS (ssl:// or mqtts://).
bool uri_is_tls(std::string_view uri);
// The host of a broker URI ("ssl://[::1]:8883" -> "::1"); "" when none.
std::string uri_host(std::string_view uri);
// The port of a broker URI ("tcp://[::1]:1883" -> "1883"); "" when it names none.
std::string uri_port(std::string_view uri);
// Whether a host is an IPv4 or IPv6 address rather than a name.
bool host_is_ip(std::string_view host);
// Why the TLS settings of b do not fit its URI, naming the keys; "" when they do.
std::string tls_settings_problem(const BrokerConfig& b);

}  // namespace kairos

namespace kairos {

// Why a connect to the broker failed, by the code Paho reports: an MQTT v5
// CONNACK reason code (128..159, MQTT 5.0 section 3.2.2.2) or one of Paho
// C's own client codes (negative, MQTTAsync.h).
enum class ConnectCause {
  unreachable,  // no MQTT answer: nothing listens, a timeout, an unknown host
  credentials,  // the broker refused the user name or password (134, 135)
  broker,       // the broker refused for a reason of its own (busy, banned, moved, quota)
  client,       // the client sent what the broker or Paho does not take
  tls,          // the TLS handshake failed: a certificate, a key, a CA or the URI to fix
};

// Kairos's own codes for a failed TLS connect. Paho reports every one of
// them as -1 (MQTTASYNC_FAILURE); classify_tls tells them apart from what
// the attempt left behind (docs/DESIGN.md 4).
inline constexpr int kTlsBrokerUnknownCa = -1001;     // the broker's certificate does not chain to ca_file
inline constexpr int kTlsBrokerCertExpired = -1002;   // the broker's certificate expired (or is not valid yet)
inline constexpr int kTlsNameMismatch = -1003;        // the broker's certificate does not name the URI's host
inline constexpr int kTlsClientCertRefused = -1004;   // the broker refused this client's certificate
inline constexpr int kTlsClientCertExpired = -1005;   // this client's certificate expired (or is not valid yet)
inline constexpr int kTlsClientCertRequired = -1006;  // the broker wants a client certificate and got none
inline constexpr int kTlsHandshakeTimeout = -1007;    // the server took the connection and never answered the handshake
inline constexpr int kTlsHandshakeFailed = -1008;     // any other failed handshake (e.g. ssl:// to a plain port)
inline constexpr int kTlsFiles = -1009;               // OpenSSL could not load the CA, certificate or key file

// What a failed TLS connect attempt left behind.
struct TlsEvidence {
  std::vector<std::string> trace;    // Paho's trace lines of the attempt, oldest first
  bool client_cert = false;          // a client certificate was offered
  bool client_cert_invalid_now = false;   // its own validity period excludes now (checked locally)
  bool client_cert_other_ca = false;      // it is not signed by a CA of ca_file (checked locally)
  bool timed_out = false;            // the attempt lasted the whole connect timeout
};

// The TLS code (kTls*) of a failed attempt, or 0 when nothing in it points at TLS.
int classify_tls(const TlsEvidence& evidence);
// The alerts, host check and failed OpenSSL call of an attempt, for a log
// line: "alert sent: unknown CA"; "" when none.
std::string tls_evidence_text(const TlsEvidence& evidence);

struct ConnectCode {
  int code = 0;
  std::string_view name;    // "not authorized"; "code N" for an unknown one
  ConnectCause cause = ConnectCause::broker;
  std::string_view advice;  // what to do, when it needs no names of keys; may be empty
};

// The name, cause and advice of a connect failure code.
ConnectCode connect_code(int code);

// True when trying again cannot help: the broker refused the credentials,
// the client's own request, or a certificate (a console gives up at once;
// a daemon still retries, since certificates and clocks get fixed).
bool connect_is_final(int code);

// "connect to URI refused: not authorized (MQTT reason 135)", for a client
// code "connect to URI failed: ... (Paho code -1)", and for a TLS code
// "connect to URI failed: TLS: the broker's certificate ... (unknown CA; Paho code -1)".
std::string connect_failure(std::string_view uri, int code);

// Where a connection's settings came from, so that a hint names them.
struct BrokerOrigin {
  std::string uri;
  std::string username;       // "" when none
  std::string password_file;  // "" when none
  std::string config_file;    // the config file that was read; "" when none
  bool console = false;       // kairosctl: its --username / --password-file / --broker flags too
  std::string ca_file = {};   // TLS files; "" when none
  std::string cert_file = {};
  std::string key_file = {};
};

// The origin of a [broker] table read from config_file.
BrokerOrigin origin_of(const BrokerConfig& broker, std::string config_file);

// What to do about a failed connect: the keys (and flags) to check, and for
// refused credentials what the broker's password file and ACL must hold.
std::string connect_hint(int code, const BrokerOrigin& origin);

}  // namespace kairos

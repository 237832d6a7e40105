#include "common/core/broker.h"

#include <algorithm>

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
  b.ca_file = broker.str("ca_file", "");
  b.cert_file = broker.str("cert_file", "");
  b.key_file = broker.str("key_file", "");
  const std::string scheme = b.uri.substr(0, b.uri.find("://") + 3);
  if (uri_is_tls(b.uri)) {
    if (b.ca_file.empty())
      broker.fail("ca_file", "missing: an " + scheme +
                                 " broker needs the CA that signed its certificate (a PEM file; kairosctl provision "
                                 "writes tls/ca.crt)");
    if (!b.cert_file.empty() && b.key_file.empty())
      broker.fail("key_file", "missing: broker.cert_file needs its private key (a PEM file)");
    if (b.cert_file.empty() && !b.key_file.empty())
      broker.fail("cert_file", "missing: broker.key_file needs its certificate (a PEM file)");
  } else {
    for (const char* key : {"ca_file", "cert_file", "key_file"})
      if (broker.has(key))
        broker.fail(key, std::string("is for a TLS broker, but broker.uri is ") + scheme +
                             "...: use ssl://HOST:PORT (the broker's TLS listener) or remove broker." + key);
  }
  return b;
}

bool uri_is_tls(std::string_view uri) { return uri.rfind("ssl://", 0) == 0 || uri.rfind("mqtts://", 0) == 0; }

std::string uri_host(std::string_view uri) {
  auto start = uri.find("://");
  if (start == std::string_view::npos) return "";
  std::string_view rest = uri.substr(start + 3);
  rest = rest.substr(0, rest.find('/'));
  if (!rest.empty() && rest.front() == '[') {
    auto close = rest.find(']');
    return close == std::string_view::npos ? "" : std::string(rest.substr(1, close - 1));
  }
  auto colon = rest.rfind(':');
  return std::string(colon == std::string_view::npos ? rest : rest.substr(0, colon));
}

std::string uri_port(std::string_view uri) {
  auto start = uri.find("://");
  if (start == std::string_view::npos) return "";
  std::string_view rest = uri.substr(start + 3);
  rest = rest.substr(0, rest.find('/'));
  if (!rest.empty() && rest.front() == '[') rest.remove_prefix(std::min(rest.size(), rest.find(']') + 1));
  auto colon = rest.rfind(':');
  return colon == std::string_view::npos ? "" : std::string(rest.substr(colon + 1));
}

bool host_is_ip(std::string_view host) {
  if (host.find(':') != std::string_view::npos) return true;  // IPv6
  int dots = 0;
  for (char c : host) {
    if (c == '.') ++dots;
    else if (c < '0' || c > '9') return false;
  }
  return dots == 3;
}

std::string tls_settings_problem(const BrokerConfig& b) {
  if (uri_is_tls(b.uri)) {
    if (b.ca_file.empty())
      return "broker " + b.uri + " is TLS: it needs broker.ca_file, the CA that signed the broker's certificate";
    if (b.cert_file.empty() != b.key_file.empty())
      return "broker.cert_file and broker.key_file go together: give both or neither";
    return "";
  }
  for (const auto* f : {&b.ca_file, &b.cert_file, &b.key_file})
    if (!f->empty())
      return "broker " + b.uri + " is not TLS, but broker." +
             (f == &b.ca_file ? "ca_file" : f == &b.cert_file ? "cert_file" : "key_file") +
             " is set: use an ssl:// URI (the broker's TLS listener) or remove the TLS keys";
  return "";
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
    // Kairos's own, for what Paho reports as -1 during a TLS connect (classify_tls).
    {kTlsBrokerUnknownCa, "unknown CA", ConnectCause::tls, ""},
    {kTlsBrokerCertExpired, "certificate has expired", ConnectCause::tls, ""},
    {kTlsNameMismatch, "hostname mismatch", ConnectCause::tls, ""},
    {kTlsClientCertRefused, "certificate refused", ConnectCause::tls, ""},
    {kTlsClientCertExpired, "certificate has expired", ConnectCause::tls, ""},
    {kTlsClientCertRequired, "certificate required", ConnectCause::tls, ""},
    {kTlsHandshakeTimeout, "handshake timed out", ConnectCause::tls, ""},
    {kTlsHandshakeFailed, "handshake failed", ConnectCause::tls, ""},
    {kTlsFiles, "files unusable", ConnectCause::tls, ""},
};

// What happened, for connect_failure, by TLS code.
std::string tls_what(int code, std::string_view uri) {
  switch (code) {
    case kTlsBrokerUnknownCa: return "the broker's certificate is not signed by a CA of ca_file";
    case kTlsBrokerCertExpired: return "the broker's certificate has expired or is not valid yet";
    case kTlsNameMismatch: return "the broker's certificate is not for " + uri_host(uri);
    case kTlsClientCertRefused: return "the broker refused this client's certificate";
    case kTlsClientCertExpired: return "this client's certificate has expired or is not valid yet";
    case kTlsClientCertRequired: return "the broker requires a client certificate and got none";
    case kTlsHandshakeTimeout: return "the server took the connection but never answered the TLS handshake";
    case kTlsHandshakeFailed: return "the TLS handshake failed";
    case kTlsFiles: return "OpenSSL could not load the CA, certificate or key file";
    default: return "";
  }
}

bool has_part(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

// The words after prefix in the first trace line holding it ("" if none).
std::string after(const std::vector<std::string>& lines, std::string_view prefix) {
  for (const auto& l : lines) {
    auto p = l.find(prefix);
    if (p != std::string::npos) {
      std::string rest = l.substr(p + prefix.size());
      while (!rest.empty() && (rest.back() == '\n' || rest.back() == ' ')) rest.pop_back();
      return rest;
    }
  }
  return "";
}

bool any_has(const std::vector<std::string>& lines, std::string_view part) {
  for (const auto& l : lines)
    if (has_part(l, part)) return true;
  return false;
}

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

// "broker.cert_file (/etc/kairos/tls/node.crt) in /etc/kairos/node.toml".
std::string tls_key(const BrokerOrigin& o, std::string_view key, const std::string& file) {
  std::string k = "broker." + std::string(key) + (file.empty() ? "" : " (" + file + ")");
  if (o.config_file.empty())
    return k + (o.console ? " in a console config (--config FILE; none was read)" : " in the config");
  return k + " in " + o.config_file;
}

// What to do about a TLS failure, naming the settings.
std::string tls_hint(int code, const BrokerOrigin& o) {
  switch (code) {
    case kTlsBrokerUnknownCa:
      return "check " + tls_key(o, "ca_file", o.ca_file) +
             ": it must hold the CA that signed the broker's certificate. With kairosctl provision that is the mesh CA "
             "(tls/ca.crt in every bundle), and the broker must use the certificate and key made for it "
             "(mosquitto/server.crt and server.key; README: \"MQTT over TLS\")";
    case kTlsBrokerCertExpired:
      return "renew the broker's certificate: a kairosctl provision run in its last 30 days renews "
             "mosquitto/server.crt; install it on the broker and restart Mosquitto (README: \"MQTT over TLS\"); "
             "and check this machine's clock";
    case kTlsNameMismatch:
      return "connect by a name or address that the broker's certificate holds (" + uri_keys(o) +
             "), or give the broker a certificate for " + uri_host(o.uri) +
             " (kairosctl provision issues it for the host of --broker)";
    case kTlsClientCertRefused:
      return "the broker does not trust " + tls_key(o, "cert_file", o.cert_file) +
             ": it must be signed by the CA in the broker's cafile (the mesh CA): provision this device again from the "
             "folder whose CA the broker has, and install its tls/ files";
    case kTlsClientCertExpired:
      return "renew " + tls_key(o, "cert_file", o.cert_file) +
             ": run kairosctl provision for this device again (it renews a certificate in its last 30 days) and "
             "install its tls/ files; and check this machine's clock";
    case kTlsClientCertRequired:
      return "the broker's listener requires a client certificate: set broker.cert_file and " +
             tls_key(o, "key_file", "") + " (kairosctl provision writes both, in tls/)";
    case kTlsHandshakeTimeout:
      return "check that " + uri_keys(o) +
             " names the broker's TLS listener, and the network in between (the connect timeout is 5 s)";
    case kTlsHandshakeFailed:
      return "check that " + uri_keys(o) +
             " names a TLS listener (ssl:// to a plain MQTT port fails so), and see the broker's log";
    case kTlsFiles:
      return "check " + tls_key(o, "ca_file", o.ca_file) +
             ", broker.cert_file and broker.key_file: readable PEM files, the key that of the certificate";
    default:
      return "see the broker's log";
  }
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
  if (code == kTlsHandshakeTimeout || code == kTlsHandshakeFailed) return false;  // the server, or the way to it
  return code != 0 &&
         (cause == ConnectCause::credentials || cause == ConnectCause::client || cause == ConnectCause::tls);
}

int classify_tls(const TlsEvidence& e) {
  const auto& t = e.trace;
  // OpenSSL could not load a file into the context (SSLSocket_createContext).
  for (const auto& line : t)
    if (has_part(line, "SSLSocket error") && has_part(line, " in SSL_CTX_")) return kTlsFiles;
  // We refused the broker: OpenSSL names the reason in the alert it sends.
  const std::string written = after(t, "SSL alert write:fatal:");
  if (written == "certificate expired") return kTlsBrokerCertExpired;
  for (std::string_view refusal : {"unknown CA", "bad certificate", "certificate unknown", "unsupported certificate",
                                   "certificate revoked"})
    if (written == refusal) return kTlsBrokerUnknownCa;
  if (!written.empty()) return kTlsHandshakeFailed;
  // Paho checks the host after the handshake: by name, then as an address.
  if (any_has(t, "X509_check_host for hostname")) {
    const std::string ip_rc = after(t, "rc from X509_check_ip_asc is ");
    if (ip_rc.empty() ? !any_has(t, "-> CONNECT") : ip_rc != "1") return kTlsNameMismatch;
  }
  // The broker refused us: by an alert, or (TLS 1.3, where the client's
  // handshake ends before the broker has checked its certificate) by
  // closing the connection after the handshake, its alert often lost.
  const std::string received = after(t, "SSL alert read:fatal:");
  if (!received.empty()) {
    if (e.client_cert && (received == "certificate expired" || e.client_cert_invalid_now)) return kTlsClientCertExpired;
    for (std::string_view refusal : {"unknown", "certificate required", "handshake failure", "unknown CA",
                                     "bad certificate", "certificate unknown", "unsupported certificate",
                                     "certificate revoked", "decrypt error", "access denied"})
      if (received == refusal) {
        if (!e.client_cert) return kTlsClientCertRequired;
        return received == "handshake failure" ? kTlsHandshakeFailed : kTlsClientCertRefused;
      }
    return kTlsHandshakeFailed;
  }
  const bool started = any_has(t, "SSL handshake started");
  const bool done = any_has(t, "SSL handshake done") || any_has(t, "SSL negotiation finished successfully");
  if (e.timed_out) return started && !done ? kTlsHandshakeTimeout : 0;  // done: the broker never answered CONNECT
  if (done) {
    if (!e.client_cert) return kTlsClientCertRequired;
    if (e.client_cert_invalid_now) return kTlsClientCertExpired;
    return kTlsClientCertRefused;
  }
  return started ? kTlsHandshakeFailed : 0;
}

std::string tls_evidence_text(const TlsEvidence& e) {
  std::vector<std::string> parts;
  auto add = [&](std::string p) {
    if (!p.empty() && std::find(parts.begin(), parts.end(), p) == parts.end()) parts.push_back(std::move(p));
  };
  if (auto w = after(e.trace, "SSL alert write:fatal:"); !w.empty()) add("alert sent: " + w);
  if (auto r = after(e.trace, "SSL alert read:fatal:"); !r.empty())
    add("alert received: " + (r == "unknown" ? std::string("certificate required (116)") : r));
  if (auto h = after(e.trace, "X509_check_host for hostname "); !h.empty()) {
    const std::string ip_rc = after(e.trace, "rc from X509_check_ip_asc is ");
    if (ip_rc != "1") add("host check failed for " + h.substr(0, h.find(" failed")));
  }
  for (const auto& line : e.trace)
    if (auto p = line.find("SSLSocket error"); p != std::string::npos) {
      auto in = line.find(" in SSL_CTX_", p);
      auto end = in == std::string::npos ? in : line.find(' ', in + 4);
      if (in != std::string::npos)
        add("OpenSSL failed in " + line.substr(in + 4, end == std::string::npos ? end : end - in - 4));
    }
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "; ") + p;
  return out;
}

std::string connect_failure(std::string_view uri, int code) {
  const ConnectCode c = connect_code(code);
  if (code > 0)
    return "connect to " + std::string(uri) + " refused: " + std::string(c.name) + " (MQTT reason " +
           std::to_string(code) + ")";
  if (c.cause == ConnectCause::tls)
    return "connect to " + std::string(uri) + " failed: TLS: " + tls_what(code, uri) + " (" + std::string(c.name) +
           "; Paho code -1)";
  const std::string what = code == -1 ? "no MQTT answer: refused, timed out or host unknown" : std::string(c.name);
  return "connect to " + std::string(uri) + " failed: " + what + " (Paho code " + std::to_string(code) + ")";
}

BrokerOrigin origin_of(const BrokerConfig& broker, std::string config_file) {
  return {broker.uri,    broker.username,  broker.password_file, std::move(config_file),
          false,         broker.ca_file,   broker.cert_file,     broker.key_file};
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
      if (o.console && uri_is_tls(o.uri))
        return "is the broker running, with a TLS listener there? (check " + uri_keys(o) +
               "; a --timeout above 6000 ms lets a TLS handshake that gets no answer be told apart)";
      if (o.console) return "is the broker running? (check " + uri_keys(o) + ")";
      return "check that the broker runs and listens at " + o.uri + " (" + uri_keys(o) +
             ") and the network in between";
    case ConnectCause::tls:
      return tls_hint(code, o);
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

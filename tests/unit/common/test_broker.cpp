#include <gtest/gtest.h>

#include <set>

#include "common/core/broker.h"

using namespace kairos;

namespace {
bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }
}  // namespace

// Every MQTT v5 CONNACK reason code and Paho C client code by name and cause.
TEST(ConnectCode, NamesEveryConnackReasonAndPahoCode) {
  struct Case {
    int code;
    const char* name;
    ConnectCause cause;
  };
  const Case cases[] = {
      {128, "unspecified error", ConnectCause::broker},
      {129, "malformed packet", ConnectCause::client},
      {130, "protocol error", ConnectCause::client},
      {131, "implementation specific error", ConnectCause::broker},
      {132, "unsupported protocol version", ConnectCause::client},
      {133, "client identifier not valid", ConnectCause::client},
      {134, "bad user name or password", ConnectCause::credentials},
      {135, "not authorized", ConnectCause::credentials},
      {136, "server unavailable", ConnectCause::broker},
      {137, "server busy", ConnectCause::broker},
      {138, "banned", ConnectCause::broker},
      {140, "bad authentication method", ConnectCause::broker},
      {149, "packet too large", ConnectCause::client},
      {151, "quota exceeded", ConnectCause::broker},
      {153, "payload format invalid", ConnectCause::client},
      {156, "use another server", ConnectCause::broker},
      {157, "server moved", ConnectCause::broker},
      {159, "connection rate exceeded", ConnectCause::broker},
      {-1, "no connection", ConnectCause::unreachable},
      {-3, "disconnected", ConnectCause::unreachable},
      {-5, "bad UTF-8 string", ConnectCause::client},
      {-6, "invalid parameter", ConnectCause::client},
      {-13, "TLS not supported", ConnectCause::client},
      {-14, "bad protocol scheme", ConnectCause::client},
      {-16, "wrong MQTT version", ConnectCause::client},
      {139, "unknown code", ConnectCause::broker},
      {-99, "unknown code", ConnectCause::client},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.code);
    const ConnectCode got = connect_code(c.code);
    EXPECT_EQ(got.code, c.code);
    EXPECT_EQ(got.name, c.name);
    EXPECT_EQ(got.cause, c.cause);
  }
  // Every negative code of MQTTAsync.h (-1..-19) has a name of its own.
  for (int code = -1; code >= -19; --code) EXPECT_NE(connect_code(code).name, "unknown code") << code;
}

TEST(ConnectCode, FailureNamesTheUriTheReasonAndItsNumber) {
  EXPECT_EQ(connect_failure("tcp://h:1883", 135), "connect to tcp://h:1883 refused: not authorized (MQTT reason 135)");
  EXPECT_EQ(connect_failure("tcp://h:1883", 134),
            "connect to tcp://h:1883 refused: bad user name or password (MQTT reason 134)");
  EXPECT_EQ(connect_failure("tcp://h:1883", -1),
            "connect to tcp://h:1883 failed: no MQTT answer: refused, timed out or host unknown (Paho code -1)");
  EXPECT_EQ(connect_failure("tcp://h:1883", -6), "connect to tcp://h:1883 failed: invalid parameter (Paho code -6)");
  EXPECT_EQ(connect_failure("tcp://h:1883", 250), "connect to tcp://h:1883 refused: unknown code (MQTT reason 250)");
}

TEST(ConnectCode, OnlyRefusedCredentialsAndClientErrorsAreFinal) {
  EXPECT_TRUE(connect_is_final(135));
  EXPECT_TRUE(connect_is_final(134));
  EXPECT_TRUE(connect_is_final(133));
  EXPECT_FALSE(connect_is_final(-1));   // the broker may come up
  EXPECT_FALSE(connect_is_final(137));  // busy now, maybe not later
  EXPECT_FALSE(connect_is_final(0));
}

TEST(ConnectHint, RefusedCredentialsNameTheKeysThePasswordFileAndTheBrokersFiles) {
  BrokerOrigin node{"tcp://h:1883", "barn-1", "/etc/kairos/broker.password", "/etc/kairos/node.toml", false};
  for (int code : {134, 135}) {
    SCOPED_TRACE(code);
    const std::string h = connect_hint(code, node);
    EXPECT_TRUE(has(h, "does not accept user 'barn-1' with the password in /etc/kairos/broker.password")) << h;
    EXPECT_TRUE(has(h, "check broker.username and broker.password_file in /etc/kairos/node.toml")) << h;
    EXPECT_TRUE(has(h, "passwd has a 'barn-1:' line")) << h;
    EXPECT_TRUE(has(h, "its ACL a 'user barn-1' block")) << h;
    EXPECT_TRUE(has(h, "kairos-provision/mosquitto/passwd")) << h;
    EXPECT_TRUE(has(h, "reload mosquitto")) << h;
    EXPECT_FALSE(has(h, "--username")) << "a daemon has no such flag: " << h;
  }
  BrokerOrigin anonymous{"tcp://h:1883", "", "", "/etc/kairos/gateway.toml", false};
  const std::string h = connect_hint(135, anonymous);
  EXPECT_TRUE(has(h, "no client without a user name and password")) << h;
  EXPECT_TRUE(has(h, "set broker.username and broker.password_file in /etc/kairos/gateway.toml")) << h;
  BrokerOrigin no_password{"tcp://h:1883", "gw1", "", "/etc/kairos/gateway.toml", false};
  EXPECT_TRUE(has(connect_hint(134, no_password), "user 'gw1' without a password")) << connect_hint(134, no_password);
}

TEST(ConnectHint, TheConsoleNamesItsFlagsAndTheConfigItReadOrThatItReadNone) {
  BrokerOrigin none{"tcp://h:1883", "", "", "", true};
  std::string h = connect_hint(135, none);
  EXPECT_TRUE(has(h, "--username NAME and --password-file FILE")) << h;
  EXPECT_TRUE(has(h, "broker.username and broker.password_file in a console config (--config FILE; none was read)"))
      << h;
  BrokerOrigin read{"tcp://h:1883", "alice", "/etc/kairos/broker.password", "/etc/kairos/kairosctl.toml", true};
  h = connect_hint(135, read);
  EXPECT_TRUE(has(h, "--username NAME and --password-file FILE, or broker.username and broker.password_file in "
                     "/etc/kairos/kairosctl.toml"))
      << h;
  EXPECT_TRUE(has(h, "'alice:' line")) << h;
  // Unreachable: the console's message stays what it was.
  EXPECT_TRUE(has(connect_hint(-1, none), "is the broker running? (check --broker")) << connect_hint(-1, none);
}

TEST(ConnectHint, EveryOtherCodeSaysWhatToDo) {
  BrokerOrigin node{"tcp://h:1883", "n1", "/p", "/etc/kairos/node.toml", false};
  EXPECT_TRUE(has(connect_hint(-1, node), "listens at tcp://h:1883 (broker.uri in /etc/kairos/node.toml)"))
      << connect_hint(-1, node);
  EXPECT_TRUE(has(connect_hint(156, node), "change broker.uri in /etc/kairos/node.toml")) << connect_hint(156, node);
  EXPECT_TRUE(has(connect_hint(157, node), "change broker.uri")) << connect_hint(157, node);
  EXPECT_TRUE(has(connect_hint(132, node), "MQTT v5")) << connect_hint(132, node);
  EXPECT_TRUE(has(connect_hint(137, node), "try again later")) << connect_hint(137, node);
  EXPECT_TRUE(has(connect_hint(149, node), "max_packet_size")) << connect_hint(149, node);
  std::set<int> codes{128, 129, 130, 131, 132, 133, 136, 137, 138, 140, 149, 151, 153, 156, 157, 159};
  for (int code = -1; code >= -19; --code) codes.insert(code);
  for (int code : codes) EXPECT_FALSE(connect_hint(code, node).empty()) << code;
}

// ---- MQTT over TLS -------------------------------------------------------

namespace {

BrokerConfig broker_of(const std::string& text, std::string* error_key = nullptr, std::uint32_t* line = nullptr) {
  Config cfg("[broker]\n" + text, "n.toml");
  try {
    auto b = read_broker(cfg.root().section("broker"), 10);
    cfg.finish();
    return b;
  } catch (const ConfigError& e) {
    if (error_key) *error_key = e.key;
    if (line) *line = e.line;
    if (!error_key) throw;
    return {};
  }
}

}  // namespace

TEST(BrokerTls, ReadsTheFilesOfAnSslBroker) {
  auto b = broker_of("uri = \"ssl://gw.local:8883\"\nca_file = \"/etc/kairos/tls/ca.crt\"\n"
                     "cert_file = \"/etc/kairos/tls/node.crt\"\nkey_file = \"/etc/kairos/tls/node.key\"\n");
  EXPECT_EQ(b.ca_file, "/etc/kairos/tls/ca.crt");
  EXPECT_EQ(b.cert_file, "/etc/kairos/tls/node.crt");
  EXPECT_EQ(b.key_file, "/etc/kairos/tls/node.key");
  EXPECT_EQ(tls_settings_problem(b), "");
  // A client certificate is optional (a broker without require_certificate).
  b = broker_of("uri = \"mqtts://gw.local:8883\"\nca_file = \"/ca.crt\"\n");
  EXPECT_EQ(b.cert_file, "");
  auto plain = broker_of("uri = \"tcp://gw.local:1883\"\n");
  EXPECT_EQ(plain.ca_file, "");
}

// Each rule refused at the key to fix, with its line (table-driven).
TEST(BrokerTls, RefusesTlsSettingsThatDoNotFitTheUri) {
  struct Case {
    const char* text;
    const char* key;
    std::uint32_t line;  // 1: the [broker] table itself, for a missing key
  };
  const Case cases[] = {
      {"uri = \"ssl://h:8883\"\n", "broker.ca_file", 1},
      {"uri = \"mqtts://h:8883\"\n", "broker.ca_file", 1},
      {"uri = \"ssl://h:8883\"\nca_file = \"/ca\"\ncert_file = \"/c\"\n", "broker.key_file", 1},
      {"uri = \"ssl://h:8883\"\nca_file = \"/ca\"\nkey_file = \"/k\"\n", "broker.cert_file", 1},
      {"uri = \"tcp://h:1883\"\nca_file = \"/ca\"\n", "broker.ca_file", 3},
      {"uri = \"mqtt://h:1883\"\nusername = \"n1\"\ncert_file = \"/c\"\nkey_file = \"/k\"\n", "broker.cert_file", 4},
      {"uri = \"tcp://h:1883\"\nkey_file = \"/k\"\n", "broker.key_file", 3},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.text);
    std::string key;
    std::uint32_t line = 0;
    broker_of(c.text, &key, &line);
    EXPECT_EQ(key, c.key);
    EXPECT_EQ(line, c.line);
  }
  try {
    broker_of("uri = \"tcp://h:1883\"\nca_file = \"/ca\"\n");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_TRUE(has(e.what(), "is for a TLS broker, but broker.uri is tcp://")) << e.what();
    EXPECT_TRUE(has(e.what(), "remove broker.ca_file")) << e.what();
  }
  // The same rules after kairosctl's --broker replaced the URI.
  BrokerConfig b;
  b.uri = "ssl://h:8883";
  EXPECT_TRUE(has(tls_settings_problem(b), "needs broker.ca_file")) << tls_settings_problem(b);
  b.ca_file = "/ca";
  b.cert_file = "/c";
  EXPECT_TRUE(has(tls_settings_problem(b), "go together")) << tls_settings_problem(b);
  b.key_file = "/k";
  EXPECT_EQ(tls_settings_problem(b), "");
  b.uri = "tcp://h:1883";
  EXPECT_TRUE(has(tls_settings_problem(b), "is not TLS, but broker.ca_file is set")) << tls_settings_problem(b);
}

TEST(BrokerTls, HostsOfUris) {
  EXPECT_EQ(uri_host("ssl://gateway.local:8883"), "gateway.local");
  EXPECT_EQ(uri_host("ssl://127.0.0.1:8883"), "127.0.0.1");
  EXPECT_EQ(uri_host("ssl://[::1]:8883"), "::1");
  EXPECT_EQ(uri_host("tcp://h"), "h");
  EXPECT_EQ(uri_host("nonsense"), "");
  EXPECT_EQ(uri_port("ssl://gateway.local:8883"), "8883");
  EXPECT_EQ(uri_port("tcp://[::1]:1884"), "1884");
  EXPECT_EQ(uri_port("tcp://[::1]"), "");
  EXPECT_EQ(uri_port("tcp://h"), "");
  EXPECT_EQ(uri_port("nonsense"), "");
  EXPECT_TRUE(uri_is_tls("ssl://h:1"));
  EXPECT_TRUE(uri_is_tls("mqtts://h:1"));
  EXPECT_FALSE(uri_is_tls("tcp://h:1"));
  EXPECT_FALSE(uri_is_tls("mqtt://h:1"));
  EXPECT_TRUE(host_is_ip("10.0.0.7"));
  EXPECT_TRUE(host_is_ip("fe80::1"));
  EXPECT_FALSE(host_is_ip("gateway.local"));
  EXPECT_FALSE(host_is_ip("1.2.3"));
  EXPECT_FALSE(host_is_ip("localhost"));
}

// What failed TLS attempts leave in Paho 1.3's trace (recorded against
// Mosquitto 2.0.11 and OpenSSL 3.0), and the cause each stands for.
TEST(BrokerTls, ClassifiesWhatAFailedAttemptLeftBehind) {
  const std::string started = "20261203 123242.838 SSL handshake started write:unknown:unknown";
  const std::string hello = "20261203 123242.838 SSL connect:SSLv3/TLS write client hello";
  const std::string done = "20261203 123242.911 SSL handshake done write:unknown:unknown";
  const std::string finished = "20261203 123242.915 SSL connect:SSL negotiation finished successfully";
  const std::string peer = "20261203 123242.915 peername from X509_check_host is localhost";
  const std::string connect = "20261203 123242.915 3 farm-n1 -> CONNECT version 5 clean: 1 (-1)";
  struct Case {
    const char* what;
    std::vector<std::string> trace;
    bool cert, invalid_now, other_ca, timed_out;
    int code;
  };
  const Case cases[] = {
      {"wrong CA", {started, hello, "SSL alert write:fatal:unknown CA", "SSL connect:error"}, true, false, false, false,
       kTlsBrokerUnknownCa},
      {"expired broker certificate", {started, "SSL alert write:fatal:certificate expired"}, true, false, false, false,
       kTlsBrokerCertExpired},
      {"broker certificate of no CA", {started, "SSL alert write:fatal:bad certificate"}, true, false, false, false,
       kTlsBrokerUnknownCa},
      {"name mismatch",
       {started, done, finished, "X509_check_host for hostname localhost failed, rc 0", "rc from X509_check_ip_asc is -2",
        "SSL alert write:warning:close notify"},
       true, false, false, false, kTlsNameMismatch},
      {"address mismatch",
       {started, done, finished, "X509_check_host for hostname 10.0.0.7 failed, rc 0", "rc from X509_check_ip_asc is 0"},
       true, false, false, false, kTlsNameMismatch},
      {"address matched, client certificate refused",
       {started, done, finished, "X509_check_host for hostname 127.0.0.1 failed, rc 0", "rc from X509_check_ip_asc is 1",
        connect, "SSL alert read:fatal:unknown CA"},
       true, false, false, false, kTlsClientCertRefused},
      {"expired client certificate, alert read", {started, done, finished, peer, connect, "SSL alert read:fatal:certificate expired"},
       true, false, false, false, kTlsClientCertExpired},
      {"expired client certificate, alert lost (TLS 1.3)", {started, done, finished, peer, connect}, true, true, false,
       false, kTlsClientCertExpired},
      {"client certificate of another CA, alert lost", {started, done, finished, peer, connect}, true, false, true, false,
       kTlsClientCertRefused},
      {"no client certificate", {started, hello, done, finished, peer, connect}, false, false, false, false,
       kTlsClientCertRequired},
      {"no client certificate, alert read (116)", {started, done, peer, connect, "SSL alert read:fatal:unknown"}, false,
       false, false, false, kTlsClientCertRequired},
      {"no client certificate, TLS 1.2", {started, hello, "SSL alert read:fatal:handshake failure"}, false, false, false,
       false, kTlsClientCertRequired},
      {"handshake failure with a certificate", {started, hello, "SSL alert read:fatal:handshake failure"}, true, false,
       false, false, kTlsHandshakeFailed},
      {"silent server", {started, hello}, true, false, false, true, kTlsHandshakeTimeout},
      {"closed during the handshake (a plain port)", {started, hello}, true, false, false, false, kTlsHandshakeFailed},
      {"nothing listens", {}, true, false, false, false, 0},
      {"TCP connect timed out", {}, true, false, false, true, 0},
      {"handshake done, no CONNACK", {started, done, finished, peer, connect}, true, false, false, true, 0},
      {"files", {"SSLSocket error (1) in SSL_CTX_use_PrivateKey_file for socket 3 rc 0 errno 2 No such file"}, true,
       false, false, false, kTlsFiles},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.what);
    TlsEvidence e;
    e.trace = c.trace;
    e.client_cert = c.cert;
    e.client_cert_invalid_now = c.invalid_now;
    e.client_cert_other_ca = c.other_ca;
    e.timed_out = c.timed_out;
    EXPECT_EQ(classify_tls(e), c.code);
  }
  TlsEvidence e;
  e.trace = {started, "SSL alert write:fatal:unknown CA", "X509_check_host for hostname h failed, rc 0"};
  EXPECT_EQ(tls_evidence_text(e), "alert sent: unknown CA; host check failed for h");
  e.trace = {started, "SSL alert read:fatal:unknown", "SSLSocket error (1) in SSL_CTX_load_verify_locations for socket 3"};
  EXPECT_EQ(tls_evidence_text(e),
            "alert received: certificate required (116); OpenSSL failed in SSL_CTX_load_verify_locations");
  EXPECT_EQ(tls_evidence_text(TlsEvidence{}), "");
}

TEST(BrokerTls, EachCauseIsNamedWithTheSettingToFix) {
  BrokerOrigin node{"ssl://gw.local:8883", "n1", "/etc/kairos/broker.password", "/etc/kairos/node.toml", false,
                    "/etc/kairos/tls/ca.crt", "/etc/kairos/tls/node.crt", "/etc/kairos/tls/node.key"};
  struct Case {
    int code;
    const char* failure;
    const char* hint;
  };
  const Case cases[] = {
      {kTlsBrokerUnknownCa, "TLS: the broker's certificate is not signed by a CA of ca_file (unknown CA; Paho code -1)",
       "check broker.ca_file (/etc/kairos/tls/ca.crt) in /etc/kairos/node.toml"},
      {kTlsBrokerCertExpired, "TLS: the broker's certificate has expired or is not valid yet (certificate has expired",
       "renew the broker's certificate"},
      {kTlsNameMismatch, "TLS: the broker's certificate is not for gw.local (hostname mismatch; Paho code -1)",
       "(broker.uri in /etc/kairos/node.toml), or give the broker a certificate for gw.local"},
      {kTlsClientCertRefused, "TLS: the broker refused this client's certificate (certificate refused",
       "the broker does not trust broker.cert_file (/etc/kairos/tls/node.crt) in /etc/kairos/node.toml"},
      {kTlsClientCertExpired, "TLS: this client's certificate has expired or is not valid yet (certificate has expired",
       "renew broker.cert_file (/etc/kairos/tls/node.crt) in /etc/kairos/node.toml"},
      {kTlsClientCertRequired, "TLS: the broker requires a client certificate and got none (certificate required",
       "set broker.cert_file and broker.key_file in /etc/kairos/node.toml"},
      {kTlsHandshakeTimeout, "never answered the TLS handshake (handshake timed out",
       "broker.uri in /etc/kairos/node.toml names the broker's TLS listener"},
      {kTlsHandshakeFailed, "TLS: the TLS handshake failed (handshake failed", "names a TLS listener"},
      {kTlsFiles, "TLS: OpenSSL could not load the CA, certificate or key file",
       "check broker.ca_file (/etc/kairos/tls/ca.crt) in /etc/kairos/node.toml, broker.cert_file and broker.key_file"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.code);
    const std::string f = connect_failure(node.uri, c.code);
    EXPECT_TRUE(has(f, "connect to ssl://gw.local:8883 failed: ")) << f;
    EXPECT_TRUE(has(f, c.failure)) << f;
    EXPECT_TRUE(has(connect_hint(c.code, node), c.hint)) << connect_hint(c.code, node);
    EXPECT_EQ(connect_code(c.code).cause, ConnectCause::tls);
  }
  // A console without a config says so; a certificate refused is final for it.
  BrokerOrigin console{"ssl://gw.local:8883", "", "", "", true};
  EXPECT_TRUE(has(connect_hint(kTlsBrokerUnknownCa, console),
                  "check broker.ca_file in a console config (--config FILE; none was read)"))
      << connect_hint(kTlsBrokerUnknownCa, console);
  for (int code : {kTlsBrokerUnknownCa, kTlsBrokerCertExpired, kTlsNameMismatch, kTlsClientCertRefused,
                   kTlsClientCertExpired, kTlsClientCertRequired, kTlsFiles})
    EXPECT_TRUE(connect_is_final(code)) << code;
  EXPECT_FALSE(connect_is_final(kTlsHandshakeTimeout));
  EXPECT_FALSE(connect_is_final(kTlsHandshakeFailed));
}

TEST(BrokerTls, AConsoleThatGaveUpWaitingForATlsBrokerSaysHowToLearnMore) {
  BrokerOrigin console{"ssl://gw.local:8883", "alice", "/p", "/etc/kairos/kairosctl.toml", true};
  const std::string h = connect_hint(-1, console);
  EXPECT_TRUE(has(h, "with a TLS listener there? (check --broker, or broker.uri in /etc/kairos/kairosctl.toml")) << h;
  EXPECT_TRUE(has(h, "--timeout above 6000 ms")) << h;
}

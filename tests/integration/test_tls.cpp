// MQTT over TLS against a real Mosquitto TLS listener (require_certificate)
// on loopback, with the CA, certificates and configs kairosctl provision
// makes: a node and a gateway connect and the node registers; a wrong CA,
// an expired client or server certificate, a broker name mismatch, a client
// without a certificate and a server that takes the connection and never
// answers the handshake are each refused with a log line naming the cause
// and the setting to fix, by daemons that keep retrying with growing
// backoff, and by kairosctl, which exits non-zero within a bounded time.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <thread>

#include "common/core/x509.h"
#include "tests/integration/harness.h"
#include "tools/kairosctl/certs.h"

using namespace kairos;
using namespace kairos::test;
using namespace std::chrono_literals;

namespace {

#ifdef KAIROS_SANITIZED
constexpr double kSlow = 4.0;  // every process runs several times slower
#else
constexpr double kSlow = 1.0;
#endif

std::chrono::milliseconds scaled(double seconds) {
  return std::chrono::milliseconds(static_cast<long>(seconds * kSlow * 1000));
}

std::string replaced(std::string text, const std::vector<std::pair<std::string, std::string>>& pairs) {
  for (const auto& [from, to] : pairs)
    for (auto p = text.find(from); p != std::string::npos; p = text.find(from, p + to.size())) text.replace(p, from.size(), to);
  return text;
}

std::int64_t now_s() { return static_cast<std::int64_t>(std::time(nullptr)); }

// Seconds since midnight of every log line ("HH:MM:SS.mmm ...") that holds what.
std::vector<double> stamps(const std::string& log, const std::string& what) {
  std::vector<double> out;
  std::size_t start = 0;
  while (start < log.size()) {
    auto end = log.find('\n', start);
    if (end == std::string::npos) end = log.size();
    std::string line = log.substr(start, end - start);
    int h = 0, m = 0, s = 0, ms = 0;
    if (line.find(what) != std::string::npos && std::sscanf(line.c_str(), "%d:%d:%d.%d", &h, &m, &s, &ms) == 4) {
      double t = h * 3600.0 + m * 60.0 + s + ms / 1000.0;
      if (!out.empty() && t < out.back()) t += 86400;  // past midnight
      out.push_back(t);
    }
    start = end + 1;
  }
  return out;
}

// The first line of log that holds what, or "".
std::string line_with(const std::string& log, const std::string& what) {
  auto p = log.find(what);
  if (p == std::string::npos) return "";
  auto b = log.rfind('\n', p);
  auto e = log.find('\n', p);
  return log.substr(b == std::string::npos ? 0 : b + 1, e == std::string::npos ? std::string::npos : e - b - 1);
}

// A provisioned mesh (gateway gw1, operator alice, node n1) with its broker
// on a TLS listener of this test's port, and the bundles' configs pointed
// at this test's copies of their files.
class TlsMesh {
 public:
  TlsMesh() : port_(free_port()) {
    for (auto args : std::vector<std::vector<std::string>>{{"--gateway", "gw1"}, {"--operator", "alice"}, {"n1", "--cluster", "barn"}}) {
      std::vector<std::string> argv{bin("kairosctl"), "--mesh", "farm", "--broker", uri(), "provision"};
      argv.insert(argv.end(), args.begin(), args.end());
      argv.insert(argv.end(), {"--out", dir_.file("out"), "--boards", std::string(KAIROS_SOURCE_DIR) + "/boards"});
      auto r = run_command(argv, dir_.path());
      if (r.status != 0) throw std::runtime_error("provision failed: " + r.output);
    }
  }
  const TempDir& dir() const { return dir_; }
  std::string uri(const std::string& host = "localhost") const { return "ssl://" + host + ":" + std::to_string(port_); }
  std::string out(const std::string& rel) const { return dir_.file("out/" + rel); }
  std::string bundle(const std::string& who) const {
    if (who == "gateway" || who == "operators/alice") return out(who + "/etc/kairos");
    return out("nodes/" + who + "/etc/kairos");
  }
  std::string ca_cert() const { return read_text(out("ca/ca.crt")); }
  std::string ca_key() const { return read_text(out("ca/ca.key")); }

  // Mosquitto on the generated kairos.conf, its certificate and key
  // replaced when given; nullptr when it does not start.
  std::unique_ptr<Process> start_broker(int port, const std::string& cert = "", const std::string& key = "") {
    std::string conf = replaced(read_text(out("mosquitto/kairos.conf")),
                                {{"/etc/mosquitto/certs/kairos-ca.crt", out("mosquitto/ca.crt")},
                                 {"/etc/mosquitto/certs/kairos-server.crt", cert.empty() ? out("mosquitto/server.crt") : cert},
                                 {"/etc/mosquitto/certs/kairos-server.key", key.empty() ? out("mosquitto/server.key") : key},
                                 {"/etc/mosquitto/kairos.passwd", out("mosquitto/passwd")},
                                 {"/etc/mosquitto/kairos.acl", out("mosquitto/acl")},
                                 {"listener " + std::to_string(port_) + "\n", "listener " + std::to_string(port) + " 127.0.0.1\n"}});
    const std::string name = "mosquitto-" + std::to_string(port);
    dir_.write(name + ".conf", conf + "persistence false\nuser root\n");
    auto p = std::make_unique<Process>(std::vector<std::string>{"mosquitto", "-c", dir_.file(name + ".conf")},
                                       dir_.file(name + ".log"));
    if (!eventually([&] { return !p->running() || read_text(dir_.file(name + ".log")).find(" running") != std::string::npos; }) ||
        !p->running())
      return nullptr;
    return p;
  }
  std::unique_ptr<Process> start_broker() { return start_broker(port_); }
  std::string broker_log(int port) const { return read_text(dir_.file("mosquitto-" + std::to_string(port) + ".log")); }
  int port() const { return port_; }

  // who's config (gateway.toml, node.toml, kairosctl.toml) with on-device
  // paths pointed here, then the replacements of change.
  std::string config(const std::string& who, const std::string& file,
                     const std::vector<std::pair<std::string, std::string>>& change = {}) const {
    std::string text = replaced(read_text(bundle(who) + "/" + file),
                                {{"/etc/kairos/keys", "@KEYS@"},
                                 {"/etc/kairos", bundle(who)},
                                 {"@KEYS@", out("gateway/etc/kairos/keys")},
                                 {"/var/lib/kairos", dir_.path()},
                                 {"/usr/share/kairos/boards", std::string(KAIROS_SOURCE_DIR) + "/boards"}});
    text = replaced(text, change);
    std::string name = (who == "operators/alice" ? "alice" : who) + "-" + std::to_string(++configs_) + ".toml";
    dir_.write(name, text);
    return dir_.file(name);
  }
  std::unique_ptr<Process> node(const std::vector<std::pair<std::string, std::string>>& change = {}) {
    auto cfg = config("n1", "node.toml", change);
    return std::make_unique<Process>(std::vector<std::string>{bin("kairos-node"), "--config", cfg}, cfg + ".log");
  }
  std::unique_ptr<Process> gateway(const std::vector<std::pair<std::string, std::string>>& change = {}) {
    auto cfg = config("gateway", "gateway.toml", change);
    return std::make_unique<Process>(std::vector<std::string>{bin("kairos-gateway"), "--config", cfg}, cfg + ".log");
  }
  // kairosctl as alice, one shot; with how long it took.
  struct Ctl {
    RunResult result;
    double seconds;
  };
  Ctl kairosctl(const std::vector<std::string>& args, const std::vector<std::pair<std::string, std::string>>& change = {}) {
    std::vector<std::string> argv{bin("kairosctl"), "--config", config("operators/alice", "kairosctl.toml", change)};
    argv.insert(argv.end(), args.begin(), args.end());
    auto t0 = std::chrono::steady_clock::now();
    auto r = run_command(argv, dir_.path(), 60s);
    return {r, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()};
  }
  // A certificate signed by the mesh CA, written to the test's folder.
  std::string issue(const std::string& name, ctl::CertSpec spec, const std::string& key_pem) const {
    dir_.write(name, ctl::issue_cert(spec, key_pem, ca_cert(), ca_key()));
    return dir_.file(name);
  }

 private:
  TempDir dir_;
  int port_;
  mutable int configs_ = 0;
};

// A daemon refusing to connect: the same failure line again and again,
// spaced by a growing backoff, the process alive throughout and ending
// on SIGTERM. Returns the failure lines' times.
std::vector<double> expect_retries_with_backoff(Process& p, const std::string& failure, int count = 4,
                                                std::chrono::milliseconds within = 30s) {
  std::vector<double> t;
  EXPECT_TRUE(eventually([&] {
    t = stamps(p.output(), failure);
    return static_cast<int>(t.size()) >= count || !p.running();
  }, within)) << p.output();
  EXPECT_TRUE(p.running()) << "the daemon stopped:\n" << p.output();
  EXPECT_GE(static_cast<int>(t.size()), count) << p.output();
  if (static_cast<int>(t.size()) >= count) {
    // Backoff 0.5 s doubling (50..100 % of it, with jitter): the third gap
    // is at least 1 s, the first at most 0.5 s, plus each attempt's own time.
    const double first = t[1] - t[0], third = t[3] - t[2];
    EXPECT_GT(third, first) << "gaps " << first << " s, " << t[2] - t[1] << " s, " << third << " s\n" << p.output();
    std::printf("  [figures] failure lines at +0, +%.2f, +%.2f, +%.2f s (gaps %.2f, %.2f, %.2f s)\n", t[1] - t[0],
                t[2] - t[0], t[3] - t[0], first, t[2] - t[1], third);
  }
  p.signal(SIGTERM);
  auto st = p.wait(scaled(5));
  EXPECT_TRUE(st.has_value()) << "no exit within 5 s of SIGTERM: a hang";
  return t;
}

// The time from a daemon's start line to its first failure line.
double first_report_s(const std::string& log, const std::string& start, const std::string& failure) {
  auto s = stamps(log, start), f = stamps(log, failure);
  if (s.empty() || f.empty()) return -1;
  return f[0] - s[0];
}

}  // namespace

TEST(Tls, ANodeAndAGatewayConnectOverTlsAndTheNodeRegisters) {
  TlsMesh m;
  auto broker = m.start_broker();
  ASSERT_TRUE(broker) << m.broker_log(m.port());
  auto gw = m.gateway();
  auto n1 = m.node();
  EXPECT_TRUE(eventually([&] {
    auto r = m.kairosctl({"--timeout", "1000", "--json", "nodes"}).result;
    return r.status == 0 && r.output.find("\"id\":\"n1\"") != std::string::npos &&
           r.output.find("\"online\":true") != std::string::npos;
  }, scaled(30))) << gw->output() << n1->output() << m.broker_log(m.port());
  // Over TLS, with the certificates' names: the broker saw each client by its certificate.
  EXPECT_EQ(n1->output().find("TLS:"), std::string::npos) << n1->output();
  EXPECT_EQ(gw->output().find("TLS:"), std::string::npos) << gw->output();
  const std::string log = m.broker_log(m.port());
  EXPECT_NE(log.find("u'n1'"), std::string::npos) << log;
  EXPECT_NE(log.find("u'gw1'"), std::string::npos) << log;
  // The same URI by address: the broker's certificate names 127.0.0.1 too.
  auto by_ip = m.kairosctl({"--broker", m.uri("127.0.0.1"), "--timeout", "2000", "status"});
  EXPECT_EQ(by_ip.result.status, 0) << by_ip.result.output;
}

TEST(Tls, AWrongCaIsRefusedNamingCaFile) {
  TlsMesh m;
  auto broker = m.start_broker();
  ASSERT_TRUE(broker) << m.broker_log(m.port());
  // A CA of another mesh, which never signed this broker's certificate.
  ctl::CertSpec ca;
  ca.kind = ctl::CertSpec::Kind::ca;
  ca.common_name = "another mesh CA";
  ca.not_before_s = now_s() - 3600;
  ca.not_after_s = now_s() + 86400;
  m.dir().write("other-ca.crt", ctl::issue_cert(ca, ctl::new_ec_key(), "", ""));
  const std::string failure = "TLS: the broker's certificate is not signed by a CA of ca_file (unknown CA";
  auto n1 = m.node({{m.bundle("n1") + "/tls/ca.crt", m.dir().file("other-ca.crt")}});
  auto gw = m.gateway({{m.bundle("gateway") + "/tls/ca.crt", m.dir().file("other-ca.crt")}});
  expect_retries_with_backoff(*n1, failure);
  auto line = line_with(n1->output(), failure);
  EXPECT_NE(line.find("check broker.ca_file (" + m.dir().file("other-ca.crt") + ")"), std::string::npos) << line;
  EXPECT_NE(line.find("alert sent: unknown CA"), std::string::npos) << line;
  std::printf("  [figures] wrong CA: first report %.2f s after the node's start\n",
              first_report_s(n1->output(), "[node] node n1", failure));
  expect_retries_with_backoff(*gw, failure);
  auto ctl = m.kairosctl({"status"}, {{m.bundle("operators/alice") + "/tls/ca.crt", m.dir().file("other-ca.crt")}});
  EXPECT_EQ(ctl.result.status, 1) << ctl.result.output;
  EXPECT_NE(ctl.result.output.find(failure), std::string::npos) << ctl.result.output;
  EXPECT_NE(ctl.result.output.find("check broker.ca_file"), std::string::npos) << ctl.result.output;
  EXPECT_LT(ctl.seconds, 3.0 * kSlow) << "a certificate refused is final: no retries until the timeout";
  std::printf("  [figures] wrong CA: kairosctl exit %d after %.2f s\n", ctl.result.status, ctl.seconds);
}

TEST(Tls, AnExpiredClientCertificateIsRefusedNamingCertFile) {
  TlsMesh m;
  auto broker = m.start_broker();
  ASSERT_TRUE(broker) << m.broker_log(m.port());
  ctl::CertSpec spec;
  spec.common_name = "n1";
  spec.not_before_s = now_s() - 30 * 86400;
  spec.not_after_s = now_s() - 86400;
  auto expired = m.issue("n1-expired.crt", spec, read_text(m.bundle("n1") + "/tls/node.key"));
  const std::string failure = "TLS: this client's certificate has expired or is not valid yet (certificate has expired";
  auto n1 = m.node({{m.bundle("n1") + "/tls/node.crt", expired}});
  expect_retries_with_backoff(*n1, failure);
  const std::string log = n1->output();
  EXPECT_NE(log.find("broker.cert_file " + expired + " has expired"), std::string::npos) << "warned at start:\n" << log;
  auto line = line_with(log, failure);
  EXPECT_NE(line.find("renew broker.cert_file (" + expired + ")"), std::string::npos) << line;
  EXPECT_NE(line.find("this machine's clock says"), std::string::npos) << line;
  std::printf("  [figures] expired client certificate: first report %.2f s after the node's start\n",
              first_report_s(log, "[node] node n1", failure));
  // The broker refused it for that reason too.
  EXPECT_NE(m.broker_log(m.port()).find("certificate verify failed"), std::string::npos) << m.broker_log(m.port());

  spec.common_name = "alice";
  auto alice_expired = m.issue("alice-expired.crt", spec, read_text(m.bundle("operators/alice") + "/tls/operator-alice.key"));
  auto ctl = m.kairosctl({"status"}, {{m.bundle("operators/alice") + "/tls/operator-alice.crt", alice_expired}});
  EXPECT_EQ(ctl.result.status, 1) << ctl.result.output;
  EXPECT_NE(ctl.result.output.find(failure), std::string::npos) << ctl.result.output;
  EXPECT_LT(ctl.seconds, 3.0 * kSlow);
  std::printf("  [figures] expired client certificate: kairosctl exit %d after %.2f s\n", ctl.result.status, ctl.seconds);
}

TEST(Tls, AnExpiredServerCertificateIsRefused) {
  TlsMesh m;
  ctl::CertSpec spec;
  spec.kind = ctl::CertSpec::Kind::server;
  spec.common_name = "localhost";
  spec.dns_names = {"localhost"};
  spec.not_before_s = now_s() - 30 * 86400;
  spec.not_after_s = now_s() - 86400;
  auto expired = m.issue("server-expired.crt", spec, read_text(m.out("mosquitto/server.key")));
  auto broker = m.start_broker(m.port(), expired);
  ASSERT_TRUE(broker) << m.broker_log(m.port());
  const std::string failure = "TLS: the broker's certificate has expired or is not valid yet (certificate has expired";
  auto n1 = m.node();
  expect_retries_with_backoff(*n1, failure);
  EXPECT_NE(line_with(n1->output(), failure).find("renew the broker's certificate"), std::string::npos) << n1->output();
  auto ctl = m.kairosctl({"status"});
  EXPECT_EQ(ctl.result.status, 1) << ctl.result.output;
  EXPECT_NE(ctl.result.output.find(failure), std::string::npos) << ctl.result.output;
  EXPECT_LT(ctl.seconds, 3.0 * kSlow);
}

TEST(Tls, ABrokerNameMismatchIsRefusedNamingTheUri) {
  TlsMesh m;
  // The mesh CA's certificate for another host, on the broker.
  ctl::CertSpec spec;
  spec.kind = ctl::CertSpec::Kind::server;
  spec.common_name = "other.example";
  spec.dns_names = {"other.example"};
  spec.not_before_s = now_s() - 3600;
  spec.not_after_s = now_s() + 86400;
  auto other = m.issue("server-other.crt", spec, read_text(m.out("mosquitto/server.key")));
  auto broker = m.start_broker(m.port(), other);
  ASSERT_TRUE(broker) << m.broker_log(m.port());
  const std::string failure = "TLS: the broker's certificate is not for localhost (hostname mismatch";
  auto n1 = m.node();
  expect_retries_with_backoff(*n1, failure);
  auto line = line_with(n1->output(), failure);
  EXPECT_NE(line.find("broker.uri in"), std::string::npos) << line;
  EXPECT_NE(line.find("host check failed for localhost"), std::string::npos) << line;
  std::printf("  [figures] name mismatch: first report %.2f s after the node's start\n",
              first_report_s(n1->output(), "[node] node n1", failure));
  // By address, the certificate names no IP either: refused the same way.
  auto ctl = m.kairosctl({"--broker", m.uri("127.0.0.1"), "status"});
  EXPECT_EQ(ctl.result.status, 1) << ctl.result.output;
  EXPECT_NE(ctl.result.output.find("TLS: the broker's certificate is not for 127.0.0.1 (hostname mismatch"),
            std::string::npos)
      << ctl.result.output;
  EXPECT_LT(ctl.seconds, 3.0 * kSlow);
  // The password never left: the broker saw no CONNECT.
  EXPECT_EQ(m.broker_log(m.port()).find("u'n1'"), std::string::npos) << m.broker_log(m.port());
}

TEST(Tls, AClientWithoutACertificateIsRefusedNamingCertFile) {
  TlsMesh m;
  auto broker = m.start_broker();
  ASSERT_TRUE(broker) << m.broker_log(m.port());
  const std::vector<std::pair<std::string, std::string>> no_cert{{"cert_file = ", "# cert_file = "},
                                                                  {"key_file = '" + m.bundle("n1") + "/tls", "# key_file = '"},
                                                                  {"key_file = \"" + m.bundle("operators/alice") + "/tls",
                                                                   "# key_file = \""}};
  const std::string failure = "TLS: the broker requires a client certificate and got none (certificate required";
  auto n1 = m.node(no_cert);
  expect_retries_with_backoff(*n1, failure);
  auto line = line_with(n1->output(), failure);
  EXPECT_NE(line.find("set broker.cert_file and broker.key_file"), std::string::npos) << line;
  std::printf("  [figures] no client certificate: first report %.2f s after the node's start\n",
              first_report_s(n1->output(), "[node] node n1", failure));
  auto ctl = m.kairosctl({"status"}, no_cert);
  EXPECT_EQ(ctl.result.status, 1) << ctl.result.output;
  EXPECT_NE(ctl.result.output.find(failure), std::string::npos) << ctl.result.output;
  EXPECT_LT(ctl.seconds, 3.0 * kSlow);
  EXPECT_NE(m.broker_log(m.port()).find("peer did not return a certificate"), std::string::npos);
}

TEST(Tls, AServerThatNeverAnswersTheHandshakeTimesOutAndIsRetried) {
  TlsMesh m;
  // A listening socket that takes every connection and says nothing.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(m.port()));
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  std::atomic<bool> stop{false};
  std::vector<int> taken;
  std::vector<std::chrono::steady_clock::time_point> accepted;
  std::mutex mu;
  std::thread silent([&] {
    while (!stop) {
      timeval tv{0, 100'000};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      int c = ::accept(fd, nullptr, nullptr);
      if (c >= 0) {
        std::lock_guard lock(mu);
        taken.push_back(c);
        accepted.push_back(std::chrono::steady_clock::now());
      }
    }
  });
  const std::string failure =
      "TLS: the server took the connection but never answered the TLS handshake (handshake timed out";
  auto n1 = m.node();
  std::vector<double> t;
  ASSERT_TRUE(eventually([&] {
    t = stamps(n1->output(), failure);
    return t.size() >= 3 || !n1->running();
  }, scaled(40))) << n1->output();
  EXPECT_TRUE(n1->running()) << n1->output();
  auto line = line_with(n1->output(), failure);
  EXPECT_NE(line.find("names the broker's TLS listener"), std::string::npos) << line;
  const double first = first_report_s(n1->output(), "[node] node n1", failure);
  EXPECT_GT(first, 4.5) << "reported before the connect timeout";
  EXPECT_LT(first, 7.5 * kSlow) << "a handshake left waiting beyond the connect timeout";
  std::printf("  [figures] silent server: first report %.2f s after the node's start; later ones +%.2f, +%.2f s\n",
              first, t[1] - t[0], t[2] - t[0]);
  // Retried, the attempts spaced by the timeout plus a growing backoff.
  {
    std::lock_guard lock(mu);
    ASSERT_GE(accepted.size(), 3u);
    auto gap = [&](std::size_t i) { return std::chrono::duration<double>(accepted[i + 1] - accepted[i]).count(); };
    EXPECT_GT(gap(1), 5.0);
    std::printf("  [figures] silent server: connections accepted %.2f s, then %.2f s apart\n", gap(0), gap(1));
  }
  n1->signal(SIGTERM);
  EXPECT_TRUE(n1->wait(scaled(5)).has_value()) << "no exit within 5 s of SIGTERM while a handshake waits";

  // kairosctl: its own timeout (3 s by default) ends a wait for the
  // handshake; a longer one sees the handshake time out.
  auto quick = m.kairosctl({"status"});
  EXPECT_EQ(quick.result.status, 1) << quick.result.output;
  EXPECT_LT(quick.seconds, 4.5 * kSlow) << quick.result.output;
  auto patient = m.kairosctl({"--timeout", "7000", "status"});
  EXPECT_EQ(patient.result.status, 1) << patient.result.output;
  EXPECT_NE(patient.result.output.find(failure), std::string::npos) << patient.result.output;
  EXPECT_LT(patient.seconds, 8.5 * kSlow);
  std::printf("  [figures] silent server: kairosctl exit %d after %.2f s (--timeout 3000), %d after %.2f s (7000)\n",
              quick.result.status, quick.seconds, patient.result.status, patient.seconds);
  stop = true;
  silent.join();
  for (int c : taken) ::close(c);
  ::close(fd);
}

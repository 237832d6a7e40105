#include "tools/kairosctl/broker_files.h"

#include <mbedtls/base64.h>
#include <mbedtls/md.h>
#include <mbedtls/pkcs5.h>

#include <set>
#include <sstream>
#include <stdexcept>

namespace kairos::ctl {

namespace {

std::string base64(ByteView b) {
  std::size_t n = 0;
  mbedtls_base64_encode(nullptr, 0, &n, b.data(), b.size());
  std::string out(n, '\0');
  if (mbedtls_base64_encode(reinterpret_cast<unsigned char*>(out.data()), out.size(), &n, b.data(), b.size()) != 0)
    throw std::runtime_error("base64 failed");
  out.resize(n);
  return out;
}

Bytes unbase64(std::string_view s) {
  std::size_t n = 0;
  auto in = reinterpret_cast<const unsigned char*>(s.data());
  mbedtls_base64_decode(nullptr, 0, &n, in, s.size());
  Bytes out(n);
  if (mbedtls_base64_decode(out.data(), out.size(), &n, in, s.size()) != 0) return {};
  out.resize(n);
  return out;
}

std::string root(std::string_view mesh) { return "kairos/v1/" + std::string(mesh) + "/"; }

std::string frame(std::string_view kind, std::string_view name, const std::string& body) {
  return "# kairos " + std::string(kind) + " " + std::string(name) + " begin\n" + body + "# kairos " +
         std::string(kind) + " " + std::string(name) + " end\n";
}

}  // namespace

std::string mosquitto_hash(std::string_view password, ByteView salt, int iterations) {
  unsigned char hash[64];
  mbedtls_md_context_t md;
  mbedtls_md_init(&md);
  int rc = mbedtls_md_setup(&md, mbedtls_md_info_from_type(MBEDTLS_MD_SHA512), 1);
  if (rc == 0)
    rc = mbedtls_pkcs5_pbkdf2_hmac(&md, reinterpret_cast<const unsigned char*>(password.data()), password.size(),
                                   salt.data(), salt.size(), static_cast<unsigned>(iterations), sizeof hash, hash);
  mbedtls_md_free(&md);
  if (rc != 0) throw std::runtime_error("PBKDF2 failed");
  return "$7$" + std::to_string(iterations) + "$" + base64(salt) + "$" + base64(ByteView(hash, sizeof hash));
}

bool mosquitto_hash_matches(std::string_view hash, std::string_view password) {
  // $7$<iterations>$<salt base64>$<hash base64>
  if (hash.rfind("$7$", 0) != 0) return false;
  auto a = hash.find('$', 3);
  auto b = a == std::string_view::npos ? a : hash.find('$', a + 1);
  if (b == std::string_view::npos) return false;
  int iterations = 0;
  for (char c : hash.substr(3, a - 3)) {
    if (c < '0' || c > '9' || iterations > 10'000'000) return false;
    iterations = iterations * 10 + (c - '0');
  }
  Bytes salt = unbase64(hash.substr(a + 1, b - a - 1));
  if (salt.empty() || iterations <= 0) return false;
  return mosquitto_hash(password, salt, iterations) == hash;
}

std::string acl_node(std::string_view mesh, std::string_view cluster, std::string_view node,
                     const std::vector<std::string>& writes, const std::vector<std::string>& reads) {
  std::string base = root(mesh) + std::string(cluster) + "/" + std::string(node) + "/";
  std::string b = "user " + std::string(node) + "\n";
  for (const char* kind : {"birth", "state", "hb", "phase", "event", "ack", "result"}) b += "topic write " + base + kind + "\n";
  b += "topic read " + base + "cmd\n";
  b += "topic read " + root(mesh) + "_mesh/state\n";
  b += "topic read " + root(mesh) + "_gw/+/state\n";
  for (const auto& t : writes) b += "topic write " + t + "\n";
  for (const auto& t : reads) b += "topic read " + t + "\n";
  return frame("node", node, b);
}

std::string acl_gateway(std::string_view mesh, std::string_view gateway) {
  return frame("gateway", gateway, "user " + std::string(gateway) + "\ntopic readwrite " + root(mesh) + "#\n");
}

std::string acl_operator(std::string_view mesh, std::string_view name) {
  // Read everything: operators watch the mesh and the nodes' plain outputs
  // with mosquitto_sub; they write only their own control requests, so
  // that none can speak as another (docs/PROTOCOL.md, Operators).
  return frame("operator", name,
               "user " + std::string(name) + "\ntopic write " + root(mesh) + "_ctl/req/" + std::string(name) +
                   "\ntopic read #\n");
}

std::string acl_bridge(std::string_view mesh, std::string_view user, std::string_view sector) {
  return frame("bridge", user,
               "user " + std::string(user) + "\ntopic readwrite " + root(mesh) + "_sector/" + std::string(sector) + "/#\n");
}

std::string bridge_conf(const BridgeConf& b) {
  std::string c = "# Written by kairosctl provision --sector " + b.sector + " for mesh " + b.mesh +
                  ": install on the sector's broker as /etc/mosquitto/conf.d/kairos-bridge.conf (mode 0640, "
                  "group mosquitto: it holds the bridge's password)\n";
  c += "connection kairos-root-" + b.sector + "\naddress " + b.host + ":" + std::to_string(b.port) + "\n";
  c += "remote_clientid " + b.mesh + "-bridge-" + b.sector + "\nremote_username " + b.user + "\nremote_password " +
       b.password + "\n";
  // Kept across reconnects on both sides: what was queued while the link was
  // down is delivered once it is back (QoS 1).
  c += "cleansession false\nbridge_protocol_version mqttv311\ntry_private true\nrestart_timeout 2 30\n";
  c += "keepalive_interval 30\n";
  if (b.tls)
    c += "bridge_cafile " + std::string(kBridgeTlsDir) + "/ca.crt\nbridge_certfile " + kBridgeTlsDir +
         "/bridge.crt\nbridge_keyfile " + kBridgeTlsDir + "/bridge.key\nbridge_tls_version tlsv1.2\n";
  // Only the sector's own subtree: summaries and answers go up, the root's requests come down.
  c += "topic " + root(b.mesh) + "_sector/" + b.sector + "/# both 1\n";
  return c;
}

std::string replace_acl_block(std::string_view text, std::string_view kind, std::string_view name,
                              std::string_view block) {
  std::string begin = "# kairos " + std::string(kind) + " " + std::string(name) + " begin\n";
  std::string end = "# kairos " + std::string(kind) + " " + std::string(name) + " end\n";
  std::string s(text);
  auto b = s.find(begin);
  auto e = b == std::string::npos ? std::string::npos : s.find(end, b);
  if (b != std::string::npos && e != std::string::npos) return s.replace(b, e + end.size() - b, block);
  if (!s.empty() && s.back() != '\n') s.push_back('\n');
  return s + std::string(block);
}

std::string acl_kind_of(std::string_view text, std::string_view name) {
  for (const char* kind : {"node", "gateway", "operator"})
    if (text.find("# kairos " + std::string(kind) + " " + std::string(name) + " begin\n") != std::string_view::npos) return kind;
  return "";
}

std::vector<std::string> acl_meshes(std::string_view text) {
  std::set<std::string> meshes;
  const std::string_view prefix = " kairos/v1/";
  for (auto p = text.find(prefix); p != std::string_view::npos; p = text.find(prefix, p + 1)) {
    auto start = p + prefix.size();
    auto slash = text.find('/', start);
    if (slash != std::string_view::npos) meshes.emplace(text.substr(start, slash - start));
  }
  return {meshes.begin(), meshes.end()};
}

std::string mosquitto_conf(std::string_view mesh, int port, bool tls, std::size_t max_packet_size) {
  std::string conf = "# Written by kairosctl provision for mesh " + std::string(mesh) +
                     ": install as /etc/mosquitto/conf.d/kairos.conf\nlistener " + std::to_string(port) + "\n";
  // tls_version is the oldest version taken (Mosquitto 2.0): TLS 1.3 is negotiated when both sides have it.
  if (tls)
    conf += "cafile " + std::string(kBrokerCaFile) + "\ncertfile " + kBrokerCertFile + "\nkeyfile " + kBrokerKeyFile +
            "\nrequire_certificate true\ntls_version tlsv1.2\n";
  conf += "allow_anonymous false\nset_tcp_nodelay true\nmax_inflight_messages 0\nmax_queued_messages 100000\n"
          "max_packet_size " + std::to_string(max_packet_size) + "\n"
          "password_file /etc/mosquitto/kairos.passwd\nacl_file /etc/mosquitto/kairos.acl\n";
  return conf;
}

std::string replace_password_line(std::string_view text, std::string_view user, std::string_view hash) {
  std::string out;
  std::string prefix = std::string(user) + ":";
  std::istringstream in{std::string(text)};
  std::string line;
  bool replaced = false;
  while (std::getline(in, line)) {
    if (line.rfind(prefix, 0) == 0) {
      out += prefix + std::string(hash) + "\n";
      replaced = true;
    } else if (!line.empty()) {
      out += line + "\n";
    }
  }
  if (!replaced) out += prefix + std::string(hash) + "\n";
  return out;
}

std::string password_hash_of(std::string_view text, std::string_view user) {
  std::string prefix = std::string(user) + ":";
  std::istringstream in{std::string(text)};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
  return "";
}

}  // namespace kairos::ctl

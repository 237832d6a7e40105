#pragma once
// The broker's files as provisioning writes them: Mosquitto's password
// file ($7$ PBKDF2-SHA512 hashes) and ACL blocks, one per broker user.
// Pure code.
#include <string>
#include <string_view>
#include <vector>

#include "common/core/bytes.h"

namespace kairos::ctl {

// Mosquitto 2.0 password hash ($7$ = PBKDF2-HMAC-SHA512, 64 bytes, base64).
std::string mosquitto_hash(std::string_view password, ByteView salt, int iterations = 101);
// Whether a "$7$..." hash (as mosquitto_hash writes it) is of password.
bool mosquitto_hash_matches(std::string_view hash, std::string_view password);

// ACL blocks, each framed by "# kairos <kind> <name> begin/end" lines.
// A node may publish only its own reports (plus the plain topics its own
// config's mqtt outputs write) and read only its own commands, the
// gateway's broadcasts and the topics its own inputs read; a gateway reads
// and writes its mesh; an operator writes its own control requests
// (_ctl/req/<name>) and reads the broker's topics (mosquitto_sub for monitoring).
std::string acl_node(std::string_view mesh, std::string_view cluster, std::string_view node,
                     const std::vector<std::string>& writes = {}, const std::vector<std::string>& reads = {});
std::string acl_gateway(std::string_view mesh, std::string_view gateway);
std::string acl_operator(std::string_view mesh, std::string_view name);
// A sector's bridge on the root broker (docs/DESIGN.md 5.9): its own
// _sector/<sector>/ subtree and nothing else, both ways.
std::string acl_bridge(std::string_view mesh, std::string_view user, std::string_view sector);
// The sector broker's bridge to the root broker: the sector's subtree
// (summaries and answers out, the root's requests in), never a node topic.
struct BridgeConf {
  std::string mesh, sector, host, user, password;
  int port = 1883;
  bool tls = false;
};
inline constexpr const char* kBridgeTlsDir = "/etc/mosquitto/kairos-bridge";
std::string bridge_conf(const BridgeConf& b);

// text with the block framed for (kind, name) replaced by block, or block
// appended when there is none.
std::string replace_acl_block(std::string_view text, std::string_view kind, std::string_view name,
                              std::string_view block);
// The kind of the ACL block of broker user name ("node", "gateway",
// "operator"), or "" when there is none.
std::string acl_kind_of(std::string_view text, std::string_view name);
// Mesh names that text's ACL blocks grant topics of (kairos/v1/<mesh>/...).
std::vector<std::string> acl_meshes(std::string_view text);
// The paths the broker's files are installed at (README "Set up the broker").
inline constexpr const char* kBrokerCaFile = "/etc/mosquitto/certs/kairos-ca.crt";
inline constexpr const char* kBrokerCertFile = "/etc/mosquitto/certs/kairos-server.crt";
inline constexpr const char* kBrokerKeyFile = "/etc/mosquitto/certs/kairos-server.key";

// Mosquitto's conf.d file for a mesh: the listener on port (with TLS:
// the mesh CA, the server's certificate and key, a client certificate
// required, TLS 1.2 or newer), no anonymous clients, the passwd and ACL,
// and packets no larger than max_packet_size.
std::string mosquitto_conf(std::string_view mesh, int port, bool tls, std::size_t max_packet_size);

// A mosquitto password file with user's line replaced or appended.
std::string replace_password_line(std::string_view text, std::string_view user, std::string_view hash);
// The hash on user's line of a mosquitto password file, or "".
std::string password_hash_of(std::string_view text, std::string_view user);

}  // namespace kairos::ctl

#pragma once
// kairosctl provision: keys, configs, broker credentials and ACL entries,
// install bundles and SD-card roots (docs/DESIGN.md section 7). Every run is
// one transaction: it changes everything it names, or nothing.
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
// and writes its mesh; an operator writes control requests and reads the
// broker's topics (mosquitto_sub for monitoring).
std::string acl_node(std::string_view mesh, std::string_view cluster, std::string_view node,
                     const std::vector<std::string>& writes = {}, const std::vector<std::string>& reads = {});
std::string acl_gateway(std::string_view mesh, std::string_view gateway);
std::string acl_operator(std::string_view mesh, std::string_view name);

// text with the block framed for (kind, name) replaced by block, or block
// appended when there is none.
std::string replace_acl_block(std::string_view text, std::string_view kind, std::string_view name,
                              std::string_view block);
// The kind of the ACL block of broker user name ("node", "gateway",
// "operator"), or "" when there is none.
std::string acl_kind_of(std::string_view text, std::string_view name);
// Mesh names that text's ACL blocks grant topics of (kairos/v1/<mesh>/...).
std::vector<std::string> acl_meshes(std::string_view text);
// A mosquitto password file with user's line replaced or appended.
std::string replace_password_line(std::string_view text, std::string_view user, std::string_view hash);
// The hash on user's line of a mosquitto password file, or "".
std::string password_hash_of(std::string_view text, std::string_view user);

struct ProvisionArgs {
  std::string role = "node";  // node, gateway, operator
  std::string name;
  std::string board = "generic-linux";
  std::string cluster = "default";
  std::string mesh;                      // required the first time; then read from <out>/provision.toml
  std::string broker;                    // the same
  std::string out = "kairos-provision";  // bundles: <out>/{gateway,nodes/<n>,operators/<n>,mosquitto}
  std::string keys_dir;                  // default <out>/gateway/etc/kairos/keys
  std::string mosquitto_dir;             // default <out>/mosquitto
  std::string boards_dir;                // board files (to know arches and Wi-Fi)
  std::string node_config;               // a node.toml with the node's inputs, outputs and jobs
  std::string rootfs;                    // install onto a mounted SD-card root
  std::string deb;                       // the kairos-node .deb to install there
  std::string debs_dir = "dist";         // where to look for it (and deps-<arch>/) otherwise
  bool force = false;
  bool new_key = false;
  bool new_password = false;
};

// Parses `provision` arguments; returns an error message or "".
std::string parse_provision_args(const std::vector<std::string>& args, ProvisionArgs& out);
// Runs provisioning; prints what it changed. Returns the exit status.
int provision(const ProvisionArgs& args);

}  // namespace kairos::ctl

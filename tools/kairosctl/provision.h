#pragma once
// kairosctl provision: keys, configs, broker credentials and ACL entries,
// install bundles and SD-card roots (SPEC 7).
#include <string>
#include <string_view>
#include <vector>

#include "common/core/bytes.h"

namespace kairos::ctl {

// Mosquitto 2.0 password hash ($7$ = PBKDF2-HMAC-SHA512, 64 bytes, base64).
std::string mosquitto_hash(std::string_view password, ByteView salt, int iterations = 101);

// ACL blocks, each framed by "# kairos <kind> <name> begin/end" lines.
// A node may publish only its own reports and read only its own commands
// (plus the gateway's broadcasts); a gateway reads and writes its mesh; an
// operator writes control requests and reads control responses.
std::string acl_node(std::string_view mesh, std::string_view cluster, std::string_view node);
std::string acl_gateway(std::string_view mesh, std::string_view gateway);
std::string acl_operator(std::string_view mesh, std::string_view name);

// text with the block framed for (kind, name) replaced by block, or block
// appended when there is none.
std::string replace_acl_block(std::string_view text, std::string_view kind, std::string_view name,
                              std::string_view block);
// A mosquitto password file with user's line replaced or appended.
std::string replace_password_line(std::string_view text, std::string_view user, std::string_view hash);

struct ProvisionArgs {
  std::string role = "node";  // node, gateway, operator
  std::string name;
  std::string board = "generic-linux";
  std::string cluster = "default";
  std::string mesh = "default";
  std::string broker = "tcp://127.0.0.1:1883";
  std::string out = "kairos-provision";  // bundles: <out>/<name>/...
  std::string keys_dir;                  // default <out>/gateway/etc/kairos/keys
  std::string mosquitto_dir;             // default <out>/mosquitto
  std::string boards_dir;                // board files (to know arch and Wi-Fi)
  std::string rootfs;                    // install onto a mounted SD-card root
  std::string deb;                       // the kairos-node .deb to install there
  std::string debs_dir = "dist";         // where to look for it otherwise
  bool force = false;
  bool new_key = false;
};

// Parses `provision` arguments; returns an error message or "".
std::string parse_provision_args(const std::vector<std::string>& args, ProvisionArgs& out);
// Runs provisioning; prints what it wrote. Returns the exit status.
int provision(const ProvisionArgs& args);

}  // namespace kairos::ctl

#pragma once
// kairosctl provision: keys, configs, broker credentials and ACL entries,
// install bundles and SD-card roots (docs/DESIGN.md section 7). Every run is
// one transaction: it changes everything it names, or nothing.
#include <string>
#include <string_view>
#include <vector>

#include "tools/kairosctl/broker_files.h"

namespace kairos::ctl {

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

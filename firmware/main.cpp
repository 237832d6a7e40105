#include <cstdio>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "common/core/config.h"
#include "common/io/files.h"
#include "common/io/log.h"
#include "common/io/process.h"
#include "firmware/node.h"

using namespace kairos;

namespace {

void usage() {
  std::fprintf(stderr,
               "usage: kairos-node --config FILE [--boards DIR] [--dump-config]\n"
               "  --config FILE   node config (default /etc/kairos/node.toml)\n"
               "  --boards DIR    directory of board files (overrides node.boards_dir)\n"
               "  --dump-config   print the effective config and context hash, then exit\n");
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path = "/etc/kairos/node.toml";
  std::string boards;
  bool dump = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) config_path = argv[++i];
    else if (a == "--boards" && i + 1 < argc) boards = argv[++i];
    else if (a == "--dump-config") dump = true;
    else if (a == "--help" || a == "-h") {
      usage();
      return 0;
    } else {
      usage();
      return 2;
    }
  }
  node::NodeConfig config;
  node::NodeKey key;
  try {
    config = node::load_node_config(config_path, boards);
    log::Level level;
    if (log::parse_level(config.log_level, level)) log::set_level(level);
    if (dump) {
      std::printf("%scontext_hash = \"%s\"\n", config.canonical.c_str(), to_hex(config.context_hash).c_str());
      return 0;
    }
    key = node::load_node_key(config);  // a rotated key when there is one (docs/PROTOCOL.md, Key rotation)
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "kairos-node: config error: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kairos-node: %s\n", e.what());
    return 2;
  }
  install_stop_signals();
  log::info("node", "node " + config.id + " (cluster " + config.cluster + ", mesh " + config.mesh +
                        ", board " + config.board.name + ") context " + to_hex(config.context_hash).substr(0, 16));
  if (!key.note.empty()) (key.current.generation > 0 ? log::info : log::warn)("node", key.note);
  try {
    int status;
    {
      node::Node n(std::move(config), std::move(key), config_path, boards);
      status = n.run();
    }
    if (status == node::Node::kRestartStatus) {
      // config_reload accepted: start over on the new file, as at boot.
      log::info("node", "restarting on the reloaded config");
      ::execv("/proc/self/exe", argv);
      std::fprintf(stderr, "kairos-node: restart failed: %s\n", std::strerror(errno));
      return 1;
    }
    return status;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kairos-node: fatal: %s\n", e.what());
    return 1;
  }
}

#include <cstdio>
#include <string>

#include "common/core/config.h"
#include "common/io/log.h"
#include "common/io/process.h"
#include "gateway/gateway.h"

using namespace kairos;

int main(int argc, char** argv) {
  std::string config_path = "/etc/kairos/gateway.toml";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else {
      std::fprintf(stderr, "usage: kairos-gateway [--config FILE]   (default /etc/kairos/gateway.toml)\n");
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  gw::GatewayConfig config;
  try {
    config = gw::load_gateway_config(config_path);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "kairos-gateway: config error: %s\n", e.what());
    return 2;
  }
  // A missing or read-only directory is a setup problem, said before SQLite's "unable to open database file".
  if (auto why = gw::database_problem(config.database); !why.empty()) {
    std::fprintf(stderr, "kairos-gateway: config error: %s: %s\n", config_path.c_str(), why.c_str());
    return 2;
  }
  log::Level level;
  if (log::parse_level(config.log_level, level)) log::set_level(level);
  install_stop_signals();
  try {
    gw::Gateway g(std::move(config));
    return g.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kairos-gateway: %s\n", e.what());
    return 1;
  }
}

// kairos-sim: many simulated nodes against a real broker and gateway (docs/DESIGN.md 7, docs/SIM.md).
#include <cstdio>
#include <string>
#include <vector>

#include "common/io/process.h"
#include "tools/sim/options.h"
#include "tools/sim/sim.h"

using namespace kairos;

int main(int argc, char** argv) {
  sim::SimOptions options;
  bool help = false;
  std::string error;
  if (!sim::parse_options(std::vector<std::string>(argv + 1, argv + argc), options, help, error)) {
    std::fprintf(stderr, "kairos-sim: %s\n(kairos-sim --help lists the options)\n", error.c_str());
    return 2;
  }
  if (help) {
    std::fputs(sim::usage_text().c_str(), stdout);
    return 0;
  }
  install_stop_signals();
  try {
    sim::Simulator simulator(std::move(options));
    return simulator.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "kairos-sim: %s\n", e.what());
    return 1;
  }
}

// libFuzzer target for the config parsers (README, configuration reference):
// the first byte picks the parser, the rest is the file's text. 'n' a node
// config (parse_node_config, boards from the source tree's boards/), 'g' the
// gateway's (load_gateway_config, through an in-memory file), 'c' the
// console's (parse_ctl_config), 'b' a board file (parse_board); any other
// byte picks by its value % 4 in that order.
// Invariants: no crash, no sanitizer report; a parser returns a config or
// throws ConfigError, never another exception; the error names the file
// read, a line inside it and says what is wrong; an accepted config keeps
// the rules its parser states, and parsing the same text again gives the
// same canonical form.
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <set>
#include <string>
#include <string_view>

#include "common/core/board.h"
#include "common/core/config.h"
#include "common/core/topic.h"
#include "firmware/node_config.h"
#include "gateway/gateway_config.h"
#include "tools/kairosctl/ctl_config.h"

using namespace kairos;

namespace {

void require(bool ok, std::string_view what, std::string_view detail = {}) {
  if (ok) return;
  std::fprintf(stderr, "INVARIANT BROKEN: %.*s: %.*s\n", static_cast<int>(what.size()), what.data(),
               static_cast<int>(detail.size()), detail.data());
  std::abort();
}

const std::string kBoards = KAIROS_BOARDS_DIR;

// load_gateway_config reads a path: the text goes to a memory file that
// stands for it, rewritten for each input.
std::string gateway_file(std::string_view text) {
  static const int fd = memfd_create("gateway.toml", 0);
  require(fd >= 0, "memfd_create");
  require(ftruncate(fd, 0) == 0 && pwrite(fd, text.data(), text.size(), 0) == static_cast<ssize_t>(text.size()),
          "writing the gateway config");
  return "/proc/self/fd/" + std::to_string(fd);
}

std::size_t lines(std::string_view text) { return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) + 1; }

// A ConfigError for text read as file (or, for a node, its board file).
void check_error(const ConfigError& e, const std::string& file, std::string_view text, char parser) {
  const bool board_file = parser == 'n' && e.file != file;
  require(e.file == file || (board_file && e.file.rfind(kBoards + "/", 0) == 0 && e.file.ends_with(".toml")),
          "the error names another file", e.what());
  if (!board_file) require(e.line <= lines(text), "the error's line lies outside the file", e.what());
  const std::string where = e.file + ":" + std::to_string(e.line) + ":" + std::to_string(e.column) + ": ";
  const std::string what = e.what();
  require(what.rfind(where, 0) == 0 && what.size() > where.size(), "the message does not start with its place",
          what);
}

void node_config(const std::string& text) {
  auto n = node::parse_node_config(text, "node.toml", kBoards);
  require(valid_name(n.id) && valid_name(n.cluster) && valid_name(n.mesh), "node names");
  require(!n.inputs.empty() && n.inputs.size() <= 8 && n.outputs.size() <= 8 && n.jobs.size() <= 16,
          "counts of inputs, outputs, jobs");
  require(n.mesh_input < n.inputs.size() && n.primary_scale < n.scales && n.taus_s.size() == n.scales,
          "mesh input and scales");
  for (const auto& c : n.capabilities) require(valid_name(c) && c.size() <= 32, "capability", c);
  for (const auto& in : n.inputs) require(in.hi > in.lo, "input range", in.name);
  for (const auto& j : n.jobs) require(!j.command.empty() && j.command[0].rfind('/', 0) == 0, "job command", j.name);
  require(!n.canonical.empty(), "canonical form");
  auto again = node::parse_node_config(text, "node.toml", kBoards);
  require(again.canonical == n.canonical && again.context_hash == n.context_hash, "parsing again differs");
}

void gateway_config(const std::string& text) {
  const auto path = gateway_file(text);
  try {
    auto g = gw::load_gateway_config(path);
    require(valid_name(g.id) && valid_name(g.mesh), "gateway names");
    require(g.unified_leave <= g.unified_enter && g.ball_retry_s <= g.ball_retry_max_s, "gateway ranges");
    std::set<std::string> clusters;
    for (const auto& [sector, members] : g.sectors) {
      require(valid_name(sector) && !members.empty(), "sector", sector);
      for (const auto& c : members) require(valid_name(c) && clusters.insert(c).second, "a sector's cluster", c);
    }
    require(g.alert_hook.empty() || g.alert_hook[0].rfind('/', 0) == 0, "alert hook");
  } catch (const ConfigError& e) {
    check_error(e, path, text, 'g');
  }
}

void ctl_config(const std::string& text) {
  auto c = ctl::parse_ctl_config(text, "kairosctl.toml");
  require(c.timeout_ms >= 100 && c.timeout_ms <= 600'000, "console timeout");
  require(c.broker.uri.find("://") != std::string::npos && c.broker.keepalive_s >= 2, "console broker");
}

void board_config(const std::string& text) {
  std::string canonical, again;
  auto b = parse_board(text, "board.toml", "fuzz", canonical);
  require(!b.arches.empty() && b.tau_base_s <= b.tau_max_s, "board");
  require(b.device_class >= kairos_v1_DeviceClass_CLASS_A && b.device_class <= kairos_v1_DeviceClass_CLASS_F,
          "board device class");
  parse_board(text, "board.toml", "fuzz", again);
  require(again == canonical, "parsing the board again differs");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static constexpr char kParsers[] = {'n', 'g', 'c', 'b'};
  char parser = static_cast<char>(data[0]);
  if (std::find(std::begin(kParsers), std::end(kParsers), parser) == std::end(kParsers)) parser = kParsers[data[0] % 4];
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::string file = parser == 'n' ? "node.toml" : parser == 'c' ? "kairosctl.toml" : "board.toml";
  try {
    switch (parser) {
      case 'n': node_config(text); break;
      case 'g': gateway_config(text); break;
      case 'c': ctl_config(text); break;
      default: board_config(text); break;
    }
  } catch (const ConfigError& e) {
    check_error(e, file, text, parser);
  } catch (const std::exception& e) {
    require(false, "an exception other than ConfigError", e.what());
  } catch (...) {
    require(false, "an exception other than ConfigError", "not a std::exception");
  }
  return 0;
}

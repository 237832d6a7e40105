// The README's configuration reference against the parsers: every key that
// the node, board, gateway and console parsers accept is in a README key
// table, every key in a table is accepted, and every TOML example in
// README.md and docs/*.md loads.
//
// How the README's key tables read (keep to this when editing them):
// - Only the "## Configuration reference" section counts. Its "### Node",
//   "### Outputs", "### Board files", "### Gateway" and "### Console"
//   subsections document the node (the first two), board, gateway and
//   console files.
// - A key table is a Markdown table whose header's first cell is `key`. In
//   each row's first cell, every backticked word of key characters
//   (letters, digits, `_ - < > * .`) is a key; anything else there (bold
//   labels, prose, `"quoted"` values) is ignored.
// - A key that starts with `.` continues the row's or the previous row's
//   last full key: after `inputs.<name>.lo`, `.hi` is `inputs.<name>.hi`.
// - A subsection whose heading names a table in backticks and brackets
//   (`[outputs.<name>]`) holds keys relative to it: `kind` there is
//   `outputs.<name>.kind`.
// - Named tables are written with a placeholder: `inputs.<name>.`,
//   `outputs.<name>.`, `jobs.<name>.` (node), `sectors.<name>.` (gateway),
//   `pins.<pin>` (board). An output's channel keys are
//   `<channel>_from`, `<channel>_in`, `<channel>_out`, and every channel
//   name is written in backticks in the Outputs subsection.
// - `broker.*` stands for every `broker.` key of the Node table.
//
// The examples: every ```toml block in README.md and docs/*.md is preceded
// (blank lines aside) by a marker line, `<!-- config: node -->` or
// `<!-- config: gateway -->`. A node example without a [node] table is
// checked after a minimal one (id, key_file) and, if it has no input, one
// synthetic input; a gateway example without a [gateway] table after a
// minimal one (id, mesh, keys_dir, database).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/core/board.h"
#include "common/core/config.h"
#include "common/io/files.h"
#include "firmware/node_config.h"
#include "firmware/outputs/output.h"
#include "gateway/gateway_config.h"
#include "tests/unit/scratch.h"
#include "tools/kairosctl/ctl_config.h"

namespace kairos {
namespace {

namespace fs = std::filesystem;
using Keys = std::set<std::string>;

const std::string kSource = KAIROS_SOURCE_DIR;

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// ---- the README's side -------------------------------------------------

struct Documented {
  std::map<std::string, Keys> by_file;  // "node", "board", "gateway", "console"
  std::string outputs_text;             // the Outputs subsection, for channel names
};

std::string file_of(const std::string& heading) {
  for (const auto& [word, file] : std::vector<std::pair<std::string, std::string>>{
           {"### Node", "node"}, {"### Outputs", "node"}, {"### Board files", "board"},
           {"### Gateway", "gateway"}, {"### Console", "console"}})
    if (heading.rfind(word, 0) == 0) return file;
  return "";
}

Documented documented_keys(const std::string& readme) {
  Documented d;
  auto lines = lines_of(readme);
  auto start = std::find(lines.begin(), lines.end(), "## Configuration reference");
  EXPECT_NE(start, lines.end()) << "README.md has no \"## Configuration reference\" section";
  if (start == lines.end()) return d;
  const std::regex key_word("^[A-Za-z0-9_<>*.-]+$");
  const std::regex table_in_heading("`\\[([^\\]]+)\\]`");
  std::string file, prefix;
  bool key_table = false, header = false, in_outputs = false;
  std::map<std::string, Keys> wildcards;  // file -> prefixes given as `x.*`
  std::string last_full;
  for (auto it = start + 1; it != lines.end() && it->rfind("## ", 0) != 0; ++it) {
    const std::string& line = *it;
    if (line.rfind("### ", 0) == 0) {
      file = file_of(line);
      std::smatch m;
      prefix = std::regex_search(line, m, table_in_heading) ? m[1].str() + "." : "";
      key_table = header = false;
      in_outputs = line.rfind("### Outputs", 0) == 0;
      continue;
    }
    if (in_outputs) d.outputs_text += line + "\n";
    if (line.rfind("|", 0) != 0) {
      key_table = header = false;
      continue;
    }
    auto cells_end = line.find('|', 1);
    std::string first = line.substr(1, cells_end == std::string::npos ? std::string::npos : cells_end - 1);
    if (!key_table && !header) {  // a table's header row
      header = true;
      key_table = first.find("key") != std::string::npos && first.find_first_not_of(" key") == std::string::npos;
      continue;
    }
    if (!key_table || file.empty() || first.find("---") != std::string::npos) continue;
    for (std::size_t pos = first.find('`'); pos != std::string::npos;) {
      auto end = first.find('`', pos + 1);
      if (end == std::string::npos) break;
      std::string word = first.substr(pos + 1, end - pos - 1);
      pos = first.find('`', end + 1);
      if (!std::regex_match(word, key_word)) continue;
      if (word.size() > 2 && word.substr(word.size() - 2) == ".*") {
        wildcards[file].insert(word.substr(0, word.size() - 1));
        continue;
      }
      std::string key;
      if (word[0] == '.') {
        EXPECT_FALSE(last_full.empty()) << "README: '" << word << "' continues no key";
        key = last_full.substr(0, last_full.rfind('.')) + word;
      } else {
        key = prefix + word;
      }
      last_full = key;
      d.by_file[file].insert(key);
    }
  }
  // `broker.*`: the broker keys of the Node table.
  for (const auto& [f, prefixes] : wildcards)
    for (const auto& p : prefixes)
      for (const auto& k : d.by_file["node"])
        if (k.rfind(p, 0) == 0) d.by_file[f].insert(k);
  return d;
}

// ---- the parsers' side -------------------------------------------------

// "inputs.mic.kind" -> "inputs.<name>.kind" for the named tables of a file.
Keys normalised(const Keys& keys, const std::vector<std::string>& named, const std::string& placeholder) {
  std::set<std::string> channels;
  for (const char* kind : {"speaker", "motor", "led", "text", "mqtt"})
    for (const auto& [name, map] : node::default_channels(kind)) channels.insert(name);
  Keys out;
  for (std::string k : keys) {
    for (const auto& table : named) {
      if (k.rfind(table + ".", 0) != 0) continue;
      auto dot = k.find('.', table.size() + 1);
      k = table + "." + placeholder + (dot == std::string::npos ? "" : k.substr(dot));
    }
    if (k.rfind("outputs.<name>.", 0) == 0)
      for (const auto& ch : channels)
        for (const char* suffix : {"_from", "_in", "_out"})
          if (k == "outputs.<name>." + ch + suffix) k = "outputs.<name>.<channel>" + std::string(suffix);
    out.insert(k);
  }
  return out;
}

// Every branch of the node parser: each input kind (both pipe sources, both
// sensor sources), each output kind and driver, a job. Two files, as a node
// takes at most 8 inputs. Keys are noted as read, with or without a value.
const char* kNodeA = R"(
[node]
id = "doc-node"
key_file = "/etc/kairos/node.key"
board = "pi-4-b"
broadcast_key_file = "/etc/kairos/broadcast.key"
[inputs.syn]
kind = "synthetic"
[inputs.temp]
kind = "temperature"
device = "iio:device0"
[inputs.w1]
kind = "temperature"
source = "w1"
device = "28-0000012345ab"
[inputs.button]
kind = "gpio"
line = "GPIO5"
[inputs.mic]
kind = "microphone"
[inputs.cam]
kind = "camera"
[inputs.fifo]
kind = "pipe"
path = "/run/kairos/level.fifo"
[inputs.words]
kind = "llm"
topic = "lab/tokens"
[outputs.tone]
kind = "speaker"
source = "local:syn"
[outputs.motor_gpio]
kind = "motor"
source = "local:syn/1"
[outputs.motor_pwm]
kind = "motor"
source = "mesh"
driver = "sysfs"
[outputs.led_pwm]
kind = "led"
source = "local:syn"
[outputs.led_gpio]
kind = "led"
source = "local:syn"
driver = "gpio"
[outputs.log]
kind = "text"
source = "local:syn"
[outputs.api]
kind = "mqtt"
source = "local:syn"
topic = "lab/phase"
[jobs.hash]
command = ["/usr/bin/sha256sum"]
)";

const char* kNodeB = R"(
[node]
id = "doc-node"
key_file = "/etc/kairos/node.key"
[inputs.press]
kind = "pressure"
device = "iio:device1"
[inputs.hum]
kind = "humidity"
device = "iio:device1"
[inputs.topic_pipe]
kind = "pipe"
topic = "lab/level"
[inputs.llm_fifo]
kind = "llm"
path = "/run/kairos/tokens.fifo"
)";

// Every key of every shipped board file, as read (pins by their names).
Keys board_keys_read() {
  KeyLog log;
  for (const auto& name : board_names(kSource + "/boards")) {
    std::string file = kSource + "/boards/" + name + ".toml", canonical;
    EXPECT_NO_THROW(parse_board(slurp(file), file, name, canonical)) << file;
  }
  return log.keys();
}

Keys board_parser_keys() { return normalised(board_keys_read(), {"pins"}, "<pin>"); }

// The node's own keys: the board file it loads is read through the same
// config layer, so the board's keys are taken out.
Keys node_parser_keys(const test::ScratchDir& dir) {
  Keys read;
  {
    KeyLog log;
    for (const char* text : {kNodeA, kNodeB}) {
      auto path = dir.write("node.toml", text);
      EXPECT_NO_THROW(node::load_node_config(path, kSource + "/boards")) << text;
    }
    read = log.keys();
  }
  for (const auto& k : board_keys_read()) read.erase(k);
  return normalised(read, {"inputs", "outputs", "jobs"}, "<name>");
}

Keys gateway_parser_keys(const test::ScratchDir& dir) {
  KeyLog log;
  auto path = dir.write("gateway.toml", "[gateway]\nid = \"gw\"\nmesh = \"m\"\nkeys_dir = \"" + dir.file("keys") +
                                           "\"\ndatabase = \"" + dir.file("gateway.db") +
                                           "\"\n[sectors.north]\nclusters = [\"c1\"]\n");
  EXPECT_NO_THROW(gw::load_gateway_config(path));
  return normalised(log.keys(), {"sectors"}, "<name>");
}

Keys console_parser_keys() {
  KeyLog log;
  EXPECT_NO_THROW(ctl::parse_ctl_config("", "kairosctl.toml"));
  return log.keys();
}

std::string listed(const Keys& keys) {
  std::string out;
  for (const auto& k : keys) out += "  " + k + "\n";
  return out;
}

void expect_same(const std::string& file, const Keys& parsed, const Keys& documented) {
  Keys undocumented, unknown;
  std::set_difference(parsed.begin(), parsed.end(), documented.begin(), documented.end(),
                      std::inserter(undocumented, undocumented.end()));
  std::set_difference(documented.begin(), documented.end(), parsed.begin(), parsed.end(),
                      std::inserter(unknown, unknown.end()));
  EXPECT_TRUE(undocumented.empty()) << file << " keys the parser accepts but README.md's tables lack:\n"
                                    << listed(undocumented);
  EXPECT_TRUE(unknown.empty()) << file << " keys in README.md's tables that the parser does not accept:\n"
                               << listed(unknown);
}

TEST(ConfigKeys, KeyLogNotesEveryKeyAskedFor) {
  KeyLog log;
  Config cfg("[a]\nx = 1\n", "t.toml");
  auto a = cfg.root().section("a");
  a.num("x", 0, 10);
  a.str("absent", "d");
  cfg.root().section("b").boolean("flag", false);
  EXPECT_EQ(log.keys(), (Keys{"a.absent", "a.x", "b.flag"}));
}

TEST(ConfigKeys, EveryNodeKeyIsInTheReadme) {
  test::ScratchDir dir("keys");
  auto doc = documented_keys(slurp(kSource + "/README.md"));
  expect_same("node", node_parser_keys(dir), doc.by_file["node"]);
  for (const char* kind : {"speaker", "motor", "led", "text", "mqtt"})
    for (const auto& [name, map] : node::default_channels(kind))
      EXPECT_NE(doc.outputs_text.find("`" + name + "`"), std::string::npos)
          << "the " << kind << " channel `" << name << "` is not named in README.md's Outputs subsection";
}

TEST(ConfigKeys, EveryBoardKeyIsInTheReadme) {
  auto doc = documented_keys(slurp(kSource + "/README.md"));
  expect_same("board file", board_parser_keys(), doc.by_file["board"]);
}

TEST(ConfigKeys, EveryGatewayKeyIsInTheReadme) {
  test::ScratchDir dir("keys");
  auto doc = documented_keys(slurp(kSource + "/README.md"));
  expect_same("gateway", gateway_parser_keys(dir), doc.by_file["gateway"]);
}

TEST(ConfigKeys, EveryConsoleKeyIsInTheReadme) {
  auto doc = documented_keys(slurp(kSource + "/README.md"));
  expect_same("console", console_parser_keys(), doc.by_file["console"]);
}

// ---- the examples ------------------------------------------------------

struct Example {
  std::string where;  // file:line
  std::string kind;   // node, gateway, or "" when unmarked
  std::string text;
};

std::vector<Example> examples() {
  std::vector<std::string> files = {kSource + "/README.md"};
  for (const auto& e : fs::directory_iterator(kSource + "/docs"))
    if (e.path().extension() == ".md") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  const std::regex marker("^<!-- config: ([a-z]+) -->$");
  std::vector<Example> out;
  for (const auto& f : files) {
    auto lines = lines_of(slurp(f));
    for (std::size_t i = 0; i < lines.size(); ++i) {
      if (lines[i] != "```toml") continue;
      Example ex;
      ex.where = fs::path(f).filename().string() + ":" + std::to_string(i + 1);
      for (std::size_t j = i; j-- > 0;) {
        if (lines[j].empty()) continue;
        std::smatch m;
        if (std::regex_match(lines[j], m, marker)) ex.kind = m[1].str();
        break;
      }
      for (++i; i < lines.size() && lines[i] != "```"; ++i) ex.text += lines[i] + "\n";
      out.push_back(ex);
    }
  }
  return out;
}

TEST(ConfigExamples, EveryTomlExampleLoads) {
  test::ScratchDir dir("examples");
  auto all = examples();
  EXPECT_GE(all.size(), 6u);
  int checked = 0;
  for (const auto& ex : all) {
    std::string text = ex.text;
    const bool has_table = text.find("[" + ex.kind + "]") != std::string::npos;
    try {
      if (ex.kind == "node") {
        if (!has_table) {
          if (text.find("[inputs.") == std::string::npos) text = "[inputs.example]\nkind = \"synthetic\"\n" + text;
          text = "[node]\nid = \"example\"\nkey_file = \"/etc/kairos/node.key\"\n" + text;
        }
        node::load_node_config(dir.write("node.toml", text), kSource + "/boards");
      } else if (ex.kind == "gateway") {
        if (!has_table)
          text = "[gateway]\nid = \"gw\"\nmesh = \"m\"\nkeys_dir = \"" + dir.file("keys") + "\"\ndatabase = \"" +
                 dir.file("gateway.db") + "\"\n" + text;
        gw::load_gateway_config(dir.write("gateway.toml", text));
      } else {
        ADD_FAILURE() << ex.where << ": a ```toml block without a <!-- config: node --> or <!-- config: gateway --> marker";
        continue;
      }
      ++checked;
    } catch (const std::exception& e) {
      ADD_FAILURE() << ex.where << ": " << e.what() << "\n" << text;
    }
  }
  EXPECT_EQ(checked, static_cast<int>(all.size()));
}

}  // namespace
}  // namespace kairos

#include "tools/kairosctl/node_bundle.h"

#include <toml++/toml.h>

#include <filesystem>
#include <sstream>

#include "common/core/config.h"
#include "common/io/files.h"
#include "firmware/node_config.h"
#include "tools/kairosctl/rootfs.h"

namespace kairos::ctl {

namespace fs = std::filesystem;

std::string node_config_text(const ProvisionArgs& a, const std::string& mesh, const std::string& broker,
                             const std::optional<TlsNames>& tls) {
  toml::table t;
  std::string origin = "kairosctl provision for board " + a.board;
  if (!a.node_config.empty()) {
    try {
      t = toml::parse(read_config_file(a.node_config), a.node_config);
    } catch (const toml::parse_error& e) {
      throw ConfigError(a.node_config, static_cast<std::uint32_t>(e.source().begin.line),
                        static_cast<std::uint32_t>(e.source().begin.column), "", std::string(e.description()));
    }
    origin += " from " + a.node_config;
  } else {
    t.insert("inputs", toml::table{{"demo", toml::table{{"kind", "synthetic"}, {"waveform", "sine"}}}});
  }
  auto section = [&](const char* name) -> toml::table& {
    if (!t.contains(name)) t.insert(name, toml::table{});
    auto* s = t[name].as_table();
    if (!s) throw ConfigError(a.node_config, 0, 0, name, "expected a table");
    return *s;
  };
  auto& node = section("node");
  node.insert_or_assign("id", a.name);
  node.insert_or_assign("cluster", a.cluster);
  node.insert_or_assign("mesh", mesh);
  node.insert_or_assign("board", a.board);
  node.insert_or_assign("boards_dir", "/usr/share/kairos/boards");
  node.insert_or_assign("key_file", "/etc/kairos/node.key");
  auto& b = section("broker");
  b.insert_or_assign("uri", broker);
  b.insert_or_assign("username", a.name);
  b.insert_or_assign("password_file", "/etc/kairos/broker.password");
  for (const char* k : {"ca_file", "cert_file", "key_file"}) b.erase(k);
  if (tls) {
    b.insert_or_assign("ca_file", tls->ca());
    b.insert_or_assign("cert_file", tls->cert());
    b.insert_or_assign("key_file", tls->key());
  }
  // [node] and [broker] first, as people write them; the rest as given.
  std::ostringstream ss;
  ss << "# Written by " << origin << ".\n[node]\n" << toml::toml_formatter(node) << "\n\n[broker]\n"
     << toml::toml_formatter(b) << "\n";
  t.erase("node");
  t.erase("broker");
  if (!t.empty()) ss << "\n" << toml::toml_formatter(t) << "\n";
  return ss.str();
}

void check_node_config(const ProvisionArgs& a, const std::string& text, std::vector<std::string>& writes,
                       std::vector<std::string>& reads) {
  node::NodeConfig n;
  try {
    std::string from = a.node_config.empty() ? "node.toml" : "the node.toml made from " + a.node_config;
    n = node::parse_node_config(text, from, a.boards_dir.empty() ? KAIROS_BOARDS_DIR : a.boards_dir);
  } catch (const ConfigError& e) {
    throw Refusal("config error: " + std::string(e.what()), 2);
  }
  auto plain = [&](const std::string& key, const std::string& topic) {
    for (char c : topic)
      if (static_cast<unsigned char>(c) <= ' ')
        throw ConfigError(a.node_config, 0, 0, key, "topic '" + topic + "' has a space or control character; the broker's ACL cannot grant it");
  };
  for (const auto& o : n.outputs)
    if (o.kind == "mqtt") {
      plain("outputs." + o.name + ".topic", o.topic);
      writes.push_back(o.topic);
    }
  for (const auto& i : n.inputs)
    if (!i.pipe.topic.empty()) {
      plain("inputs." + i.name + ".topic", i.pipe.topic);
      reads.push_back(i.pipe.topic);
    }
}

BoardConfig load_board(const ProvisionArgs& a) {
  std::string dir = a.boards_dir.empty() ? KAIROS_BOARDS_DIR : a.boards_dir;
  std::string file = dir + "/" + a.board + ".toml";
  if (!fs::exists(file)) {
    std::string known;
    for (const auto& b : board_names(dir)) known += (known.empty() ? "" : ", ") + b;
    throw Refusal("provision: no board '" + a.board + "' in " + dir +
                      (known.empty() ? " (no board files there: give --boards DIR)" : "; the boards are: " + known),
                  2);
  }
  std::string canonical;
  return parse_board(read_config_file(file), file, a.board, canonical);
}

}  // namespace kairos::ctl

#include <gtest/gtest.h>

#include "common/core/config.h"

using namespace kairos;

namespace {

// Reads a small node-like schema; returns the dump.
std::string read_schema(const std::string& text) {
  Config cfg(text, "node.toml");
  auto root = cfg.root();
  auto node = root.section("node");
  node.str("id");
  node.num("heartbeat_period_s", 5.0, 0.1, 3600);
  node.integer("scales", 4, 1, 8);
  node.boolean("verbose", false);
  node.strings("capabilities", 4);
  for (auto& [name, in] : root.sections("inputs")) in.choice("kind", "synthetic", {"synthetic", "pipe"});
  cfg.finish();
  return cfg.dump();
}

ConfigError error_of(const std::string& text) {
  try {
    read_schema(text);
  } catch (const ConfigError& e) {
    return e;
  }
  ADD_FAILURE() << "no error for:\n" << text;
  return ConfigError("", 0, 0, "", "");
}

}  // namespace

TEST(Config, DefaultsAreDumpedSorted) {
  auto dump = read_schema("[node]\nid = \"n1\"\n");
  EXPECT_EQ(dump,
            "node.capabilities = []\n"
            "node.heartbeat_period_s = 5.0\n"
            "node.id = \"n1\"\n"
            "node.scales = 4\n"
            "node.verbose = false\n");
}

TEST(Config, SameMeaningSameDump) {
  auto a = read_schema("[node]\nid = \"n1\"\nheartbeat_period_s = 5\n");
  auto b = read_schema("# comment\n[node]\nheartbeat_period_s = 5.0\n\nid=\"n1\"\n");
  EXPECT_EQ(a, b);
}

TEST(Config, UnknownKeyNamesPlace) {
  auto e = error_of("[node]\nid = \"n1\"\n  colour = 3\n");
  EXPECT_EQ(e.file, "node.toml");
  EXPECT_EQ(e.line, 3u);
  EXPECT_EQ(e.column, 3u);
  EXPECT_EQ(e.key, "node.colour");
  EXPECT_NE(std::string(e.what()).find("node.toml:3:3: key 'node.colour': unknown key"), std::string::npos)
      << e.what();
}

TEST(Config, UnknownTableNamesPlace) {
  auto e = error_of("[node]\nid = \"n1\"\n[nod]\nx = 1\n");
  EXPECT_EQ(e.line, 3u);
  EXPECT_EQ(e.key, "nod");
}

TEST(Config, WrongType) {
  auto e = error_of("[node]\nid = 5\n");
  EXPECT_EQ(e.line, 2u);
  EXPECT_EQ(e.column, 6u);
  EXPECT_EQ(e.key, "node.id");
  EXPECT_NE(std::string(e.what()).find("expected a string, got an integer"), std::string::npos);
}

TEST(Config, OutOfRange) {
  auto e = error_of("[node]\nid = \"n\"\nscales = 9\n");
  EXPECT_EQ(e.key, "node.scales");
  EXPECT_EQ(e.line, 3u);
  auto f = error_of("[node]\nid = \"n\"\nheartbeat_period_s = 0.0\n");
  EXPECT_EQ(f.key, "node.heartbeat_period_s");
}

TEST(Config, MissingRequired) {
  auto e = error_of("[node]\nscales = 2\n");
  EXPECT_EQ(e.key, "node.id");
  EXPECT_EQ(e.line, 1u);
  EXPECT_NE(std::string(e.what()).find("missing"), std::string::npos);
}

TEST(Config, SyntaxError) {
  auto e = error_of("[node]\nid = \"n1\nscales = 2\n");
  EXPECT_EQ(e.file, "node.toml");
  EXPECT_EQ(e.line, 2u);
  EXPECT_GT(e.column, 0u);
}

TEST(Config, NamedSectionsInFileOrder) {
  Config cfg("[inputs.zeta]\nkind = \"pipe\"\n[inputs.alpha]\n", "x.toml");
  auto secs = cfg.root().sections("inputs");
  ASSERT_EQ(secs.size(), 2u);
  EXPECT_EQ(secs[0].first, "zeta");
  EXPECT_EQ(secs[1].first, "alpha");
  EXPECT_EQ(secs[0].second.choice("kind", "synthetic", {"synthetic", "pipe"}), "pipe");
  EXPECT_EQ(secs[1].second.choice("kind", "synthetic", {"synthetic", "pipe"}), "synthetic");
  cfg.finish();
}

TEST(Config, BadChoice) {
  auto e = error_of("[node]\nid = \"n\"\n[inputs.a]\nkind = \"laser\"\n");
  EXPECT_EQ(e.key, "inputs.a.kind");
  EXPECT_EQ(e.line, 4u);
}

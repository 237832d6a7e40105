#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "common/core/board.h"
#include "common/core/config.h"
#include "common/io/files.h"
#include "firmware/node_config.h"
#include "tests/unit/scratch.h"

using namespace kairos;
using namespace kairos::node;
using kairos::test::ScratchDir;
namespace fs = std::filesystem;

namespace {

class NodeConfigTest : public ::testing::Test {
 protected:
  std::string write(const std::string& name, const std::string& text) { return scratch_.write(name, text); }
  std::string node(const std::string& body) {
    return write("node.toml", "[node]\nid = \"n1\"\nkey_file = \"/k\"\n" + body);
  }
  ScratchDir scratch_{"cfg"};
  const fs::path& dir_ = scratch_.path();
};

const std::string kBoards = std::string(KAIROS_SOURCE_DIR) + "/boards";

}  // namespace

TEST_F(NodeConfigTest, ScalesComeFromTheBoard) {
  auto c = load_node_config(node("board = \"pi-zero\"\n[inputs.a]\n[inputs.b]\nmesh = true\n"), kBoards);
  EXPECT_EQ(c.board.arches, (std::vector<std::string>{"armhf", "armel"}));
  EXPECT_EQ(c.board.device_class, kairos_v1_DeviceClass_CLASS_A);
  ASSERT_EQ(c.taus_s.size(), 4u);
  EXPECT_DOUBLE_EQ(c.taus_s[0], 0.01);
  EXPECT_DOUBLE_EQ(c.taus_s[3], 1.0);
  EXPECT_NEAR(c.taus_s[1] / c.taus_s[0], c.taus_s[2] / c.taus_s[1], 1e-9);  // log-spaced
  EXPECT_EQ(c.mesh_input, 1u);
  EXPECT_EQ(c.cluster, "default");
  EXPECT_EQ(c.board.gpio_chip_label, "pinctrl-bcm2835");
}

TEST_F(NodeConfigTest, TwoMeshInputsAreRefused) {
  try {
    load_node_config(node("[inputs.a]\nmesh = true\n[inputs.b]\nmesh = true\n"), kBoards);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key, "inputs.b.mesh");
    EXPECT_EQ(e.line, 7u);
  }
}

TEST_F(NodeConfigTest, PrimaryScaleMustExist) {
  try {
    load_node_config(node("scales = 2\nprimary_scale = 2\n[inputs.a]\n"), kBoards);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key, "node.primary_scale");
  }
}

TEST_F(NodeConfigTest, NoInputIsAnError) {
  try {
    load_node_config(node(""), kBoards);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key, "inputs");
  }
}

TEST_F(NodeConfigTest, ContextHashIgnoresIdentityButNotSettings) {
  auto a = load_node_config(node("[inputs.a]\n"), kBoards);
  auto b = load_node_config(write("b.toml", "[node]\nid = \"other\"\nkey_file = \"/elsewhere\"\n[inputs.a]\n"), kBoards);
  EXPECT_EQ(a.context_hash, b.context_hash);
  EXPECT_NE(a.canonical, b.canonical);
  auto c = load_node_config(node("[inputs.a]\nperiod_s = 2\n"), kBoards);
  EXPECT_NE(a.context_hash, c.context_hash);
  auto d = load_node_config(node("board = \"pi-4-b\"\n[inputs.a]\n"), kBoards);
  EXPECT_NE(a.context_hash, d.context_hash);  // the board is part of the context
}

TEST_F(NodeConfigTest, BadBoardFileNamesItsPlace) {
  fs::create_directories(dir_ / "boards");
  std::ofstream((dir_ / "boards" / "mine.toml").string()) << "[board]\narch = [\"sparc\"]\ntau_base_s = 1\ntau_max_s = 2\n";
  try {
    load_node_config(node("board = \"mine\"\n[inputs.a]\n"), (dir_ / "boards").string());
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key, "board.arch");
    EXPECT_EQ(e.line, 2u);
    EXPECT_NE(e.file.find("mine.toml"), std::string::npos);
  }
}

TEST_F(NodeConfigTest, UnknownBoardListsTheBoards) {
  write("boards/b-two.toml", "");
  write("boards/a-one.toml", "");
  write("boards/notes.txt", "");
  EXPECT_EQ(board_names((dir_ / "boards").string()), (std::vector<std::string>{"a-one", "b-two"}));
  EXPECT_TRUE(board_names((dir_ / "absent").string()).empty());
  try {
    load_node_config(node("board = \"pi-5\"\n[inputs.a]\n"), (dir_ / "boards").string());
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key, "node.board");
    EXPECT_EQ(e.line, 4u);
    std::string want = "no board 'pi-5' in " + (dir_ / "boards").string() + " (boards: a-one, b-two)";
    EXPECT_NE(std::string(e.what()).find(want), std::string::npos) << e.what();
  }
  try {
    load_node_config(node("board = \"pi-5\"\n[inputs.a]\n"), (dir_ / "absent").string());
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("(no board files there)"), std::string::npos) << e.what();
  }
}

TEST_F(NodeConfigTest, BoardArchesAreCheckedWithTheirPlace) {
  struct Case {
    const char* arch;
    const char* error;  // empty: accepted
  };
  const Case cases[] = {
      {"[\"armhf\", \"armel\"]", ""},
      {"[\"arm64\"]", ""},
      {"\"armhf\"", "expected an array of strings"},
      {"[]", "at least one architecture"},
      {"[\"armhf\", \"sparc\"]", "'sparc' is not one of armel, armhf, arm64, native"},
      {"[\"arm64\", \"armhf\", \"arm64\"]", "'arm64' is listed twice"},
  };
  for (const auto& c : cases) {
    std::string text = std::string("[board]\narch = ") + c.arch + "\ntau_base_s = 1\ntau_max_s = 2\n";
    std::string canonical;
    try {
      auto b = parse_board(text, "b.toml", "b", canonical);
      EXPECT_STREQ(c.error, "") << c.arch;
      EXPECT_FALSE(b.arches.empty()) << c.arch;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(c.error), "") << c.arch << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find(c.error), std::string::npos) << e.what();
      EXPECT_EQ(e.key, "board.arch");
      EXPECT_EQ(e.line, 2u);
      EXPECT_EQ(e.file, "b.toml");
    }
  }
  std::string canonical;
  EXPECT_THROW(parse_board("[board]\ntau_base_s = 1\ntau_max_s = 2\n", "b.toml", "b", canonical), ConfigError)
      << "a board without arch";
}

// Every shipped board file loads and says what docs/DESIGN.md 3.2 asks of it.
TEST(Boards, EveryBoardFileIsValid) {
  using Arches = std::vector<std::string>;
  struct Expect {
    const char* name;
    Arches arches;
    double base, max;
    bool wifi;
    const char* chip_label;
  };
  const Expect boards[] = {
      {"pi-zero", {"armhf", "armel"}, 0.01, 1, false, "pinctrl-bcm2835"},
      {"pi-zero-w", {"armhf", "armel"}, 0.01, 1, true, "pinctrl-bcm2835"},
      {"pi-zero-2-w", {"arm64", "armhf"}, 0.01, 1, true, "pinctrl-bcm2835"},
      {"pi-2-b", {"armhf"}, 60, 3600, false, "pinctrl-bcm2835"},
      {"pi-3-b", {"arm64", "armhf"}, 1, 60, true, "pinctrl-bcm2835"},
      {"pi-4-b", {"arm64", "armhf"}, 1, 60, true, "pinctrl-bcm2711"},
      {"pi-5-b", {"arm64"}, 1, 60, true, "pinctrl-rp1"},
      {"generic-linux", {"native"}, 0.1, 10, false, ""},
  };
  std::vector<std::string> names;
  for (const auto& e : boards) names.push_back(e.name);
  std::sort(names.begin(), names.end());
  EXPECT_EQ(board_names(kBoards), names) << "a board file without a check here, or a check without a file";
  for (const auto& e : boards) {
    std::ifstream in(kBoards + "/" + e.name + ".toml");
    ASSERT_TRUE(in) << e.name;
    std::string text((std::istreambuf_iterator<char>(in)), {});
    std::string canonical;
    auto b = parse_board(text, e.name, e.name, canonical);
    EXPECT_EQ(b.arches, e.arches) << e.name;
    EXPECT_DOUBLE_EQ(b.tau_base_s, e.base) << e.name;
    EXPECT_DOUBLE_EQ(b.tau_max_s, e.max) << e.name;
    EXPECT_EQ(b.wifi, e.wifi) << e.name;
    EXPECT_EQ(b.gpio_chip_label, e.chip_label) << e.name;
    EXPECT_FALSE(b.cpu.empty()) << e.name;
    if (e.arches != Arches{"native"}) {
      EXPECT_GE(b.pins.size(), 8u) << e.name;
      for (const auto& [pin, line] : b.pins) EXPECT_EQ(line.rfind("GPIO", 0), 0u) << e.name << " " << pin;
    }
  }
}

TEST_F(NodeConfigTest, JobsTablesAreReadWithDefaultsAndHashed) {
  auto c = load_node_config(node("[inputs.a]\n[jobs.hash]\ncommand = [\"/usr/bin/sha256sum\"]\ntimeout_ms = 5000\n"
                                 "[jobs.echo-args]\ncommand = [\"/bin/echo\", \"-n\", \"two words\"]\n"),
                            kBoards);
  ASSERT_EQ(c.jobs.size(), 2u);
  EXPECT_EQ(c.jobs[0].name, "hash");
  EXPECT_EQ(c.jobs[0].command, std::vector<std::string>{"/usr/bin/sha256sum"});
  EXPECT_EQ(c.jobs[0].timeout_ms, 5000u);
  EXPECT_EQ(c.jobs[0].max_output, 4096u);
  EXPECT_EQ(c.jobs[1].name, "echo-args");
  EXPECT_EQ(c.jobs[1].command, (std::vector<std::string>{"/bin/echo", "-n", "two words"}));
  EXPECT_EQ(c.jobs[1].timeout_ms, 10'000u);
  // Part of the canonical dump, defaults included, and so of the context hash.
  EXPECT_NE(c.canonical.find("jobs.hash.command = [\"/usr/bin/sha256sum\"]\n"), std::string::npos) << c.canonical;
  EXPECT_NE(c.canonical.find("jobs.hash.max_output = 4096\n"), std::string::npos) << c.canonical;
  EXPECT_NE(c.canonical.find("jobs.echo-args.timeout_ms = 10000\n"), std::string::npos) << c.canonical;
  auto without = load_node_config(node("[inputs.a]\n"), kBoards);
  EXPECT_TRUE(without.jobs.empty());
  EXPECT_NE(c.context_hash, without.context_hash);
  auto longer = load_node_config(node("[inputs.a]\n[jobs.hash]\ncommand = [\"/usr/bin/sha256sum\"]\ntimeout_ms = 6000\n"
                                      "[jobs.echo-args]\ncommand = [\"/bin/echo\", \"-n\", \"two words\"]\n"),
                                 kBoards);
  EXPECT_NE(c.context_hash, longer.context_hash);
}

// Every job table error names the file, line, column and key (docs/DESIGN.md 3.1).
TEST_F(NodeConfigTest, JobsTableErrorsNameTheirPlace) {
  struct Case {
    const char* table;  // starts on line 5 (after [node] and [inputs.a])
    const char* key;
    std::uint32_t line, column;
    const char* says;
  };
  const Case cases[] = {
      {"[jobs.hash]\ntimeout_ms = 5\n", "jobs.hash.command", 5, 1, "argv is needed"},
      {"[jobs.hash]\ncommand = []\n", "jobs.hash.command", 6, 11, "argv is needed"},
      {"[jobs.hash]\ncommand = \"/usr/bin/sha256sum\"\n", "jobs.hash.command", 6, 11, "expected an array of strings"},
      {"[jobs.hash]\ncommand = [\"sha256sum\"]\n", "jobs.hash.command", 6, 11, "not an absolute path"},
      {"[jobs.hash]\ncommand = [\"/bin/x\", 3]\n", "jobs.hash.command", 6, 11, "expected an array of strings"},
      {"[jobs.read]\ncommand = [\"/bin/x\"]\n", "jobs.read.command", 6, 11, "built-in"},
      {"[jobs.actuate]\ncommand = [\"/bin/x\"]\n", "jobs.actuate.command", 6, 11, "built-in"},
      {"[jobs._x]\ncommand = [\"/bin/x\"]\n", "jobs._x.command", 6, 11, "not valid"},
      {"[jobs.a-handler-name-of-29-chars-xy]\ncommand = [\"/bin/x\"]\n", "jobs.a-handler-name-of-29-chars-xy.command", 6, 11,
       "at most 28"},
      {"[jobs.hash]\ncommand = [\"/bin/x\"]\ntimeout_ms = 0\n", "jobs.hash.timeout_ms", 7, 14, "out of range [1, 600000]"},
      {"[jobs.hash]\ncommand = [\"/bin/x\"]\ntimeout_ms = 600001\n", "jobs.hash.timeout_ms", 7, 14, "out of range"},
      {"[jobs.hash]\ncommand = [\"/bin/x\"]\ntimeout_ms = 1.5\n", "jobs.hash.timeout_ms", 7, 14, "expected an integer"},
      {"[jobs.hash]\ncommand = [\"/bin/x\"]\nmax_output = 4097\n", "jobs.hash.max_output", 7, 14, "out of range [1, 4096]"},
      {"[jobs.hash]\ncommand = [\"/bin/x\"]\nshell = true\n", "jobs.hash.shell", 7, 1, "unknown key"},
      {"[jobs]\nhash = \"/bin/x\"\n", "jobs.hash", 6, 8, "expected a table"},
  };
  for (const auto& c : cases) {
    const auto file = node(std::string("[inputs.a]\n") + c.table);
    try {
      load_node_config(file, kBoards);
      ADD_FAILURE() << "accepted: " << c.table;
    } catch (const ConfigError& e) {
      EXPECT_EQ(e.file, file) << c.table;
      EXPECT_EQ(e.key, c.key) << c.table;
      EXPECT_EQ(e.line, c.line) << c.table;
      EXPECT_EQ(e.column, c.column) << c.table;
      const std::string prefix = file + ":" + std::to_string(c.line) + ":" + std::to_string(c.column) + ": key '" + c.key + "'";
      EXPECT_EQ(std::string(e.what()).rfind(prefix, 0), 0u) << e.what();
      EXPECT_NE(std::string(e.what()).find(c.says), std::string::npos) << e.what();
    }
  }
}

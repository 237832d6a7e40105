#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "common/core/config.h"
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
  EXPECT_EQ(c.board.arch, "armel");
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
  std::ofstream((dir_ / "boards" / "mine.toml").string()) << "[board]\narch = \"sparc\"\ntau_base_s = 1\ntau_max_s = 2\n";
  try {
    load_node_config(node("board = \"mine\"\n[inputs.a]\n"), (dir_ / "boards").string());
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key, "board.arch");
    EXPECT_EQ(e.line, 2u);
    EXPECT_NE(e.file.find("mine.toml"), std::string::npos);
  }
}

// Every shipped board file loads and says what SPEC 3.2 asks of it.
TEST(Boards, EveryBoardFileIsValid) {
  struct Expect {
    const char* name;
    const char* arch;
    double base, max;
    bool wifi;
  };
  const Expect boards[] = {
      {"pi-zero", "armel", 0.01, 1, false},  {"pi-zero-w", "armel", 0.01, 1, true},
      {"pi-zero-2-w", "armhf", 0.01, 1, true}, {"pi-2-b", "armhf", 60, 3600, false},
      {"pi-3-b", "armhf", 1, 60, true},      {"pi-4-b", "armhf", 1, 60, true},
      {"generic-linux", "native", 0.1, 10, false},
  };
  std::size_t files = 0;
  for (const auto& entry : fs::directory_iterator(kBoards)) files += entry.path().extension() == ".toml";
  EXPECT_EQ(files, std::size(boards)) << "a board file without a check here";
  for (const auto& e : boards) {
    std::ifstream in(kBoards + "/" + e.name + ".toml");
    ASSERT_TRUE(in) << e.name;
    std::string text((std::istreambuf_iterator<char>(in)), {});
    std::string canonical;
    auto b = parse_board(text, e.name, e.name, canonical);
    EXPECT_EQ(b.arch, e.arch) << e.name;
    EXPECT_DOUBLE_EQ(b.tau_base_s, e.base) << e.name;
    EXPECT_DOUBLE_EQ(b.tau_max_s, e.max) << e.name;
    EXPECT_EQ(b.wifi, e.wifi) << e.name;
    EXPECT_FALSE(b.cpu.empty()) << e.name;
    if (std::string(e.arch) != "native") {
      EXPECT_FALSE(b.gpio_chip_label.empty()) << e.name;
      EXPECT_GE(b.pins.size(), 8u) << e.name;
      for (const auto& [pin, line] : b.pins) EXPECT_EQ(line.rfind("GPIO", 0), 0u) << e.name << " " << pin;
    }
  }
}

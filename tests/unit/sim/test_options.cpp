// The command line of kairos-sim: defaults, overrides, and a clear refusal
// of anything else.
#include <gtest/gtest.h>

#include "tools/sim/options.h"

using namespace kairos::sim;

namespace {

std::vector<std::string> with_required(std::vector<std::string> more) {
  std::vector<std::string> args{"--broker", "tcp://127.0.0.1:1883", "--mesh", "m", "--keys-dir", "/tmp/k"};
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

}  // namespace

TEST(SimOptions, DefaultsAndOverrides) {
  SimOptions o;
  bool help = false;
  std::string error;
  ASSERT_TRUE(parse_options(with_required({"--nodes", "1001"}), o, help, error)) << error;
  EXPECT_EQ(o.nodes, 1001);
  EXPECT_EQ(o.effective_connections(), 5) << "ceil(1001 / 250)";
  EXPECT_EQ(o.node_id(0), "sim-00001");
  EXPECT_EQ(o.node_id(1000), "sim-01001");
  EXPECT_EQ(o.latency_ms, kDefaultLatencyMs);
  EXPECT_EQ(o.classes, (std::vector<std::size_t>{0, 1, 2, 3, 4}));
  EXPECT_FALSE(o.seed.has_value());

  SimOptions p;
  ASSERT_TRUE(parse_options(with_required({"--latency", "B=7,F=1000", "--classes", "A,F", "--fail", "crash=0.1,badmac=0.5",
                                           "--jump", "x-00002:-15@2.5", "--jump", "x-00001:+40@10", "--prefix", "x",
                                           "--nodes", "2", "--seed", "18446744073709551615", "--phase-period-s", "0"}),
                            p, help, error))
      << error;
  EXPECT_EQ(p.latency_ms[1], 7);
  EXPECT_EQ(p.latency_ms[5], 1000);
  EXPECT_EQ(p.latency_ms[0], 5) << "a partial list leaves the other classes";
  EXPECT_EQ(p.classes, (std::vector<std::size_t>{0, 5}));
  EXPECT_EQ(p.fail.crash, 0.1);
  EXPECT_EQ(p.fail.badmac, 0.5);
  EXPECT_EQ(p.fail.slow, 0.0);
  ASSERT_EQ(p.jumps.size(), 2u);
  EXPECT_EQ(p.jumps[0].node, "x-00002");
  EXPECT_EQ(p.jumps[0].delta_ms, -15);
  EXPECT_EQ(p.jumps[0].at_s, 2.5);
  EXPECT_EQ(p.jumps[1].delta_ms, 40);
  EXPECT_EQ(*p.seed, 18446744073709551615ULL);
  EXPECT_EQ(p.phase_period_s, 0);

  SimOptions h;
  ASSERT_TRUE(parse_options({"--help"}, h, help, error));
  EXPECT_TRUE(help);
}

TEST(SimOptions, RefusesWhatItCannotRun) {
  // (arguments, a piece of the message)
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases{
      {{"--mesh", "m", "--keys-dir", "k"}, "--broker URI is required"},
      {{"--broker", "b", "--keys-dir", "k"}, "--mesh NAME is required"},
      {{"--broker", "b", "--mesh", "m"}, "--keys-dir DIR is required"},
      {with_required({"--nodes", "0"}), "--nodes: expected a whole number 1..30000, got '0'"},
      {with_required({"--nodes", "30001"}), "--nodes"},
      {with_required({"--nodes", "12x"}), "--nodes"},
      {with_required({"--mesh", "_gw"}), "--mesh"},
      {with_required({"--prefix", "a/b"}), "--prefix"},
      {with_required({"--classes", "A,G"}), "--classes"},
      {with_required({"--latency", "A5"}), "--latency"},
      {with_required({"--latency", "A=-1"}), "--latency"},
      {with_required({"--jitter", "nan"}), "--jitter"},
      {with_required({"--fail", "crash=1.5"}), "--fail"},
      {with_required({"--fail", "melt=0.1"}), "--fail"},
      {with_required({"--jump", "sim-00001+5@1"}), "--jump: expected ID:+MS@S"},
      {with_required({"--jump", "sim-09999:+5@1"}), "no simulated node 'sim-09999'"},
      {with_required({"--nodes", "3", "--connections", "4"}), "--connections"},
      {with_required({"--phase-period-s", "0.01"}), "--phase-period-s"},
      {with_required({"--frobnicate", "1"}), "unknown option '--frobnicate'"},
      {with_required({"--nodes"}), "--nodes: missing its value"},
  };
  for (const auto& [args, expect] : cases) {
    SimOptions o;
    bool help = false;
    std::string error;
    EXPECT_FALSE(parse_options(args, o, help, error)) << expect;
    EXPECT_NE(error.find(expect), std::string::npos) << error;
  }
}

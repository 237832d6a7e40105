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
  EXPECT_EQ(o.client, SimClient::paho);
  SimOptions lean;
  ASSERT_TRUE(parse_options(with_required({"--client", "lean"}), lean, help, error)) << error;
  EXPECT_EQ(lean.client, SimClient::lean);

  SimOptions h;
  ASSERT_TRUE(parse_options({"--help"}, h, help, error));
  EXPECT_TRUE(help);
}

TEST(SimOptions, TheNetworkModelsFlags) {
  SimOptions o;
  bool help = false;
  std::string error;
  ASSERT_TRUE(parse_options(with_required({"--profile", "wifi", "--wifi-floor-ms", "4", "--wifi-jitter-ms", "2.5",
                                           "--stall", "0.02", "--stall-ms", "100-250", "--loss", "0.01", "--rto-ms",
                                           "300", "--drift-ppm", "100", "--clock-step-ms", "20",
                                           "--clock-step-every-s", "30"}),
                            o, help, error))
      << error;
  EXPECT_EQ(o.delay.profile, Profile::wifi);
  EXPECT_DOUBLE_EQ(o.delay.wifi_floor_ms, 4);
  EXPECT_DOUBLE_EQ(o.delay.wifi_median_ms, 2.5);
  EXPECT_DOUBLE_EQ(o.delay.stall_p, 0.02);
  EXPECT_DOUBLE_EQ(o.delay.stall_min_ms, 100);
  EXPECT_DOUBLE_EQ(o.delay.stall_max_ms, 250);
  EXPECT_DOUBLE_EQ(o.delay.loss, 0.01);
  EXPECT_DOUBLE_EQ(o.delay.rto_ms, 300);
  EXPECT_DOUBLE_EQ(o.clock_step_ms, 20);
  EXPECT_DOUBLE_EQ(o.clock_step_every_s, 30);
  SimOptions h;
  ASSERT_TRUE(parse_options(with_required({"--profile", "pareto", "--alpha", "1.5", "--jitter", "0.5"}), h, help, error));
  EXPECT_EQ(h.delay.profile, Profile::pareto);
  EXPECT_DOUBLE_EQ(h.delay.alpha, 1.5);
  EXPECT_DOUBLE_EQ(h.delay.jitter, 0.5);
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
      {with_required({"--profile", "gaussian"}), "--profile: expected exponential, lognormal, pareto or wifi"},
      {with_required({"--alpha", "1"}), "--alpha"},
      {with_required({"--stall", "1.5"}), "--stall"},
      {with_required({"--stall-ms", "300-50"}), "--stall-ms: expected MIN-MAX"},
      {with_required({"--stall-ms", "50"}), "--stall-ms"},
      {with_required({"--loss", "0.9"}), "--loss"},
      {with_required({"--clock-step-every-s", "0"}), "--clock-step-every-s"},
      {with_required({"--client", "mosquitto"}), "--client: expected paho or lean"},
      {{"--broker", "ssl://h:8883", "--mesh", "m", "--keys-dir", "k", "--client", "lean"},
       "--client lean: takes a plain tcp:// or mqtt:// broker"},
  };
  for (const auto& [args, expect] : cases) {
    SimOptions o;
    bool help = false;
    std::string error;
    EXPECT_FALSE(parse_options(args, o, help, error)) << expect;
    EXPECT_NE(error.find(expect), std::string::npos) << error;
  }
}

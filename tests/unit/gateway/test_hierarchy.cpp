// The hierarchy's policy without a broker (docs/DESIGN.md 5.9): a sector's
// summaries, and a root's view of its sectors from them.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "common/core/frame.h"
#include "common/core/topic.h"
#include "common/io/clock.h"
#include "common/io/files.h"
#include "gateway/hierarchy/sectors.h"
#include "gateway/hierarchy/summary.h"
#include "tests/unit/gateway/births.h"
#include "tests/unit/keys.h"
#include "tests/unit/scratch.h"

namespace kairos::gw {
namespace {

constexpr std::int64_t kSec = 1'000'000;

kairos_v1_PhaseReport phase(double angle, double c) {
  kairos_v1_PhaseReport p = kairos_v1_PhaseReport_init_zero;
  p.valid = true;
  p.has_node_z = true;
  p.node_z.re = static_cast<float>(c * std::cos(angle));
  p.node_z.im = static_cast<float>(c * std::sin(angle));
  p.node_c = static_cast<float>(c);
  return p;
}

// Nodes of several classes and clusters, their phases heard at different
// times before now: once in one registry (the single gateway), once in the
// registry of the sector owning their cluster.
struct Split {
  RegistrySettings settings{3, 15.0, {1.0, 0.8, 0.6, 0.5, 0.3, 0.1}};
  Registry whole{settings};
  std::vector<Registry> sectors;
  std::int64_t now = 0;

  explicit Split(int n_sectors, std::uint32_t seed = 7) {
    for (int s = 0; s < n_sectors; ++s) sectors.emplace_back(settings);
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> angle(-3.1, 3.1), c(0.05, 1.0);
    std::uniform_int_distribution<int> cls(1, 6), age_ms(0, 8000), cluster(0, 8);
    now = 100 * kSec;
    for (int i = 0; i < 90; ++i) {
      const std::string id = "n" + std::to_string(i);
      const std::string cl = "c" + std::to_string(cluster(rng));
      auto b = test::birth(cl, "", static_cast<kairos_v1_DeviceClass>(cls(rng)));
      const auto p = phase(angle(rng), c(rng));
      const std::int64_t heard = now - 10 * kSec + age_ms(rng) * 1000LL;
      Registry& mine = sectors[static_cast<std::size_t>((cl.back() - '0') % n_sectors)];
      for (Registry* r : {&whole, &mine}) {
        r->on_birth(id, cl, 10, b, heard - kSec, 1'000'000);
        r->on_phase(id, p, heard);
      }
    }
  }
  // A sector's sums as its summary carries them, tallied at sector_now.
  kairos_v1_PhaseSums sums(std::size_t s, std::int64_t sector_now, std::int64_t at_wall) const {
    GroupTally t(settings, sector_now, at_wall);
    for (const auto& [id, n] : sectors[s].nodes()) t.add(n);
    kairos_v1_GroupSummary g = kairos_v1_GroupSummary_init_zero;
    t.fill(g, "s", "CLOSED");
    return g.sums;
  }
};

TEST(Hierarchy, GlobalFiguresFromSectorSumsEqualOneGatewaysOverTheSameNodes) {
  Split split(3);
  const std::int64_t wall = 1'700'000'000 * kSec;
  // Each sector tallied at another instant (up to 1.5 s before now): the root
  // brings them to one instant by their common decay.
  std::vector<kairos_v1_PhaseSums> sums;
  for (std::size_t s = 0; s < 3; ++s) {
    const std::int64_t earlier = static_cast<std::int64_t>(s) * 750'000;
    sums.push_back(split.sums(s, split.now - earlier, wall - earlier));
  }
  const MeshFigures root = figures_from_sums(sums, wall);
  const MeshFigures one = split.whole.figures(split.now);
  ASSERT_GT(one.contributors, 50u);
  EXPECT_EQ(root.contributors, one.contributors);
  EXPECT_NEAR(root.z.real(), one.z.real(), 1e-9);
  EXPECT_NEAR(root.z.imag(), one.z.imag(), 1e-9);
  EXPECT_NEAR(root.coherence, one.coherence, 1e-9);
  EXPECT_NEAR(root.agreement, one.agreement, 1e-9);
  // An average of the sectors' own figures is not the global figure.
  double mean_c = 0;
  for (auto& r : split.sectors) mean_c += r.figures(split.now).coherence / 3;
  EXPECT_GT(std::abs(mean_c - one.coherence), 1e-4);
  // Without bringing the sums to one instant, the figures would differ.
  sums[2].at_us = wall;
  EXPECT_GT(std::abs(figures_from_sums(sums, wall).coherence - one.coherence), 1e-6);
}

TEST(Hierarchy, AGroupTallyCountsStatesClassesAndTheSlowestNode) {
  Split split(1);
  GroupTally t(split.settings, split.now, 0);
  std::uint32_t online = 0;
  for (const auto& [id, n] : split.whole.nodes()) {
    t.add(n);
    online += n.online;
  }
  kairos_v1_GroupSummary g = kairos_v1_GroupSummary_init_zero;
  t.fill(g, "all", "OPEN");
  EXPECT_EQ(g.known, 90u);
  EXPECT_EQ(g.online, online);
  std::uint32_t by_class = 0, by_status = 0;
  for (int i = 0; i < 7; ++i) by_class += g.by_class[i], by_status += g.by_status[i];
  EXPECT_EQ(by_class, 90u);
  EXPECT_EQ(by_status, 90u);
  EXPECT_STREQ(g.breaker, "OPEN");
  EXPECT_EQ(g.sums.contributors, split.whole.figures(split.now).contributors);
}

// A root's book over sectors north and south, with their keys on disk.
class SectorBookTest : public ::testing::Test {
 protected:
  SectorBookTest() {
    config_.mesh = "m";
    config_.keys_dir = dir_.path().string();
    config_.role = GatewayConfig::Role::root;
    config_.root_sectors = {"north", "south"};
    config_.summary_period_s = 1;
    for (auto [name, key] : {std::pair{"north", north_}, std::pair{"south", test::key_of(9)}})
      std::filesystem::permissions(dir_.write(std::string("sectors/") + name + ".key", to_hex(key.bytes) + "\n"),
                                   std::filesystem::perms::owner_read | std::filesystem::perms::owner_write,
                                   std::filesystem::perm_options::replace);
    settings_.open_us = 2 * kSec;
    settings_.healthy_us = 3 * kSec;
    book_.emplace(config_, settings_,
                  SectorBook::Ports{[this](DropReason r, const std::string&, const std::string&, std::int64_t) {
                                      drops_.push_back(r);
                                    },
                                    [this](const std::string& s, bool stale) { changes_.push_back(s + (stale ? " stale" : " live")); }});
  }

  // north's summary with seq, signed with key (north's unless given).
  Inbound summary(std::uint64_t seq, std::uint32_t online, const Key* key = nullptr, std::uint64_t session = 5) {
    auto env = make_envelope("gw-north", session, seq, wall_us());
    env->which_message = kairos_v1_Envelope_sector_summary_tag;
    auto& s = env->message.sector_summary;
    set_string(s.sector, "north");
    set_string(s.gateway, "gw-north");
    s.period_ms = 1000;
    s.mode = kairos_v1_MeshMode_FULL;
    s.has_total = true;
    s.total.known = 10;
    s.total.online = online;
    s.total.has_sums = true;
    s.total.sums = {2.0, 1.0, 0.0, 1.6, 1.0, 2, wall_us(), 15.0};
    Inbound m;
    m.topic = sector_topic("m", "north", TopicKind::sector_summary);
    m.payload = seal(m.topic, *env, key ? *key : north_);
    return m;
  }
  void take(const Inbound& m, std::int64_t now) { book_->on_message(*parse_topic(m.topic), m, now); }

  test::ScratchDir dir_{"sectors"};
  Key north_ = test::key_of(4);
  GatewayConfig config_;
  BreakerSettings settings_;
  std::optional<SectorBook> book_;
  std::vector<DropReason> drops_;
  std::vector<std::string> changes_;
};

TEST_F(SectorBookTest, ASummaryUnderTheSectorsKeyCountsAndAnyOtherIsDroppedWithItsReason) {
  take(summary(1, 8), 1 * kSec);
  EXPECT_TRUE(drops_.empty());
  auto t = book_->totals();
  EXPECT_EQ(t.known, 10u);
  EXPECT_EQ(t.online, 8u);
  EXPECT_EQ(t.live, 1u);
  EXPECT_EQ(t.stale, 0u);  // south never heard, but not for 3 periods yet
  const Key other = test::key_of(9);
  take(summary(2, 3, &other), 1 * kSec);  // south's key on north's topic
  take(summary(1, 3), 1 * kSec);          // a replay
  take(summary(9, 3, nullptr, 4), 1 * kSec);  // an older session of north's gateway
  ASSERT_EQ(drops_.size(), 3u);
  EXPECT_EQ(drops_[0], DropReason::bad_mac);
  EXPECT_EQ(drops_[1], DropReason::replay);
  EXPECT_EQ(drops_[2], DropReason::stale_session);
  EXPECT_EQ(book_->totals().online, 8u);  // none of them changed anything
  Inbound stranger = summary(3, 3);
  stranger.topic = sector_topic("m", "west", TopicKind::sector_summary);
  take(stranger, 1 * kSec);
  EXPECT_EQ(drops_.back(), DropReason::unknown_sender);
}

TEST_F(SectorBookTest, ASilentSectorGoesStaleOpensItsBreakerAndComesBackThroughAProbe) {
  take(summary(1, 8), 1 * kSec);
  book_->service(3 * kSec);  // 2 s of silence: within 3 periods
  EXPECT_EQ(book_->totals().live, 1u);
  book_->service(4 * kSec + 1);  // 3 periods and a bit
  auto t = book_->totals();
  EXPECT_EQ(t.live, 0u);
  EXPECT_EQ(t.online, 0u);   // its nodes are not counted online
  EXPECT_EQ(t.known, 10u);   // but still known: the mode sees them missing
  EXPECT_EQ(t.breakers_open, 2u);
  EXPECT_EQ(changes_, (std::vector<std::string>{"north stale", "south stale"}));
  // Heard again: live at once; the breaker half-opens once its wait is over, closes when healthy.
  take(summary(2, 9), 5 * kSec);
  EXPECT_EQ(book_->totals().online, 9u);
  kairos_v1_SectorsRequest q = kairos_v1_SectorsRequest_init_zero;
  kairos_v1_SectorList list = kairos_v1_SectorList_init_zero;
  book_->fill(q, list, 5 * kSec);
  ASSERT_EQ(list.sectors_count, 2u);
  EXPECT_STREQ(list.sectors[0].name, "north");
  EXPECT_STREQ(list.sectors[0].state, "live");
  EXPECT_STREQ(list.sectors[0].breaker, "OPEN");
  EXPECT_STREQ(list.sectors[1].state, "stale");  // never heard, for 3 periods now
  take(summary(3, 9), 6 * kSec + 100'000);  // past the 2 s wait: the probe
  book_->service(6 * kSec + 100'000);
  list = kairos_v1_SectorList_init_zero;
  book_->fill(q, list, 6 * kSec);
  EXPECT_STREQ(list.sectors[0].breaker, "HALF_OPEN");
  for (std::int64_t at = 7; at <= 10; ++at) {
    take(summary(static_cast<std::uint64_t>(at), 9), at * kSec);
    book_->service(at * kSec);
  }
  list = kairos_v1_SectorList_init_zero;
  book_->fill(q, list, 10 * kSec);
  EXPECT_STREQ(list.sectors[0].breaker, "CLOSED");
  // A page after north holds south only.
  set_string(q.after, "north");
  list = kairos_v1_SectorList_init_zero;
  book_->fill(q, list, 10 * kSec);
  ASSERT_EQ(list.sectors_count, 1u);
  EXPECT_STREQ(list.sectors[0].name, "south");
  EXPECT_EQ(list.total, 2u);
}

TEST_F(SectorBookTest, AMissingSectorKeyStopsTheRootNamingItsFile) {
  config_.root_sectors.push_back("east");
  try {
    SectorBook book(config_, settings_, {});
    FAIL() << "a sector without a key was taken";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("sectors/east.key"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("provision --sector east"), std::string::npos) << e.what();
  }
}

TEST(SectorReporter, SummariesGoOutEveryPeriodAndAtOnceWhenTheOnlineCountChanges) {
  RegistrySettings settings;
  Registry registry(settings);
  Breakers breakers(BreakerSettings{}, {});
  GatewayConfig config;
  config.mesh = "m";
  config.id = "gw-north";
  config.sector = "north";
  config.summary_period_s = 5;
  std::vector<std::string> topics;
  std::vector<std::uint32_t> online;
  SectorReporter reporter(config, settings, registry, breakers,
                          {[&](const std::string& topic, Envelope& env) {
                             topics.push_back(topic);
                             if (env.which_message == kairos_v1_Envelope_sector_summary_tag)
                               online.push_back(env.message.sector_summary.total.online);
                           },
                           [] { return SectorFacts{}; }});
  const std::int64_t t0 = 10 * kSec;
  for (const char* c : {"c1", "c2"})
    for (int i = 0; i < 2; ++i)
      registry.on_birth(std::string(c) + "-n" + std::to_string(i), c, 1, test::birth(c), t0, kSec);
  reporter.service(t0, true);
  EXPECT_EQ(topics, (std::vector<std::string>{"kairos/v1/m/_sector/north/cluster/c1",
                                              "kairos/v1/m/_sector/north/cluster/c2",
                                              "kairos/v1/m/_sector/north/summary"}));
  reporter.service(t0 + 2 * kSec, true);  // nothing changed, not yet due
  EXPECT_EQ(online.size(), 1u);
  registry.on_state("c1-n0", false, t0 + 2 * kSec);
  reporter.service(t0 + 2 * kSec + 500'000, true);  // looked at once a second
  EXPECT_EQ(online.size(), 1u);
  reporter.service(t0 + 3 * kSec, true);
  ASSERT_EQ(online.size(), 2u);
  EXPECT_EQ(online[1] + 1, online[0]);
  reporter.service(t0 + 7 * kSec, true);  // unchanged, not due (5 s after the last)
  EXPECT_EQ(online.size(), 2u);
  reporter.service(t0 + 8 * kSec, true);
  EXPECT_EQ(online.size(), 3u);
  reporter.service(t0 + 20 * kSec, false);  // cut off: nothing is sent
  EXPECT_EQ(online.size(), 3u);
}

}  // namespace
}  // namespace kairos::gw

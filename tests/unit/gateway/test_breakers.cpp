// Circuit breakers (docs/DESIGN.md 5.6): per cluster, per sector and for the mesh;
// the OPEN -> probe -> HALF_OPEN -> CLOSED cycle with exact times, the
// doubling wait, the lost probe, and the view.
#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "gateway/escalation/breakers.h"

using namespace kairos::gw;

namespace {

constexpr std::int64_t kT0 = 1'000'000'000;  // monotonic, us
constexpr std::int64_t sec(std::int64_t v) { return v * 1'000'000; }
constexpr std::int64_t ms(std::int64_t v) { return v * 1000; }

using Names = std::vector<std::string>;
using Sectors = std::map<std::string, std::vector<std::string>>;

constexpr auto CLOSED = BreakerState::closed;
constexpr auto OPEN = BreakerState::open;
constexpr auto HALF = BreakerState::half_open;

// Breakers with every change recorded as "scope name OLD->NEW".
struct Rig {
  explicit Rig(BreakerSettings s = {}, Sectors sectors = {}) : b(s, std::move(sectors)) {
    b.on_change([this](const std::string& scope, const std::string& name, BreakerState before, BreakerState after) {
      changes.push_back(scope + " " + name + " " + to_string(before) + "->" + to_string(after));
    });
  }
  // n failures of a cluster, 1 ms apart from t; returns the time of the last.
  std::int64_t fail(const std::string& cluster, int n, std::int64_t t) {
    for (int i = 0; i < n; ++i) b.failure(cluster, t + ms(i));
    return t + ms(n - 1);
  }
  Breakers b;
  Names changes;
};

// The cluster breaker's row in the view.
BreakerView row(const Breakers& b, const std::string& scope, const std::string& name, std::int64_t now) {
  for (const auto& v : b.view(now))
    if (v.scope == scope && v.name == name) return v;
  ADD_FAILURE() << "no breaker " << scope << " " << name;
  return {};
}

}  // namespace

TEST(BreakerState, Names) {
  EXPECT_STREQ(to_string(CLOSED), "CLOSED");
  EXPECT_STREQ(to_string(OPEN), "OPEN");
  EXPECT_STREQ(to_string(HALF), "HALF_OPEN");
}

struct WindowCase {
  const char* name;
  std::vector<std::int64_t> at_us;  // failure times after kT0
  BreakerState expect;
  int counted;  // failures within the window at the last one
};

TEST(Breaker, OpensOnMoreThanThresholdFailuresWithinTheWindow) {
  const std::vector<WindowCase> cases = {
      {"five: at the threshold", {0, sec(1), sec(2), sec(3), sec(4)}, CLOSED, 5},
      {"six: over it", {0, sec(1), sec(2), sec(3), sec(4), sec(5)}, OPEN, 6},
      {"the first exactly one window old still counts", {0, sec(10), sec(20), sec(30), sec(40), sec(60)}, OPEN, 6},
      {"the first one window and 1 us old does not", {0, sec(10), sec(20), sec(30), sec(40), sec(60) + 1}, CLOSED, 5},
      {"spread thin", {0, sec(30), sec(61), sec(92), sec(123), sec(154), sec(185)}, CLOSED, 2},
  };
  const BreakerSettings s;
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Breaker b;
    for (auto t : c.at_us) b.failure(kT0 + t, s.cluster_failures, s);
    EXPECT_EQ(b.state(), c.expect);
    EXPECT_EQ(b.failures(kT0 + c.at_us.back(), s), c.counted);
    EXPECT_EQ(b.opened(), c.expect == OPEN ? 1 : 0);
    if (c.expect == OPEN) {
      EXPECT_EQ(b.wait_us(), s.open_us);
      EXPECT_EQ(b.probe_at_us(), kT0 + c.at_us.back() + s.open_us);
    }
  }
}

TEST(Breaker, FailuresAgeOutOfTheCount) {
  const BreakerSettings s;
  Breaker b;
  for (int i = 0; i < 4; ++i) b.failure(kT0 + sec(i), s.cluster_failures, s);
  EXPECT_EQ(b.failures(kT0 + sec(3), s), 4);
  EXPECT_EQ(b.failures(kT0 + sec(60), s), 4);
  EXPECT_EQ(b.failures(kT0 + sec(61), s), 3);
  EXPECT_EQ(b.failures(kT0 + sec(63) + 1, s), 0);
}

TEST(Breakers, ClusterCycleOpenProbeHalfOpenClosedAtExactTimes) {
  Rig rig;
  const std::int64_t opened = rig.fail("c1", 5, kT0);
  EXPECT_TRUE(rig.b.closed("c1"));
  EXPECT_TRUE(rig.changes.empty());
  rig.b.failure("c1", opened + ms(1));
  const std::int64_t t_open = opened + ms(1);
  EXPECT_EQ(rig.changes, (Names{"cluster c1 CLOSED->OPEN"}));
  EXPECT_FALSE(rig.b.closed("c1"));
  EXPECT_TRUE(rig.b.closed("c2"));  // another cluster is not affected
  EXPECT_TRUE(rig.b.admit("c2", t_open));

  // OPEN: nothing passes for 30 s, then exactly one probe.
  const std::int64_t probe_at = t_open + sec(30);
  EXPECT_EQ(row(rig.b, "cluster", "c1", t_open).probe_at_us, probe_at);
  EXPECT_FALSE(rig.b.admit("c1", t_open));
  EXPECT_FALSE(rig.b.would_admit("c1", probe_at - 1));
  EXPECT_FALSE(rig.b.admit("c1", probe_at - 1));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(rig.b.would_admit("c1", probe_at));  // asking does not use it
  EXPECT_TRUE(rig.b.admit("c1", probe_at));
  EXPECT_FALSE(rig.b.admit("c1", probe_at));
  EXPECT_FALSE(rig.b.would_admit("c1", probe_at + sec(10)));
  rig.b.service(probe_at + sec(10));
  EXPECT_EQ(rig.changes.size(), 1u);

  // The probe succeeds: HALF_OPEN, one admission per second.
  const std::int64_t half = probe_at + sec(2);
  rig.b.success("c1", half);
  EXPECT_EQ(rig.changes.back(), "cluster c1 OPEN->HALF_OPEN");
  EXPECT_FALSE(rig.b.closed("c1"));
  EXPECT_TRUE(rig.b.admit("c1", half));
  EXPECT_FALSE(rig.b.admit("c1", half + ms(999)));
  EXPECT_TRUE(rig.b.admit("c1", half + sec(1)));
  EXPECT_FALSE(rig.b.would_admit("c1", half + sec(1)));
  rig.b.success("c1", half + sec(1) + ms(10));
  EXPECT_EQ(row(rig.b, "cluster", "c1", half).state, HALF);

  // 60 s without a failure: CLOSED.
  rig.b.service(half + sec(60) - 1);
  EXPECT_EQ(row(rig.b, "cluster", "c1", half).state, HALF);
  rig.b.service(half + sec(60));
  EXPECT_EQ(rig.changes, (Names{"cluster c1 CLOSED->OPEN", "cluster c1 OPEN->HALF_OPEN", "cluster c1 HALF_OPEN->CLOSED"}));
  EXPECT_TRUE(rig.b.closed("c1"));
  const auto v = row(rig.b, "cluster", "c1", half + sec(60));
  EXPECT_EQ(v.wait_us, 0);
  EXPECT_EQ(v.failures, 0);
  EXPECT_EQ(v.opened, 1);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(rig.b.admit("c1", half + sec(60)));  // no limit when CLOSED
}

TEST(Breakers, EachFailedProbeDoublesTheWait) {
  Rig rig;
  std::int64_t t = rig.fail("c1", 6, kT0);
  const std::vector<std::int64_t> waits = {sec(30), sec(60), sec(120), sec(240), sec(480)};
  for (std::size_t k = 0; k < waits.size(); ++k) {
    SCOPED_TRACE(k);
    const auto v = row(rig.b, "cluster", "c1", t);
    EXPECT_EQ(v.state, OPEN);
    EXPECT_EQ(v.wait_us, waits[k]);
    EXPECT_EQ(v.probe_at_us, t + waits[k]);
    EXPECT_EQ(v.opened, static_cast<int>(k + 1));
    EXPECT_FALSE(rig.b.admit("c1", t + waits[k] - 1));
    ASSERT_TRUE(rig.b.admit("c1", t + waits[k]));
    t = t + waits[k] + sec(3);
    rig.b.failure("c1", t);  // the probe failed
  }
  // OPEN -> OPEN is not a change.
  EXPECT_EQ(rig.changes, (Names{"cluster c1 CLOSED->OPEN"}));
}

TEST(Breakers, DoubledWaitIsCappedAtOneDay) {
  BreakerSettings s;
  s.open_us = sec(10 * 3600);
  Rig rig(s);
  std::int64_t t = rig.fail("c1", 6, kT0);
  for (std::int64_t expect : {sec(10 * 3600), sec(20 * 3600), sec(24 * 3600), sec(24 * 3600)}) {
    EXPECT_EQ(row(rig.b, "cluster", "c1", t).wait_us, expect);
    ASSERT_TRUE(rig.b.admit("c1", t + expect));
    t += expect + 1;
    rig.b.failure("c1", t);
  }
}

TEST(Breakers, FailureInHalfOpenReopensWithTheWaitDoubled) {
  Rig rig;
  const std::int64_t t_open = rig.fail("c1", 6, kT0);
  ASSERT_TRUE(rig.b.admit("c1", t_open + sec(30)));
  rig.b.success("c1", t_open + sec(31));
  ASSERT_TRUE(rig.b.admit("c1", t_open + sec(32)));
  const std::int64_t t_fail = t_open + sec(50);
  rig.b.failure("c1", t_fail);  // a single failure is enough in HALF_OPEN
  EXPECT_EQ(rig.changes,
            (Names{"cluster c1 CLOSED->OPEN", "cluster c1 OPEN->HALF_OPEN", "cluster c1 HALF_OPEN->OPEN"}));
  const auto v = row(rig.b, "cluster", "c1", t_fail);
  EXPECT_EQ(v.wait_us, sec(60));
  EXPECT_EQ(v.probe_at_us, t_fail + sec(60));
  EXPECT_EQ(v.opened, 2);
  EXPECT_FALSE(rig.b.admit("c1", t_fail + sec(60) - 1));
  EXPECT_TRUE(rig.b.admit("c1", t_fail + sec(60)));
  // Healthy time is counted from the new HALF_OPEN, not the first one.
  rig.b.success("c1", t_fail + sec(61));
  rig.b.service(t_open + sec(31) + sec(60));
  EXPECT_EQ(row(rig.b, "cluster", "c1", t_fail).state, HALF);
  rig.b.service(t_fail + sec(61) + sec(60) - 1);
  EXPECT_EQ(row(rig.b, "cluster", "c1", t_fail).state, HALF);
  rig.b.service(t_fail + sec(61) + sec(60));
  EXPECT_TRUE(rig.b.closed("c1"));
}

TEST(Breakers, ProbeThatNeverReportsBackCountsAsFailed) {
  Rig rig;
  const std::int64_t t_open = rig.fail("c1", 6, kT0);
  const std::int64_t p1 = t_open + sec(30);
  ASSERT_TRUE(rig.b.admit("c1", p1));
  // Lost after max(wait 30 s, open_us 30 s).
  rig.b.service(p1 + sec(30));
  auto v = row(rig.b, "cluster", "c1", p1);
  EXPECT_EQ(v.opened, 1);
  EXPECT_FALSE(rig.b.would_admit("c1", p1 + sec(30)));
  rig.b.service(p1 + sec(30) + 1);
  v = row(rig.b, "cluster", "c1", p1);
  EXPECT_EQ(v.state, OPEN);
  EXPECT_EQ(v.opened, 2);
  EXPECT_EQ(v.wait_us, sec(60));
  const std::int64_t p2 = p1 + sec(30) + 1 + sec(60);
  EXPECT_EQ(v.probe_at_us, p2);
  EXPECT_FALSE(rig.b.admit("c1", p2 - 1));
  ASSERT_TRUE(rig.b.admit("c1", p2));
  // The second is lost after max(wait 60 s, 30 s).
  rig.b.service(p2 + sec(60));
  EXPECT_EQ(row(rig.b, "cluster", "c1", p2).opened, 2);
  rig.b.service(p2 + sec(60) + 1);
  v = row(rig.b, "cluster", "c1", p2);
  EXPECT_EQ(v.opened, 3);
  EXPECT_EQ(v.wait_us, sec(120));
  EXPECT_EQ(rig.changes, (Names{"cluster c1 CLOSED->OPEN"}));
}

TEST(Breakers, FailuresWhileOpenWithoutAProbeChangeNothing) {
  Rig rig;
  const std::int64_t t_open = rig.fail("c1", 6, kT0);
  for (int i = 1; i <= 10; ++i) rig.b.failure("c1", t_open + sec(i));  // stragglers sent before it opened
  const auto v = row(rig.b, "cluster", "c1", t_open + sec(10));
  EXPECT_EQ(v.wait_us, sec(30));
  EXPECT_EQ(v.probe_at_us, t_open + sec(30));
  EXPECT_EQ(v.opened, 1);
  // A success without a probe out does not half-open it either.
  rig.b.success("c1", t_open + sec(11));
  EXPECT_EQ(row(rig.b, "cluster", "c1", t_open).state, OPEN);
  EXPECT_TRUE(rig.b.admit("c1", t_open + sec(30)));
}

TEST(Breakers, SuccessWhileClosedChangesNothing) {
  Rig rig;
  rig.fail("c1", 5, kT0);
  rig.b.success("c1", kT0 + sec(1));
  rig.b.success("c9", kT0 + sec(1));  // a cluster never seen
  EXPECT_EQ(row(rig.b, "cluster", "c1", kT0 + sec(1)).failures, 5);  // the window still counts them
  rig.b.failure("c1", kT0 + sec(2));
  EXPECT_FALSE(rig.b.closed("c1"));
}

TEST(Breakers, ClosedAgainStartsFromAFreshCountAndTheBaseWait) {
  BreakerSettings s;
  s.window_us = sec(600);  // longer than the whole cycle: only closing can forget the old failures
  Rig rig(s);
  std::int64_t t = rig.fail("c1", 6, kT0);
  ASSERT_TRUE(rig.b.admit("c1", t + sec(30)));
  rig.b.failure("c1", t + sec(31));  // wait now 60 s
  t += sec(31);
  ASSERT_TRUE(rig.b.admit("c1", t + sec(60)));
  rig.b.success("c1", t + sec(60));
  rig.b.service(t + sec(120));
  ASSERT_TRUE(rig.b.closed("c1"));
  t += sec(120);
  // The failures that opened it are forgotten: five new ones are not enough...
  t = rig.fail("c1", 5, t + 1);
  EXPECT_TRUE(rig.b.closed("c1"));
  // ...the sixth is, and the wait is back to 30 s.
  rig.b.failure("c1", t + 1);
  const auto v = row(rig.b, "cluster", "c1", t + 1);
  EXPECT_EQ(v.state, OPEN);
  EXPECT_EQ(v.wait_us, sec(30));
  EXPECT_EQ(v.opened, 3);
}

TEST(Breakers, SectorOpensOnFailuresSummedOverItsClusters) {
  BreakerSettings s;
  s.sector_failures = 7;
  Rig rig(s, {{"north", {"c1", "c2"}}, {"south", {"c3"}}});
  EXPECT_EQ(rig.b.sectors_total(), 2u);
  ASSERT_NE(rig.b.sector_of("c2"), nullptr);
  EXPECT_EQ(*rig.b.sector_of("c2"), "north");
  EXPECT_EQ(rig.b.sector_of("c9"), nullptr);
  EXPECT_EQ(rig.b.clusters_of("north"), (Names{"c1", "c2"}));
  EXPECT_TRUE(rig.b.clusters_of("west").empty());

  std::int64_t t = rig.fail("c1", 4, kT0);
  t = rig.fail("c2", 3, t + 1);
  EXPECT_TRUE(rig.b.closed("c1"));
  EXPECT_EQ(rig.b.sectors_open(), 0u);
  rig.b.failure("c2", t + 1);  // 8 > 7 in the sector, 4 in each cluster
  const std::int64_t t_open = t + 1;
  EXPECT_EQ(rig.changes, (Names{"sector north CLOSED->OPEN"}));
  EXPECT_EQ(rig.b.sectors_open(), 1u);
  EXPECT_EQ(row(rig.b, "cluster", "c1", t_open).state, CLOSED);
  EXPECT_FALSE(rig.b.closed("c1"));
  EXPECT_FALSE(rig.b.admit("c1", t_open));
  EXPECT_FALSE(rig.b.admit("c2", t_open));
  EXPECT_TRUE(rig.b.admit("c3", t_open));
  EXPECT_TRUE(rig.b.admit("c9", t_open));  // in no sector
  EXPECT_FALSE(rig.b.global_open());

  // One probe for the whole sector, through any of its clusters.
  EXPECT_FALSE(rig.b.admit("c2", t_open + sec(30) - 1));
  EXPECT_TRUE(rig.b.admit("c2", t_open + sec(30)));
  EXPECT_FALSE(rig.b.admit("c1", t_open + sec(30)));
  rig.b.success("c2", t_open + sec(31));
  EXPECT_EQ(rig.changes.back(), "sector north OPEN->HALF_OPEN");
  EXPECT_TRUE(rig.b.admit("c1", t_open + sec(31)));
  EXPECT_FALSE(rig.b.admit("c2", t_open + sec(31)));  // the sector's HALF_OPEN slot is used
  rig.b.service(t_open + sec(91));
  EXPECT_EQ(rig.changes.back(), "sector north HALF_OPEN->CLOSED");
  EXPECT_TRUE(rig.b.closed("c1"));
  EXPECT_EQ(rig.b.sectors_open(), 0u);
}

TEST(Breakers, OpenClusterInAClosedSectorStopsOnlyItself) {
  BreakerSettings s;
  s.sector_failures = 7;
  Rig rig(s, {{"north", {"c1", "c2"}}});
  rig.fail("c1", 6, kT0);
  EXPECT_EQ(rig.changes, (Names{"cluster c1 CLOSED->OPEN"}));
  EXPECT_FALSE(rig.b.admit("c1", kT0 + sec(1)));
  EXPECT_TRUE(rig.b.admit("c2", kT0 + sec(1)));
  EXPECT_TRUE(rig.b.closed("c2"));
}

TEST(Breakers, MoreSectorsOpenThanTheLimitShutsTheMesh) {
  BreakerSettings s;
  s.cluster_failures = 100;  // only sectors open here
  s.sector_failures = 2;
  s.global_sectors = 1;
  Rig rig(s, {{"s1", {"c1"}}, {"s2", {"c2"}}, {"s3", {"c3"}}});
  std::int64_t t = rig.fail("c1", 3, kT0);
  EXPECT_FALSE(rig.b.global_open());  // one open sector is within the limit
  EXPECT_TRUE(rig.b.admit("c3", t));
  t = rig.fail("c2", 3, t + 1);
  EXPECT_TRUE(rig.b.global_open());
  EXPECT_EQ(rig.changes, (Names{"sector s1 CLOSED->OPEN", "sector s2 CLOSED->OPEN", "global mesh CLOSED->OPEN"}));
  for (const char* c : {"c1", "c2", "c3", "elsewhere"}) {
    EXPECT_FALSE(rig.b.would_admit(c, t)) << c;
    EXPECT_FALSE(rig.b.admit(c, t)) << c;
    EXPECT_FALSE(rig.b.closed(c)) << c;
  }
  // The view: what is not CLOSED first, in order global, sectors, clusters.
  const auto v = rig.b.view(t);
  Names order;
  for (const auto& x : v) order.push_back(x.scope + " " + x.name + " " + to_string(x.state));
  EXPECT_EQ(order, (Names{"global mesh OPEN", "sector s1 OPEN", "sector s2 OPEN", "sector s3 CLOSED",
                          "cluster c1 CLOSED", "cluster c2 CLOSED"}));
  EXPECT_EQ(v[0].failures, 2);  // for the mesh: sectors open
  EXPECT_EQ(v[0].opened, 1);
  EXPECT_EQ(v[1].failures, 3);
}

TEST(Breakers, MeshRecoversThroughItsSectorsProbes) {
  BreakerSettings s;
  s.cluster_failures = 100;
  s.sector_failures = 2;
  s.global_sectors = 1;
  Rig rig(s, {{"s1", {"c1"}}, {"s2", {"c2"}}, {"s3", {"c3"}}});
  const std::int64_t t1 = rig.fail("c1", 3, kT0);
  const std::int64_t t2 = rig.fail("c2", 3, t1 + 1);
  ASSERT_TRUE(rig.b.global_open());
  // While the mesh is shut only the probe of an open sector passes, when due:
  // without it no sector could ever recover and the mesh would stay shut.
  EXPECT_FALSE(rig.b.admit("c1", t1 + sec(30) - 1));
  EXPECT_FALSE(rig.b.admit("c3", t1 + sec(30)));
  EXPECT_TRUE(rig.b.would_admit("c1", t1 + sec(30)));
  EXPECT_TRUE(rig.b.admit("c1", t1 + sec(30)));
  EXPECT_FALSE(rig.b.admit("c1", t1 + sec(30)));  // one probe
  rig.b.success("c1", t1 + sec(31));
  EXPECT_EQ(rig.changes.back(), "sector s1 OPEN->HALF_OPEN");
  EXPECT_TRUE(rig.b.global_open());  // a HALF_OPEN sector still counts as open
  EXPECT_FALSE(rig.b.admit("c1", t1 + sec(32)));
  EXPECT_FALSE(rig.b.admit("c3", t1 + sec(32)));
  rig.b.service(t1 + sec(31) + sec(60) - 1);
  EXPECT_TRUE(rig.b.global_open());
  rig.b.service(t1 + sec(31) + sec(60));
  EXPECT_EQ(rig.changes.back(), "global mesh OPEN->CLOSED");
  EXPECT_FALSE(rig.b.global_open());
  const std::int64_t t = t1 + sec(91);
  EXPECT_TRUE(rig.b.admit("c1", t));
  EXPECT_TRUE(rig.b.admit("c3", t));
  EXPECT_EQ(rig.b.sectors_open(), 1u);  // s2 is still OPEN on its own: its probe, once
  EXPECT_GT(t, t2 + sec(30));
  EXPECT_TRUE(rig.b.admit("c2", t));
  EXPECT_FALSE(rig.b.admit("c2", t));
}

TEST(Breakers, ViewListsBreakersNotClosedFirst) {
  Rig rig;
  rig.fail("a", 2, kT0);
  rig.fail("b", 6, kT0 + sec(1));
  rig.fail("c", 1, kT0 + sec(2));
  const std::int64_t now = kT0 + sec(3);
  const auto v = rig.b.view(now);
  Names order;
  for (const auto& x : v) order.push_back(x.scope + " " + x.name);
  EXPECT_EQ(order, (Names{"cluster b", "global mesh", "cluster a", "cluster c"}));
  EXPECT_EQ(v[0].state, OPEN);
  EXPECT_EQ(v[0].failures, 6);
  EXPECT_EQ(v[0].wait_us, sec(30));
  EXPECT_EQ(v[0].probe_at_us, kT0 + sec(1) + ms(5) + sec(30));
  EXPECT_EQ(v[0].opened, 1);
  EXPECT_EQ(v[1].state, CLOSED);
  EXPECT_EQ(v[1].failures, 0);
  EXPECT_EQ(v[2].failures, 2);
  EXPECT_EQ(v[3].failures, 1);
  EXPECT_EQ(rig.b.sectors_total(), 0u);
}

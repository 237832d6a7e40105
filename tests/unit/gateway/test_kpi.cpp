// The KPI book (docs/METRICS.md): each figure from what the modules report.
#include <gtest/gtest.h>

#include "gateway/metrics/kpi.h"
#include "gateway/metrics/metrics.h"

namespace kairos::gw {
namespace {

TEST(KpiBook, NothingYetReadsAsNoOperationsAndFullAvailability) {
  KpiBook k;
  auto f = k.figures();
  EXPECT_EQ(f.operations, 0u);
  EXPECT_EQ(f.coordination_success, 0);
  EXPECT_EQ(f.availability, 1);
  EXPECT_EQ(f.cascade_p95_s, 0);
}

TEST(KpiBook, SuccessHitsPredictionAndConflictsAreRatiosOfWhatWasCounted) {
  KpiBook k;
  k.operation(true);
  k.operation(true);
  k.operation(false);
  k.operation(true);
  k.schedule({10, 8, 9, 7, 1'500'000, 2, 5, 12});
  k.schedule({10, 10, 10, 10, 500'000, 1, 2, 3});
  k.conflicts(2);
  auto f = k.figures();
  EXPECT_DOUBLE_EQ(f.coordination_success, 0.75);
  EXPECT_DOUBLE_EQ(f.hit_rate, 18.0 / 20.0);
  EXPECT_DOUBLE_EQ(f.prediction_accuracy, 17.0 / 19.0);
  EXPECT_DOUBLE_EQ(f.conflicts_per_1000, 500.0);
  EXPECT_DOUBLE_EQ(f.last_hit_rate, 1.0);
  EXPECT_DOUBLE_EQ(f.last_spread_max_s, 0.003);
}

TEST(KpiBook, AvailabilityWeighsEachCountByHowLongItHeld) {
  KpiBook k;
  k.sample(0, 10, 10);           // 10 of 10 for 3 s
  k.sample(3'000'000, 10, 5);    // 5 of 10 for 1 s
  k.sample(4'000'000, 10, 10);
  auto f = k.figures();
  EXPECT_DOUBLE_EQ(f.node_seconds_known, 40);
  EXPECT_DOUBLE_EQ(f.node_seconds_online, 35);
  EXPECT_DOUBLE_EQ(f.availability, 35.0 / 40.0);
}

TEST(KpiBook, CascadeP95IsOverTheLastHundredSchedules) {
  KpiBook k;
  // 100 quick ones, then 100 of 2 s: the quick ones have left the window.
  for (int i = 0; i < 100; ++i) k.schedule({1, 1, 1, 1, 100'000});
  EXPECT_DOUBLE_EQ(k.figures().cascade_p95_s, 0.1);
  for (int i = 0; i < 100; ++i) k.schedule({1, 1, 1, 1, 2'000'000 + i * 1'000});
  // Nearest rank 95 of 100: 2.094 s.
  EXPECT_DOUBLE_EQ(k.figures().cascade_p95_s, 2.094);
  EXPECT_EQ(k.figures().cascades, 200u);
}

TEST(KpiBook, RecoveryIsTheMeanTimeDown) {
  KpiBook k;
  k.recoveries(0, 0);
  EXPECT_EQ(k.figures().recovery_mean_s, 0);
  k.recoveries(4, 10'000'000);
  EXPECT_DOUBLE_EQ(k.figures().recovery_mean_s, 2.5);
}

}  // namespace
}  // namespace kairos::gw

namespace kairos::gw {
namespace {

TEST(PageCache, AScrapeWithinTheFreshTimeIsServedTheLastPageWithoutARender) {
  PageCache cache(1'000'000);
  int renders = 0;
  auto render = [&]() -> std::optional<std::string> { return "page " + std::to_string(++renders); };
  EXPECT_EQ(cache.get(0, render), "page 1");
  EXPECT_EQ(cache.get(999'999, render), "page 1");
  EXPECT_EQ(cache.get(1'000'000, render), "page 2");
  // A render that gave nothing (the loop did not answer) is not kept: the next scrape tries again.
  PageCache empty(1'000'000);
  EXPECT_FALSE(empty.get(0, [] { return std::optional<std::string>(); }));
  EXPECT_EQ(empty.get(1, render), "page 3");
}

}  // namespace
}  // namespace kairos::gw

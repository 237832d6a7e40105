#include <gtest/gtest.h>

#include "common/core/replay.h"

using namespace kairos;

TEST(ReplayWindow, AcceptsEachSeqOnce) {
  ReplayWindow w;
  EXPECT_TRUE(w.accept(1));
  EXPECT_FALSE(w.accept(1));
  EXPECT_TRUE(w.accept(3));
  EXPECT_TRUE(w.accept(2));  // reordered, inside the window
  EXPECT_FALSE(w.accept(2));
  EXPECT_EQ(w.high_water(), 3u);
}

TEST(ReplayWindow, WindowEdges) {
  ReplayWindow w;
  EXPECT_TRUE(w.accept(100));
  EXPECT_TRUE(w.accept(100 - ReplayWindow::kWidth + 1));  // oldest slot still inside
  EXPECT_FALSE(w.accept(100 - ReplayWindow::kWidth));     // just outside
  EXPECT_TRUE(w.accept(100 + 1000));                      // a big jump clears the window
  EXPECT_FALSE(w.accept(100));
}

TEST(ReplayWindow, RestoredHighWaterRefusesEverythingBelow) {
  ReplayWindow w(50);
  EXPECT_FALSE(w.accept(50));
  EXPECT_FALSE(w.accept(49));
  EXPECT_TRUE(w.accept(51));
}

TEST(SessionGuard, BirthStartsSessionsAndRetiresOldOnes) {
  SessionGuard g;
  EXPECT_EQ(g.check("n1", 10, 1, false).drop, DropReason::unknown_session);
  auto v = g.check("n1", 10, 1, true);
  EXPECT_FALSE(v.drop);
  EXPECT_TRUE(v.new_session);
  EXPECT_FALSE(g.check("n1", 10, 2, false).drop);
  EXPECT_EQ(g.check("n1", 10, 2, false).drop, DropReason::replay);
  // reboot: new session from a birth
  EXPECT_TRUE(g.check("n1", 20, 1, true).new_session);
  // the old session's frames (e.g. its late Will) are stale now
  EXPECT_EQ(g.check("n1", 10, 3, false).drop, DropReason::stale_session);
  EXPECT_EQ(g.check("n1", 10, 4, true).drop, DropReason::stale_session);
  EXPECT_EQ(*g.current_session("n1"), 20u);
  // a frame of an unknown session that may not start one
  EXPECT_EQ(g.check("n1", 30, 1, false).drop, DropReason::unknown_session);
}

TEST(SessionGuard, AnOlderBirthNeverOpensASessionHoweverManyRestartsAgo) {
  SessionGuard g;
  g.check("n1", 100, 1, true);
  for (std::uint64_t boot = 101; boot < 140; ++boot) EXPECT_TRUE(g.check("n1", boot, 1, true).new_session);
  // a birth captured at the first boot, replayed 40 restarts later
  EXPECT_EQ(g.check("n1", 100, 1, true).drop, DropReason::stale_session);
  EXPECT_EQ(*g.current_session("n1"), 139u);
  EXPECT_FALSE(g.check("n1", 139, 2, false).drop) << "the live session goes on";
  // a restore of an older session does not lower the current one
  g.restore("n1", 120, 5);
  EXPECT_EQ(*g.current_session("n1"), 139u);
}

TEST(SessionGuard, RestoreKeepsHighWater) {
  SessionGuard g;
  g.restore("n1", 5, 100);
  EXPECT_EQ(g.check("n1", 5, 100, false).drop, DropReason::replay);
  EXPECT_FALSE(g.check("n1", 5, 101, false).drop);
  EXPECT_EQ(g.high_water("n1"), 101u);
  g.restore("n1", 6, 1);
  EXPECT_EQ(g.check("n1", 5, 200, true).drop, DropReason::stale_session);
}

TEST(SessionGuard, WillIsCheckedApartFromTheLiveWindow) {
  SessionGuard g;
  const std::uint64_t will = 1 + (1ULL << 40);
  g.check("n1", 7, 1, true);
  for (std::uint64_t s = 2; s < 100; ++s) EXPECT_FALSE(g.check("n1", 7, s, false).drop);
  EXPECT_FALSE(g.check_will("n1", 7, will).drop);
  EXPECT_EQ(g.check_will("n1", 7, will).drop, DropReason::replay);  // the same Will again
  EXPECT_FALSE(g.check("n1", 7, 100, false).drop);                   // live frames go on
  EXPECT_EQ(g.check_will("n1", 6, will + 5).drop, DropReason::stale_session);  // older: whatever it is
  EXPECT_EQ(g.check_will("n1", 9, will + 5).drop, DropReason::unknown_session);
  // a clean shutdown's offline state uses the live counter
  EXPECT_FALSE(g.check_will("n1", 7, 101 + (1ULL << 41)).drop);
  g.check("n1", 8, 1, true);
  EXPECT_EQ(g.check_will("n1", 7, will + 99).drop, DropReason::stale_session);
}

TEST(SessionGuard, ANewSessionForgetsTheOldWill) {
  SessionGuard g;
  const std::uint64_t gap = 1ULL << 40;
  g.check("n1", 1, 1, true);
  for (std::uint64_t s = 2; s < 5000; ++s) g.check("n1", 1, s, false);
  EXPECT_FALSE(g.check_will("n1", 1, 5000 + gap).drop);
  // reboot: the new session's first Will sits far below the old one's seq
  g.check("n1", 2, 1, true);
  EXPECT_FALSE(g.check_will("n1", 2, 1 + gap).drop);
}

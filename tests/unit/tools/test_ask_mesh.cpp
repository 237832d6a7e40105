// The conversational console's grammar (tools/kairosctl/ask_mesh): plain
// English to kairosctl's verbs, one row per phrasing.
#include <gtest/gtest.h>

#include "tools/kairosctl/ask_mesh.h"

using namespace kairos::ctl;

namespace {

// 2026-12-04 10:00:00 UTC; the console's zone is UTC+1.
constexpr std::int64_t kNow = 1'796'378'400;
constexpr std::int64_t kOffset = 3600;

struct Row {
  const char* said;
  const char* runs;  // the shell line, without "kairosctl "
  bool writes;
};

const Row kRows[] = {
    // The mesh, a sector or cluster, a node.
    {"what's happening?", "status", false},
    {"Status", "status", false},
    {"is everything ok", "status", false},
    {"how is the mesh doing?", "status", false},
    {"what's happening in sector 7?", "nodes --cluster 7", false},
    {"how is the east sector", "nodes --cluster east", false},
    {"show me cluster Hall-2", "nodes --cluster Hall-2", false},
    {"how is node pi-3?", "node pi-3", false},
    {"tell me about Pi-Kitchen", "node Pi-Kitchen", false},
    {"what's up with barn-1", "node barn-1", false},
    // What failed, who is slow, who is gone.
    {"what failed recently?", "conflicts", false},
    {"what went wrong", "conflicts", false},
    {"any problems?", "conflicts", false},
    {"show the open conflicts", "conflicts --queue", false},
    {"who is slow?", "nodes --slowest 10", false},
    {"which nodes are lagging in cluster east", "nodes --slowest 10 --cluster east", false},
    {"which nodes are offline?", "nodes --state offline", false},
    {"who is down in sector 3", "nodes --state offline --cluster 3", false},
    {"who is online", "nodes --state online", false},
    // Routing around, and back.
    {"route around pi-3", "quarantine pi-3 --reason 'routed around from the console'", true},
    {"route around the east cluster", "breakers hold east", true},
    {"avoid sector 7", "breakers hold 7", true},
    {"take barn-1 out", "quarantine barn-1 --reason 'routed around from the console'", true},
    {"stop routing around pi-3", "heal pi-3", true},
    {"bring cluster east back", "breakers release east", true},
    {"heal pi-3", "heal pi-3", true},
    // Freeze and thaw, now or later.
    {"freeze everything", "freeze all", true},
    {"freeze the east sector", "freeze cluster:east", true},
    {"freeze the east sector at 14:00", "schedule freeze --at 1796389200 --targets cluster:east --confirm", true},
    {"freeze the class B nodes at 2pm", "schedule freeze --at 1796389200 --targets class:B --confirm", true},
    {"freeze pi-3 in 5 minutes", "schedule freeze --in 300000 --targets pi-3 --confirm", true},
    {"emergency stop!", "freeze all", true},
    {"thaw everything", "thaw all --confirm", true},
    {"unfreeze cluster west at 09:30", "schedule thaw --at 1796459400 --targets cluster:west --confirm", true},
    // The rest of the console.
    {"resolve task 12 because recalibrated the sensor", "resolve 12 --note 'recalibrated the sensor'", true},
    {"show the breakers", "breakers", false},
    {"what mode are we in?", "mode", false},
    {"how well are we doing?", "kpi", false},
    {"what jobs are running", "jobs", false},
    {"who holds the ball in kitchen?", "ball show kitchen", false},
    {"list the ball plays", "ball list", false},
    {"who froze the mesh?", "operators log", false},
    {"list the sectors", "sectors", false},
    // Questions about orders order nothing; the first target named wins.
    {"how do I avoid conflicts in sector 7?", "conflicts", false},
    {"how do I resolve conflicts from the last 24 hours?", "conflicts", false},
    {"let me know when sector 7 is back", "nodes --cluster 7", false},
    {"route around pi-3 in the east cluster", "quarantine pi-3 --reason 'routed around from the console'", true},
    {"heal pi-3 in cluster east", "heal pi-3", true},
    {"freeze pi-3, it is slowing the whole mesh", "freeze pi-3", true},
    {"freeze all nodes in cluster east", "freeze cluster:east", true},
    {"please freeze the east sector at 2 p.m.", "schedule freeze --at 1796389200 --targets cluster:east --confirm", true},
    {"can you cut off pi-3", "quarantine pi-3 --reason 'routed around from the console'", true},
    {"freeze the east sector in 2 hours", "schedule freeze --at 1796385600 --targets cluster:east --confirm", true},
    {"freeze everything at noon", "schedule freeze --at 1796382000 --targets all --confirm", true},
    {"thaw all at 7 o'clock pm", "schedule thaw --at 1796407200 --targets all --confirm", true},
    {"resolve task 12", "resolve 12", true},
};

}  // namespace

TEST(AskMesh, EveryPhrasingMapsToItsVerb) {
  for (const auto& r : kRows) {
    const AskPlan p = plan_intent(r.said, kNow, kOffset);
    EXPECT_TRUE(p.understood()) << r.said << ": " << p.explain;
    EXPECT_EQ(shell_line(p.run), std::string("kairosctl ") + r.runs) << r.said;
    EXPECT_EQ(p.writes, r.writes) << r.said;
    EXPECT_FALSE(p.explain.empty()) << r.said;
  }
  EXPECT_GE(std::size(kRows), 30u);
}

TEST(AskMesh, ATimeOfDayAlreadyPastIsTomorrows) {
  // 10:00 UTC is 11:00 local: 09:30 local is tomorrow's, 11:30 today's.
  EXPECT_EQ(plan_intent("freeze all at 11:30", kNow, kOffset).run[3], std::to_string(kNow + 1800));
  EXPECT_EQ(plan_intent("freeze all at 9:30am", kNow, kOffset).run[3], std::to_string(kNow + 22 * 3600 + 1800));
  EXPECT_EQ(plan_intent("freeze all at 12am", kNow, kOffset).run[3], std::to_string(kNow + 13 * 3600));
  // A time said but not read refuses the order: it never runs at once instead.
  for (const char* said : {"freeze all at 25:00", "freeze all at 14h30", "freeze the east sector in 5 days",
                           "freeze pi-3 in 9999999 hours", "thaw all at 7 o'clock tonight"}) {
    const AskPlan bad = plan_intent(said, kNow, kOffset);
    EXPECT_FALSE(bad.understood()) << said << ": " << shell_line(bad.run);
    EXPECT_NE(bad.explain.find("I read"), std::string::npos) << said << ": " << bad.explain;
  }
}

TEST(AskMesh, UnknownPhrasingsGetTheClosestVerbs) {
  const AskPlan typo = plan_intent("show the brekers", kNow, kOffset);
  EXPECT_FALSE(typo.understood());
  ASSERT_FALSE(typo.suggestions.empty());
  EXPECT_EQ(typo.suggestions[0].rfind("breakers", 0), 0u) << typo.suggestions[0];
  const AskPlan slow = plan_intent("which are laging?", kNow, kOffset);
  ASSERT_FALSE(slow.suggestions.empty());
  EXPECT_NE(slow.suggestions[0].find("--slowest"), std::string::npos) << slow.suggestions[0];
  const AskPlan nothing = plan_intent("make me a sandwich", kNow, kOffset);
  EXPECT_FALSE(nothing.understood());
  EXPECT_EQ(nothing.suggestions.size(), 3u);  // a default few
  EXPECT_FALSE(plan_intent("", kNow, kOffset).understood());
  EXPECT_FALSE(plan_intent("?!", kNow, kOffset).understood());
  // A question about an order orders nothing; nor does a write verb with no target it can read.
  EXPECT_FALSE(plan_intent("did the freeze reach all nodes?", kNow, kOffset).writes);
  EXPECT_FALSE(plan_intent("why did the mesh pause?", kNow, kOffset).writes);
  EXPECT_FALSE(plan_intent("route around it", kNow, kOffset).writes);
  EXPECT_FALSE(plan_intent("stop routing around it", kNow, kOffset).writes);
  EXPECT_FALSE(plan_intent("take it easy", kNow, kOffset).writes);
}

TEST(AskMesh, ShellLinesQuoteWhatTheShellWouldSplit) {
  EXPECT_EQ(shell_line({"resolve", "12", "--note", "it's fixed"}), "kairosctl resolve 12 --note 'it'\\''s fixed'");
  EXPECT_EQ(shell_line({"nodes", "--cluster", "east"}), "kairosctl nodes --cluster east");
}

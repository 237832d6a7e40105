// The Ball protocol's core (docs/DESIGN.md 6): entry endings, acknowledgements, the hash chain.
#include <gtest/gtest.h>

#include <cctype>

#include "common/core/ball.h"

using namespace kairos;
using namespace kairos::ball;

namespace {

const std::vector<std::string> kPeers{"Ana", "Ben", "node-7"};

struct EndingCase {
  const char* name;
  const char* input;
  Ending ending;      // Ending::none: refused
  const char* words;  // in the error (refused) or the handoff name
};

class Endings : public ::testing::TestWithParam<EndingCase> {};

TEST_P(Endings, AreReadOrRefusedWithAReason) {
  const auto& c = GetParam();
  auto p = parse_input(c.input, kPeers);
  if (c.ending == Ending::none) {
    ASSERT_FALSE(p.input) << c.name;
    EXPECT_NE(p.error.find(c.words), std::string::npos) << c.name << ": " << p.error;
    return;
  }
  ASSERT_TRUE(p.input) << c.name << ": " << p.error;
  EXPECT_TRUE(p.input->ball_mode);
  EXPECT_EQ(p.input->ending, c.ending) << c.name;
  if (c.ending == Ending::handoff) {
    EXPECT_EQ(p.input->handoff_to, c.words);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Ball, Endings,
    ::testing::Values(
        EndingCase{"handoff", "MM: plan drafted\n->Ben", Ending::handoff, "Ben"},
        EndingCase{"handoff to a node", "MM: run it\n->node-7\n\n", Ending::handoff, "node-7"},
        EndingCase{"handoff trailing space", "MM: x\n->Ana  ", Ending::handoff, "Ana"},
        EndingCase{"questions", "MM: draft\nQuestions:\n1. which board?", Ending::questions, ""},
        EndingCase{"action items", "MM: agreed\nAction Items:\n- Ben orders parts", Ending::action_items, ""},
        EndingCase{"touchdown", "MM: all done\nTOUCHDOWN!", Ending::touchdown, ""},
        EndingCase{"null peer", "MM: done here\n->\xC3\x98", Ending::none, "always refused"},
        EndingCase{"empty handoff", "MM: done here\n->", Ending::none, "always refused"},
        EndingCase{"unknown peer", "MM: x\n->Jason", Ending::none, "'Jason' is not a peer"},
        EndingCase{"vague routing", "MM: draft ready, send this to Jason", Ending::none, "vague routing"},
        EndingCase{"indented handoff", "MM: x\n  ->Ben", Ending::none, "left margin"},
        EndingCase{"handoff not last", "MM: x\n->Ben\nmore text", Ending::none, "must be the last line"},
        EndingCase{"no ending", "MM: just some text", Ending::none, "must end with"},
        EndingCase{"empty questions", "MM: x\nQuestions:", Ending::none, "nothing under it"},
        EndingCase{"two blocks", "MM: x\nQuestions:\n1. a\nAction Items:\n- b", Ending::none, "exactly one"},
        EndingCase{"block and handoff", "MM: x\nQuestions:\n1. a\n->Ben", Ending::none, "exactly one"},
        EndingCase{"empty entry", "MM:   \n\n", Ending::none, "empty"}),
    [](const auto& test) {
      std::string n = test.param.name;
      for (auto& ch : n)
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
      return n;
    });

TEST(Ball, ConversationalInputIsKeptWholeAndNotBallMode) {
  auto p = parse_input("Ben, can you check the wiring?", kPeers);
  ASSERT_TRUE(p.input);
  EXPECT_FALSE(p.input->ball_mode);
  EXPECT_EQ(p.input->text, "Ben, can you check the wiring?");
  EXPECT_FALSE(parse_input("   ", kPeers).input);
  EXPECT_FALSE(parse_input(std::string(kMaxInput + 1, 'a'), kPeers).input);
  EXPECT_FALSE(parse_input(std::string("MM: a\0b\n->Ben", 14), kPeers).input);
}

TEST(Ball, BallModeTextIsUnedited) {
  auto p = parse_input("MM:  two spaces kept\r\n->Ben", kPeers);
  ASSERT_TRUE(p.input);
  EXPECT_EQ(p.input->text, "  two spaces kept\r\n->Ben");
}

TEST(Ball, AcknowledgementsOnlyGoForward) {
  EXPECT_EQ(parse_ack("Concur"), AckLevel::concur);
  EXPECT_FALSE(parse_ack("agree"));
  EXPECT_EQ(ack_step_error(AckLevel::none, AckLevel::read), "");
  EXPECT_EQ(ack_step_error(AckLevel::read, AckLevel::concur), "");  // steps may be skipped forward
  EXPECT_NE(ack_step_error(AckLevel::concur, AckLevel::ack).find("only go forward"), std::string::npos);
  EXPECT_NE(ack_step_error(AckLevel::ack, AckLevel::ack), "");
}

std::vector<Entry> chain(int n) {
  std::vector<Entry> v;
  Digest prev{};
  for (int i = 0; i < n; ++i) {
    Entry e;
    e.seq = static_cast<std::uint64_t>(i);
    e.session = "s1";
    e.kind = i == 0 ? "genesis" : "entry";
    e.author = i % 2 ? "Ana" : "Ben";
    e.at_us = 1000 + i;
    e.text = "text " + std::to_string(i);
    e.hash = chain_hash(prev, e);
    prev = e.hash;
    v.push_back(e);
  }
  return v;
}

TEST(Ball, CanonicalFormIsDocumentedAndHashed) {
  Entry e;
  e.seq = 3;
  e.session = "s1";
  e.kind = "entry";
  e.author = "Ana";
  e.at_us = 42;
  e.text = "MM text\n->Ben";
  EXPECT_EQ(canonical(e), "seq=3\nsession=s1\nkind=entry\nauthor=Ana\nat_us=42\nlen=13\nMM text\n->Ben");
  Digest zero{};
  auto h = chain_hash(zero, e);
  Bytes b(32, 0);
  std::string c = canonical(e);
  b.insert(b.end(), c.begin(), c.end());
  EXPECT_EQ(h, sha256(b));
}

TEST(Ball, VerifyFindsEditsRemovalsAndReordering) {
  auto v = chain(5);
  EXPECT_FALSE(verify(v, 4, v.back().hash));
  auto edited = v;
  edited[2].text = "text 2, edited";
  auto b = verify(edited, 4, v.back().hash);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->seq, 2u);
  EXPECT_NE(b->reason.find("altered"), std::string::npos);
  auto truncated = v;
  truncated.resize(3);
  b = verify(truncated, 4, v.back().hash);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->seq, 3u);
  EXPECT_NE(b->reason.find("entries 3..4 were removed"), std::string::npos) << b->reason;
  auto swapped = v;
  std::swap(swapped[1], swapped[2]);
  b = verify(swapped, 4, v.back().hash);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->seq, 1u);
  EXPECT_NE(b->reason.find("out of order"), std::string::npos);
  b = verify(v, 4, Digest{});
  ASSERT_TRUE(b);
  EXPECT_NE(b->reason.find("signed head"), std::string::npos);
}

}  // namespace

namespace {

// The scripted play, without the wire: two people and a node.
TEST(BallSession, APlayHandsTheBallAroundRefusesWhatItMustAndReachesTouchdown) {
  Session s("play-1", "b1", {"Ana", "Ben", "node-7"}, {"pick a board", "order it"}, "Ana", 100);
  ASSERT_EQ(s.lineage().size(), 1u);
  EXPECT_EQ(s.lineage()[0].kind, "genesis");
  EXPECT_EQ(s.holder(), "Ana");

  auto o = s.say("Ben", "MM: I think a Pi Zero\n->Ana", 101);
  EXPECT_NE(o.error.find("Ana holds the Ball"), std::string::npos) << o.error;
  EXPECT_FALSE(s.say("Ana", "MM: over to nobody\n->\xC3\x98", 102).error.empty());
  EXPECT_NE(s.say("Ana", "MM: draft done, send this to Jason", 103).error.find("vague routing"), std::string::npos);
  EXPECT_EQ(s.lineage().size(), 1u) << "refusals change nothing";
  EXPECT_TRUE(s.say("Ben", "Ana, are you there?", 104).conversational);
  EXPECT_EQ(s.lineage().size(), 1u) << "conversation is never logged";

  o = s.say("Ana", "MM: candidates: Pi Zero, Pi 2\n->node-7", 105);
  ASSERT_TRUE(o.appended) << o.error;
  EXPECT_EQ(s.holder(), "node-7");
  o = s.say("node-7", "MM: Pi Zero: 1 W idle\nAction Items:\n- Ben orders two", 106);
  ASSERT_TRUE(o.appended) << o.error;
  EXPECT_EQ(s.holder(), "node-7") << "a block keeps the Ball";

  // Too early: objectives open, acknowledgements short of Concur.
  o = s.say("node-7", "MM: done\nTOUCHDOWN!", 107);
  EXPECT_NE(o.error.find("objective 1 'pick a board' is not done"), std::string::npos) << o.error;
  EXPECT_NE(o.error.find("Ben is at none on entry 1"), std::string::npos) << o.error;

  for (const char* p : {"Ben", "node-7"}) ASSERT_TRUE(s.ack(p, 1, AckLevel::concur, 110).appended);
  for (const char* p : {"Ana", "Ben"}) ASSERT_TRUE(s.ack(p, 2, AckLevel::read, 111).appended);
  EXPECT_FALSE(s.ack("Ana", 2, AckLevel::read, 112).error.empty()) << "only forward";
  EXPECT_FALSE(s.ack("node-7", 2, AckLevel::concur, 112).error.empty()) << "not its own entry";
  for (const char* p : {"Ana", "Ben"}) ASSERT_TRUE(s.ack(p, 2, AckLevel::implement, 113).appended);
  ASSERT_TRUE(s.done("Ben", 1, 114).appended);
  o = s.say("node-7", "MM: done\nTOUCHDOWN!", 115);
  EXPECT_NE(o.error.find("objective 2 'order it' is not done"), std::string::npos) << o.error;
  EXPECT_EQ(o.error.find("objective 1"), std::string::npos) << o.error;
  ASSERT_TRUE(s.done("Ben", 2, 116).appended);
  EXPECT_FALSE(s.done("Ben", 2, 117).appended);
  o = s.say("node-7", "MM: both done\nTOUCHDOWN!", 118);
  ASSERT_TRUE(o.appended) << o.error;
  EXPECT_TRUE(o.closed);
  EXPECT_TRUE(s.closed());
  EXPECT_FALSE(s.say("node-7", "MM: more\n->Ana", 119).error.empty());
  EXPECT_FALSE(s.ack("Ana", 15, AckLevel::read, 119).appended) << "closed: not even an acknowledgement";
  EXPECT_FALSE(s.done("Ana", 1, 119).appended);

  // The lineage verifies against its head; an edit is found where it is.
  const auto& l = s.lineage();
  EXPECT_FALSE(verify(l, l.back().seq, l.back().hash));
  auto edited = l;
  edited[3].text = "entry=1\nlevel=implement";
  auto b = verify(edited, l.back().seq, l.back().hash);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->seq, 3u);

  // A gateway restart rebuilds the play from the stored lineage.
  Break why;
  auto again = Session::replay(l, why);
  ASSERT_TRUE(again) << why.reason;
  EXPECT_TRUE(again->closed());
  EXPECT_EQ(again->lineage().back().hash, l.back().hash);
  EXPECT_EQ(again->ball_id(), "b1");
  EXPECT_EQ(again->objectives(), s.objectives());
  EXPECT_FALSE(Session::replay(edited, why));
  EXPECT_EQ(why.seq, 3u);
}

TEST(BallSession, ReplayStopsAtTheFirstEntryThatDoesNotPlayAgain) {
  Session s("p", "b2", {"Ana", "Ben"}, {"one"}, "Ana", 1);
  EXPECT_NE(s.say("Ana", "MM: mine\n->Ana", 2).error.find("yourself"), std::string::npos);
  ASSERT_TRUE(s.say("Ana", "MM: first\n->Ben", 2).appended);
  EXPECT_EQ(s.pending("Ana"), std::vector<std::uint64_t>{});
  EXPECT_EQ(s.pending("Ben"), std::vector<std::uint64_t>{1});
  ASSERT_TRUE(s.ack("Ben", 1, AckLevel::concur, 3).appended);
  EXPECT_TRUE(s.pending("Ben").empty());
  auto l = s.lineage();
  // A rechained lineage whose ack names an entry Ben wrote himself: it
  // chains, but the rules refuse it when played again.
  l[2].text = "entry=2\nlevel=concur";
  l[2].author = "Ben";
  l[2].hash = chain_hash(l[1].hash, l[2]);
  Break why;
  EXPECT_FALSE(Session::replay(l, why));
  EXPECT_EQ(why.seq, 2u);
  EXPECT_NE(why.reason.find("does not replay"), std::string::npos) << why.reason;
  auto again = Session::replay(s.lineage(), why);
  ASSERT_TRUE(again) << why.reason;
  EXPECT_EQ(again->holder(), "Ben");
  EXPECT_TRUE(again->pending("Ben").empty());
}

}  // namespace

namespace {

TEST(BallHut, PeersAndObjectivesAreCheckedAndObjectivesTrimmed) {
  std::vector<std::string> trimmed{"  pick a board\t"};
  EXPECT_EQ(check_hut({"Ana", "n1"}, trimmed), "");
  EXPECT_EQ(trimmed.front(), "pick a board");
  auto refused = [](std::vector<std::string> peers, std::vector<std::string> objectives, const std::string& part) {
    const auto why = check_hut(peers, objectives);
    EXPECT_NE(why.find(part), std::string::npos) << why;
  };
  refused({"Ana"}, {"x"}, "2 to 16 peers");
  refused(std::vector<std::string>(17, "p"), {"x"}, "named twice");
  refused({"Ana", "Ana"}, {"x"}, "named twice");
  refused({"Ana", "B c"}, {"x"}, "not a name");
  refused({"Ana", "Ben"}, {}, "1 to 16 objectives");
  refused({"Ana", "Ben"}, {"   "}, "one line of 1 to 128");
  refused({"Ana", "Ben"}, {"a\nb"}, "one line");
  refused({"Ana", "Ben"}, {std::string(129, 'x')}, "one line of 1 to 128");
  std::vector<std::string> many;
  for (int i = 0; i < 17; ++i) many.push_back("p" + std::to_string(i));
  refused(many, {"x"}, "2 to 16 peers");
}

}  // namespace

namespace {

TEST(BallHut, ANodePeerMustAdvertiseJobBall) {
  const std::map<std::string, std::vector<std::string>> nodes = {
      {"n1", {"job:hash", "job:ball"}},  // registered, online or not: its last birth counts
      {"n2", {"job:hash", "job:ball2"}},
      {"n3", {}},
  };
  // People (any name that is no registered node) need nothing.
  EXPECT_EQ(check_node_peers({"Ana", "Ben"}, nodes), "");
  EXPECT_EQ(check_node_peers({"Ana", "n1"}, nodes), "");
  EXPECT_EQ(check_node_peers({"Ana", "n9"}, nodes), "") << "n9 is not registered: a person";
  for (const std::string node : {"n2", "n3"}) {
    SCOPED_TRACE(node);
    const auto why = check_node_peers({"Ana", "n1", node}, nodes);
    EXPECT_NE(why.find("peer '" + node + "' is a node that does not advertise job:ball"), std::string::npos) << why;
    EXPECT_NE(why.find("add a [jobs.ball] table to " + node + "'s config"), std::string::npos) << why;
    EXPECT_NE(why.find("docs/BALL.md"), std::string::npos) << why;
  }
}

// A node holder whose job failed is asked again 30 s later, then 60, 120,
// ... at most 600 s after each further failure in a row.
TEST(BallAskSchedule, BacksOffFromTheRetryDoublingToTheCap) {
  const AskSchedule def;
  const std::int64_t t = 1'000'000'000;
  const std::pair<int, std::int64_t> cases[] = {
      {1, 30'000'000}, {2, 60'000'000}, {3, 120'000'000}, {4, 240'000'000}, {5, 480'000'000},
      {6, 600'000'000}, {7, 600'000'000}, {1000, 600'000'000},
  };
  for (const auto& [failures, wait] : cases) EXPECT_EQ(def.after_failure(t, failures), t + wait) << failures;
  const AskSchedule quick{2'000'000, 5'000'000};
  EXPECT_EQ(quick.after_failure(0, 1), 2'000'000);
  EXPECT_EQ(quick.after_failure(0, 2), 4'000'000);
  EXPECT_EQ(quick.after_failure(0, 3), 5'000'000);
  // A job that fails at once, over ten minutes: asked at 0, 30, 90, 210 and
  // 450 s, five times, not six hundred.
  int asks = 0;
  for (std::int64_t now = 0; now < 600'000'000; now = def.after_failure(now, asks)) ++asks;
  EXPECT_EQ(asks, 5);
}

}  // namespace

// The Ball protocol end to end (docs/DESIGN.md 6): two people through kairosctl and a
// real kairos-node whose `ball` job handler holds the Ball, over a real
// Mosquitto, the gateway storing the lineage in its SQLite file.
#include <gtest/gtest.h>

#include <array>

#include "common/core/ball.h"
#include "common/core/frame.h"
#include "common/core/topic.h"
#include "tests/integration/harness.h"

using namespace kairos;
using namespace kairos::test;
using namespace std::chrono_literals;

namespace {

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

struct Play {
  TempDir dir;
  Broker broker{dir};
  Mesh mesh{dir, broker};
  std::string db = dir.file("gateway.db");
  std::unique_ptr<Client> watch;

  void start() {
    mesh.start_gateway("[liveness]\nheartbeat_period_s = 0.5\n");
    mesh.start_node("n1", "c1", "waveform = \"constant\"\noffset = 0.25\n\n[jobs.ball]\ncommand = [\"/bin/sh\", \"" +
                                    std::string(KAIROS_SOURCE_DIR) + "/tools/ball-peer\"]\n");
    ASSERT_TRUE(eventually([&] {
      auto n = mesh.node_info("n1");
      return n && n->online;
    })) << read_text(dir.file("n1.log"));
    watch = std::make_unique<Client>(broker.uri());
    watch->subscribe(std::string(kTopicRoot) + mesh.name() + "/_ball/#");
  }
  RunResult ctl(const std::vector<std::string>& args) { return mesh.kairosctl(args); }
  // ball say through stdin, as a person would pipe a file in.
  RunResult say_stdin(const std::string& as, const std::string& text) {
    const std::string file = dir.file("say.txt");
    dir.write("say.txt", text);
    std::vector<std::string> argv{"/bin/sh", "-c", "exec \"$0\" \"$@\" < " + file};
    for (auto& a : mesh.kairosctl_argv({"ball", "say", "design", "--as", as, "-"})) argv.push_back(std::move(a));
    return run_command(argv, dir.path());
  }
  std::unique_ptr<kairos_v1_ControlResponse> show(std::uint64_t from = 0) {
    kairos_v1_ControlRequest req = kairos_v1_ControlRequest_init_zero;
    req.which_verb = kairos_v1_ControlRequest_ball_tag;
    req.verb.ball.verb = kairos_v1_BallVerb_BALL_SHOW;
    set_string(req.verb.ball.session, "design");
    req.verb.ball.from_seq = from;
    return mesh.ctl(req);
  }
  std::string holder() {
    auto r = show();
    return r && r->ok ? std::string(r->reply.ball.play.holder) : "";
  }
  std::string missing() {
    auto r = show();
    return r && r->ok ? std::string(r->reply.ball.missing) : "?";
  }
  std::uint64_t head() {
    auto r = show();
    return r && r->ok ? r->reply.ball.play.head_seq : 0;
  }
  // The newest entry by author of kind "entry", from the stored lineage.
  std::uint64_t last_entry_by(const std::string& author) {
    auto rows = query_db(db, "SELECT MAX(seq) FROM ball_entries WHERE author = '" + author + "' AND kind = 'entry'");
    return rows.empty() || rows[0][0].empty() ? 0 : std::stoull(rows[0][0]);
  }
  std::vector<std::shared_ptr<const Envelope>> deliveries(const std::string& person) {
    return watch->frames(ball_to_topic(mesh.name(), "design", person), mesh.operator_key(),
                         kairos_v1_Envelope_ball_delivery_tag);
  }
  std::string log() { return read_text(dir.file("gateway.log")) + read_text(dir.file("n1.log")); }
};

TEST(Ball, ThreePeersHandTheBallAroundAndTheLineageCatchesAnEditAndATruncation) {
  Play p;
  p.start();
  auto r = p.ctl({"ball", "hut", "design", "--peers", "Ana,Ben,n1", "--objective", "pick a board", "--objective",
                  "order it", "--as", "Ana"});
  ASSERT_EQ(r.status, 0) << r.output << p.log();
  EXPECT_EQ(p.holder(), "Ana");

  // Refusals: out of turn, ->Ø, vague routing. Each says why and changes nothing.
  const std::vector<std::array<std::string, 3>> refused = {
      {"Ben", "MM: I say a Pi Zero\n->Ana", "Ana holds the Ball"},
      {"Ana", "MM: over to nobody\n->\xC3\x98", "always refused"},
      {"Ana", "MM: draft done, send this to Jason", "vague routing"},
      {"Ana", "MM: over to you\n   ->Ben", "left margin"},
  };
  for (const auto& [as, text, why] : refused) {
    r = p.ctl({"ball", "say", "design", "--as", as, text});
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_TRUE(has(r.output, why)) << r.output;
  }
  EXPECT_EQ(p.head(), 0u) << "refusals append nothing";

  // Conversation reaches the addressed person only and is never logged.
  r = p.ctl({"ball", "say", "design", "--as", "Ben", "--to", "Ana", "Ana, ready when you are"});
  ASSERT_EQ(r.status, 0) << r.output;
  ASSERT_TRUE(p.watch->wait_for([&](const auto&) {
    for (const auto& env : p.deliveries("Ana"))
      if (std::string(env->message.ball_delivery.text) == "Ana, ready when you are") return true;
    return false;
  }, 15s));
  EXPECT_EQ(p.head(), 0u);
  for (const auto& env : p.deliveries("Ben")) EXPECT_STREQ(env->message.ball_delivery.text, "");
  // To the node, through its job; its answer comes back to Ben alone. The
  // text is written nowhere, not even in the job table.
  r = p.ctl({"ball", "say", "design", "--as", "Ben", "--to", "n1", "n1, what is your load?"});
  ASSERT_EQ(r.status, 0) << r.output;
  ASSERT_TRUE(p.watch->wait_for([&](const auto&) {
    for (const auto& env : p.deliveries("Ben"))
      if (has(env->message.ball_delivery.text, "n1 heard you: n1, what is your load?")) return true;
    return false;
  }, 30s)) << p.log();
  for (const auto& env : p.deliveries("Ana")) EXPECT_FALSE(has(env->message.ball_delivery.text, "heard you"));
  EXPECT_EQ(query_db(p.db, "SELECT COUNT(*) FROM jobs WHERE handler = 'ball' AND "
                           "instr(CAST(payload AS TEXT), 'what is your load') > 0")[0][0],
            "0");
  EXPECT_EQ(p.head(), 0u);

  // Ana hands the Ball to the node; its job handler concurs and hands it back.
  r = p.say_stdin("Ana", "MM: candidates: Pi Zero, Pi 2\n->n1");
  ASSERT_EQ(r.status, 0) << r.output;
  const std::uint64_t ana1 = p.last_entry_by("Ana");
  ASSERT_TRUE(eventually([&] { return p.holder() == "Ana"; }, 30s)) << p.holder() << p.log();
  const std::uint64_t n1 = p.last_entry_by("n1");
  ASSERT_GT(n1, ana1);
  EXPECT_EQ(query_db(p.db, "SELECT COUNT(*) FROM ball_entries WHERE author = 'n1' AND kind = 'ack' AND CAST(text AS TEXT) = 'entry=" +
                               std::to_string(ana1) + "\nlevel=concur'")[0][0],
            "1");

  // Too early: objectives open, Ben short of Concur.
  r = p.ctl({"ball", "say", "design", "--as", "Ana", "MM: we are done\nTOUCHDOWN!"});
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(has(r.output, "objective 1 'pick a board' is not done")) << r.output;
  EXPECT_TRUE(has(r.output, "Ben is at none")) << r.output;

  r = p.ctl({"ball", "say", "design", "--as", "Ana", "MM: Pi Zero it is. Ben, order two.\n->Ben"});
  ASSERT_EQ(r.status, 0) << r.output;
  const std::uint64_t ana2 = p.last_entry_by("Ana");
  EXPECT_EQ(p.holder(), "Ben");
  for (auto seq : {ana1, n1, ana2}) {
    r = p.ctl({"ball", "ack", "design", std::to_string(seq), "concur", "--as", "Ben"});
    ASSERT_EQ(r.status, 0) << r.output;
  }
  r = p.ctl({"ball", "ack", "design", std::to_string(ana1), "read", "--as", "Ben"});
  EXPECT_EQ(r.status, 1) << "acknowledgements only go forward: " << r.output;
  r = p.ctl({"ball", "ack", "design", std::to_string(n1), "understood", "--as", "Ana"});
  ASSERT_EQ(r.status, 0) << r.output;
  r = p.ctl({"ball", "ack", "design", std::to_string(n1), "concur", "--as", "Ana"});
  ASSERT_EQ(r.status, 0) << r.output;
  for (const char* o : {"1", "2"}) {
    r = p.ctl({"ball", "done", "design", o, "--as", "Ben"});
    ASSERT_EQ(r.status, 0) << r.output;
  }
  // The node concurs with Ana's second entry through its job.
  ASSERT_TRUE(eventually([&] { return p.missing().empty(); }, 30s)) << p.missing() << p.log();
  r = p.ctl({"ball", "say", "design", "--as", "Ben", "MM: ordered two Pi Zero boards\nTOUCHDOWN!"});
  ASSERT_EQ(r.status, 0) << r.output;
  auto s = p.show();
  ASSERT_TRUE(s && s->ok);
  EXPECT_TRUE(s->reply.ball.play.closed);
  r = p.ctl({"ball", "say", "design", "--as", "Ben", "MM: one more\n->Ana"});
  EXPECT_EQ(r.status, 1) << "a closed play takes nothing: " << r.output;

  // Every person got every ball-mode entry, signed, in order.
  const std::uint64_t last = p.head();
  ASSERT_TRUE(p.watch->wait_for([&](const auto&) {
    std::uint64_t seen = 0;
    for (const auto& env : p.deliveries("Ana"))
      if (env->message.ball_delivery.has_entry) seen = env->message.ball_delivery.entry.seq;
    return seen == last;
  }, 15s)) << "Ana did not receive the TOUCHDOWN! entry";
  // The signed head on the broker is the last entry.
  ASSERT_TRUE(p.watch->wait_for([&](const auto&) {
    auto heads = p.watch->frames(ball_head_topic(p.mesh.name(), "design"), p.mesh.operator_key(),
                                 kairos_v1_Envelope_ball_head_tag);
    return !heads.empty() && heads.back()->message.ball_head.seq == last && heads.back()->message.ball_head.closed;
  }, 15s));
  // Refusals are conflicts on record.
  EXPECT_GE(std::stoi(query_db(p.db, "SELECT COUNT(*) FROM conflicts WHERE type = 'BALL_REFUSAL'")[0][0]), 6);
  EXPECT_EQ(query_db(p.db, "SELECT COUNT(*) FROM conflicts WHERE type = 'BALL_REFUSAL' AND node = 'Ben' AND "
                           "detail LIKE '%Ana holds the Ball%'")[0][0],
            "1");

  r = p.ctl({"ball", "verify", "design"});
  ASSERT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(has(r.output, "ok")) << r.output;

  // The lineage is append-only in the database itself.
  EXPECT_THROW(exec_db(p.db, "UPDATE ball_entries SET text = 'x' WHERE seq = 1"), std::runtime_error);
  EXPECT_THROW(exec_db(p.db, "DELETE FROM ball_entries WHERE seq = 1"), std::runtime_error);

  // Someone with the file drops the guard and edits one entry: verify names it.
  const std::string ana2s = std::to_string(ana2);
  const auto original = query_db(p.db, "SELECT hex(text) FROM ball_entries WHERE seq = " + ana2s)[0][0];
  exec_db(p.db, "DROP TRIGGER ball_entries_no_update; DROP TRIGGER ball_entries_no_delete; "
                "UPDATE ball_entries SET text = 'MM: Pi 2 it is. Ben, order two.\n->Ben' WHERE seq = " + ana2s);
  r = p.ctl({"ball", "verify", "design"});
  EXPECT_EQ(r.status, 3) << r.output;
  EXPECT_TRUE(has(r.output, "entry " + ana2s)) << r.output;
  EXPECT_TRUE(has(r.output, "altered")) << r.output;
  // Put back, it verifies again: the check looks at the bytes, nothing else.
  exec_db(p.db, "UPDATE ball_entries SET text = CAST(x'" + original + "' AS TEXT) WHERE seq = " + ana2s);
  r = p.ctl({"ball", "verify", "design"});
  EXPECT_EQ(r.status, 0) << r.output;

  // Another deletes the last two entries: the signed head says what is gone.
  exec_db(p.db, "DELETE FROM ball_entries WHERE seq >= " + std::to_string(last - 1));
  r = p.ctl({"ball", "verify", "design"});
  EXPECT_EQ(r.status, 3) << r.output;
  EXPECT_TRUE(has(r.output, "entries " + std::to_string(last - 1) + ".." + std::to_string(last) + " were removed"))
      << r.output;
}

TEST(Ball, APlaySurvivesAGatewayRestartAndAHutStartsItAgain) {
  Play p;
  p.start();
  auto r = p.ctl({"ball", "hut", "design", "--peers", "Ana,Ben", "--objective", "agree", "--as", "Ana"});
  ASSERT_EQ(r.status, 0) << r.output;
  r = p.ctl({"ball", "say", "design", "--as", "Ana", "MM: proposal\n->Ben"});
  ASSERT_EQ(r.status, 0) << r.output;
  auto before = p.show();
  ASSERT_TRUE(before && before->ok);
  ASSERT_EQ(std::string(before->reply.ball.play.holder), "Ben") << r.output;
  const std::string ball_id = before->reply.ball.play.ball_id;

  p.mesh.stop_gateway();
  p.mesh.start_gateway("[liveness]\nheartbeat_period_s = 0.5\n");
  ASSERT_TRUE(eventually([&] { return p.holder() == "Ben"; })) << p.log();
  r = p.ctl({"ball", "say", "design", "--as", "Ana", "MM: again\n->Ben"});
  EXPECT_EQ(r.status, 1) << "still Ben's turn after the restart: " << r.output;
  r = p.ctl({"ball", "say", "design", "--as", "Ben", "MM: agreed\n->Ana"});
  ASSERT_EQ(r.status, 0) << r.output;
  r = p.ctl({"ball", "verify", "design"});
  EXPECT_EQ(r.status, 0) << r.output;

  // hut again: a new ball id and genesis, the old play kept in the database.
  r = p.ctl({"ball", "hut", "design", "--peers", "Ben,Ana", "--objective", "next", "--as", "Ben"});
  ASSERT_EQ(r.status, 0) << r.output;
  auto after = p.show();
  ASSERT_TRUE(after && after->ok);
  EXPECT_NE(std::string(after->reply.ball.play.ball_id), ball_id);
  EXPECT_EQ(after->reply.ball.play.head_seq, 0u);
  EXPECT_EQ(std::string(after->reply.ball.play.holder), "Ben");
  EXPECT_EQ(query_db(p.db, "SELECT COUNT(*) FROM ball_entries WHERE ball_id = '" + ball_id + "'")[0][0], "3");
  r = p.ctl({"ball", "list"});
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_TRUE(has(r.output, ball_id)) << r.output;
  r = p.ctl({"ball", "verify", "design"});
  EXPECT_EQ(r.status, 0) << r.output;

  // Bad input: a clear refusal, exit 1 or 2, nothing changes.
  r = p.ctl({"ball", "say", "nosuch", "--as", "Ana", "MM: x\n->Ben"});
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(has(r.output, "no play 'nosuch'")) << r.output;
  r = p.ctl({"ball", "hut", "solo", "--peers", "Ana", "--objective", "x"});
  EXPECT_NE(r.status, 0) << r.output;
  r = p.ctl({"ball", "say", "design", "--as", "Zed", "MM: hello\n->Ana"});
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(has(r.output, "not a peer")) << r.output;
}

// Someone with the database file, while the gateway is down, rewrites the
// last entry and recomputes the chain so that it replays: the broker's
// signed head still catches it when the gateway starts; a truncation too.
TEST(Ball, ALineageRewrittenWhileTheGatewayIsDownIsCaughtByTheSignedHead) {
  for (const bool truncate : {false, true}) {
    SCOPED_TRACE(truncate ? "truncated" : "rewritten and rechained");
    Play p;
    p.start();
    auto r = p.ctl({"ball", "hut", "design", "--peers", "Ana,Ben", "--objective", "agree", "--as", "Ana"});
    ASSERT_EQ(r.status, 0) << r.output;
    ASSERT_EQ(p.ctl({"ball", "say", "design", "--as", "Ana", "MM: pay 10\n->Ben"}).status, 0);
    ASSERT_EQ(p.ctl({"ball", "say", "design", "--as", "Ben", "MM: agreed: 10\n->Ana"}).status, 0);
    ASSERT_EQ(p.ctl({"ball", "verify", "design"}).status, 0);
    auto before = p.show();
    ASSERT_TRUE(before && before->ok);
    const Bytes signed_hash(before->reply.ball.play.head_hash.bytes, before->reply.ball.play.head_hash.bytes + 32);
    p.mesh.stop_gateway();

    exec_db(p.db, "DROP TRIGGER ball_entries_no_update; DROP TRIGGER ball_entries_no_delete");
    if (truncate) {
      exec_db(p.db, "DELETE FROM ball_entries WHERE seq = 2");
    } else {
      // Ben's entry now says 1000, hashed as the chain wants it.
      auto prev = query_db(p.db, "SELECT hex(hash) FROM ball_entries WHERE seq = 1")[0][0];
      auto row = query_db(p.db, "SELECT session, author, at_us FROM ball_entries WHERE seq = 2")[0];
      ball::Entry e;
      e.seq = 2;
      e.session = row[0];
      e.kind = "entry";
      e.author = row[1];
      e.at_us = std::stoll(row[2]);
      e.text = " agreed: 1000\n->Ana";
      auto prev_bytes = from_hex(prev);
      ASSERT_TRUE(prev_bytes && prev_bytes->size() == 32);
      Digest d{};
      std::copy(prev_bytes->begin(), prev_bytes->end(), d.begin());
      const Digest h = ball::chain_hash(d, e);
      exec_db(p.db, "UPDATE ball_entries SET text = CAST('" + e.text + "' AS BLOB), hash = x'" +
                        to_hex(ByteView(h.data(), h.size())) + "' WHERE seq = 2");
    }
    p.mesh.start_gateway("[liveness]\nheartbeat_period_s = 0.5\n");
    std::string broken;
    ASSERT_TRUE(eventually([&] {
      auto s = p.show();
      broken = s && s->ok ? std::string(s->reply.ball.play.broken) : "";
      return !broken.empty();
    })) << p.log();
    EXPECT_TRUE(has(broken, truncate ? "entries were removed" : "differs from its signed head")) << broken;
    r = p.ctl({"ball", "say", "design", "--as", "Ana", "MM: next\n->Ben"});
    EXPECT_EQ(r.status, 1) << r.output;
    EXPECT_TRUE(has(r.output, "broken")) << r.output;
    EXPECT_EQ(query_db(p.db, "SELECT COUNT(*) FROM conflicts WHERE type = 'BALL_LINEAGE_BROKEN' AND priority = 4")[0][0],
              "1");
    r = p.ctl({"ball", "verify", "design"});
    EXPECT_EQ(r.status, 3) << r.output;
    // The broker still holds the head signed before the change: the
    // gateway signed none for the changed lineage.
    Client late(p.broker.uri());
    late.subscribe(ball_head_topic(p.mesh.name(), "design"));
    std::shared_ptr<const Envelope> head;
    ASSERT_TRUE(late.wait_for([&](const auto&) {
      auto heads = late.frames(ball_head_topic(p.mesh.name(), "design"), p.mesh.operator_key(),
                               kairos_v1_Envelope_ball_head_tag);
      if (!heads.empty()) head = heads.back();
      return head != nullptr;
    }, 10s));
    EXPECT_EQ(head->message.ball_head.seq, 2u);
    EXPECT_EQ(Bytes(head->message.ball_head.hash.bytes, head->message.ball_head.hash.bytes + 32), signed_hash);
  }
}


// A node peer must be able to answer: a registered node that does not
// advertise job:ball is refused with what to do; one that is offline but
// advertised it in its last birth is taken; a name that is no registered
// node is a person.
TEST(Ball, AHutRefusesANodePeerWithoutABallJobAndTakesAnOfflineOneThatHasIt) {
  Play p;
  p.start();
  p.mesh.start_node("n2", "c1", "waveform = \"constant\"\n");
  ASSERT_TRUE(eventually([&] {
    auto n = p.mesh.node_info("n2");
    return n && n->online;
  })) << read_text(p.dir.file("n2.log"));
  auto r = p.ctl({"ball", "hut", "design", "--peers", "Ana,n2", "--objective", "x", "--as", "Ana"});
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_TRUE(has(r.output, "peer 'n2' is a node that does not advertise job:ball")) << r.output;
  EXPECT_TRUE(has(r.output, "add a [jobs.ball] table to n2's config")) << r.output;
  EXPECT_TRUE(has(r.output, "docs/BALL.md")) << r.output;
  EXPECT_FALSE(p.show() && p.show()->ok) << "nothing was started";

  r = p.ctl({"ball", "hut", "design", "--peers", "Ana,Zed", "--objective", "x", "--as", "Ana"});
  EXPECT_EQ(r.status, 0) << "Zed is no node: a person. " << r.output;

  p.mesh.node("n1").signal(SIGTERM);
  ASSERT_TRUE(eventually([&] {
    auto n = p.mesh.node_info("n1");
    return n && !n->online;
  })) << p.log();
  r = p.ctl({"ball", "hut", "design", "--peers", "Ana,n1", "--objective", "x", "--as", "Ana"});
  EXPECT_EQ(r.status, 0) << "n1 is offline but its last birth advertised job:ball: " << r.output;
}

// A node holder whose job fails at once (here: it no longer has a ball
// handler) is asked again ball.retry_s later, doubling up to
// ball.retry_max_s: not once a second.
TEST(Ball, ANodeHolderThatCannotAnswerIsAskedAgainOnTheBackoffScheduleNotInALoop) {
  Play p;
  p.mesh.start_gateway("[liveness]\nheartbeat_period_s = 0.5\n[ball]\nretry_s = 1\nretry_max_s = 4\n");
  const std::string peer = "[jobs.ball]\ncommand = [\"/bin/sh\", \"" + std::string(KAIROS_SOURCE_DIR) + "/tools/ball-peer\"]\n";
  p.mesh.start_node("n1", "c1", "waveform = \"constant\"\n\n" + peer);
  std::uint64_t session = 0;
  ASSERT_TRUE(eventually([&] {
    auto n = p.mesh.node_info("n1");
    if (n && n->online) session = n->session_id;
    return n && n->online;
  })) << p.log();
  auto r = p.ctl({"ball", "hut", "design", "--peers", "Ana,n1", "--objective", "x", "--as", "Ana"});
  ASSERT_EQ(r.status, 0) << r.output;
  const std::string ball_jobs = "FROM jobs WHERE handler = 'ball' AND dest = 'node:n1'";
  ASSERT_TRUE(eventually([&] { return query_db(p.db, "SELECT COUNT(*) " + ball_jobs + " AND state = 'DONE'")[0][0] == "1"; }))
      << "the genesis reached n1: " << p.log();

  // n1 comes back without its ball handler, then Ana hands it the Ball.
  p.mesh.node("n1").signal(SIGTERM);
  ASSERT_TRUE(p.mesh.node("n1").wait(10s));
  p.mesh.start_node("n1", "c1", "waveform = \"constant\"\n");
  ASSERT_TRUE(eventually([&] {
    auto n = p.mesh.node_info("n1");
    return n && n->online && n->session_id != session;
  })) << p.log();
  const std::string before = query_db(p.db, "SELECT COALESCE(MAX(id), 0) " + ball_jobs)[0][0];
  r = p.ctl({"ball", "say", "design", "--as", "Ana", "MM: over to you\n->n1"});
  ASSERT_EQ(r.status, 0) << r.output;
  ASSERT_EQ(p.holder(), "n1");

  // Asks at 0, 1, 3 and 7 s (plus up to the gateway's 1 s service tick each).
  const std::string asks = "SELECT created_wall_us, error " + ball_jobs + " AND id > " + before + " ORDER BY id";
  std::vector<std::vector<std::string>> rows;
  ASSERT_TRUE(eventually([&] {
    rows = query_db(p.db, asks);
    return rows.size() >= 4;
  }, 40s)) << rows.size() << " asks\n" << p.log();
  for (const auto& row : rows) EXPECT_EQ(row[1], "no_capable_node");
  const double expected[] = {1, 2, 4};
  for (std::size_t i = 1; i < 4; ++i) {
    const double gap = static_cast<double>(std::stoll(rows[i][0]) - std::stoll(rows[i - 1][0])) / 1e6;
    EXPECT_GE(gap, expected[i - 1] - 0.05) << "ask " << i;
    EXPECT_LE(gap, expected[i - 1] + 3) << "ask " << i;
  }
  // The cap: the next one 4 s after the last, not 8.
  ASSERT_TRUE(eventually([&] {
    rows = query_db(p.db, asks);
    return rows.size() >= 5;
  }, 20s)) << p.log();
  const double gap = static_cast<double>(std::stoll(rows[4][0]) - std::stoll(rows[3][0])) / 1e6;
  EXPECT_GE(gap, 4 - 0.05);
  EXPECT_LE(gap, 4 + 3);
  EXPECT_TRUE(has(read_text(p.dir.file("gateway.log")), "asked again in 4.0 s (failure 4 in a row)")) << p.log();
}

}  // namespace

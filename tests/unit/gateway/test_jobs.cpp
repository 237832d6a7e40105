// Jobs (docs/DESIGN.md 5.5, 5.6): routing by impedance and load, the per-node limit,
// timeouts and refusals retried with doubling backoff. The vote, late
// results, restore, trim and counts: test_job_votes.cpp.
#include "tests/unit/gateway/job_rig.h"

using namespace kairos;
using namespace kairos::gw;
using namespace kairos::gw::jobs_test;

// --- result hash and names --------------------------------------------------

TEST(JobResultHash, CoversStatusExitCodeAndOutput) {
  const auto base = result_hash(OK, 0, as_bytes("42"));
  EXPECT_EQ(base, result_hash(OK, 0, as_bytes("42")));
  EXPECT_NE(base, result_hash(ERR, 0, as_bytes("42")));
  EXPECT_NE(base, result_hash(OK, 1, as_bytes("42")));
  EXPECT_NE(base, result_hash(OK, 0, as_bytes("43")));
  EXPECT_NE(base, result_hash(OK, 0, as_bytes("")));
  EXPECT_NE(result_hash(OK, -1, as_bytes("")), result_hash(OK, 0, as_bytes("")));
}

TEST(JobState, NamesRoundTrip) {
  for (auto s : {JobState::queued, JobState::running, JobState::done, JobState::failed})
    EXPECT_EQ(parse_job_state(to_string(s)), s) << to_string(s);
  EXPECT_STREQ(to_string(JobState::running), "RUNNING");
  EXPECT_EQ(parse_job_state("running"), std::nullopt);
  EXPECT_EQ(parse_job_state(""), std::nullopt);
}

// --- routing ------------------------------------------------------------------

TEST(JobBook, SubmitQueuesAndTheNextServiceDispatches) {
  Rig rig(abc());
  const Job& j = rig.submit(1, spec());
  EXPECT_EQ(j.state, JobState::queued);
  EXPECT_EQ(j.created_wall_us, kWall0);
  EXPECT_EQ(rig.book.counts().queued, 1u);
  EXPECT_TRUE(rig.sent.empty());
  EXPECT_EQ(rig.trail(1), (Names{"created"}));
  EXPECT_EQ(rig.book.next_deadline_us(), kT0);

  rig.service(kT0);
  EXPECT_EQ(rig.sends(1), (Names{"a#1"}));
  EXPECT_EQ(rig.job(1).state, JobState::running);
  EXPECT_EQ(rig.book.counts().queued, 0u);
  EXPECT_EQ(rig.book.counts().running, 1u);
  EXPECT_EQ(rig.book.in_flight("a"), 1);
  ASSERT_EQ(rig.job(1).copies.size(), 1u);
  EXPECT_EQ(rig.job(1).copies[0].deadline_us, kT0 + kDeadline);  // timeout_ms + grace
  EXPECT_EQ(rig.book.next_deadline_us(), kT0 + kDeadline);
  EXPECT_EQ(rig.trail(1), (Names{"created", "sent a#1"}));
}

struct RouteCase {
  const char* name;
  std::vector<JobCandidate> nodes;
  int r;
  Names expect;  // node#attempt in send order
};

TEST(JobBook, RoutesToTheRCandidatesOfLowestImpedance) {
  const std::vector<RouteCase> cases = {
      {"lowest impedance", {{"a", 30, 0.9}, {"b", 10, 0.5}, {"c", 20, 0.9}}, 1, {"b#1"}},
      {"the r lowest, best first", {{"a", 30, 0.9}, {"b", 10, 0.5}, {"c", 20, 0.9}}, 2, {"b#1", "c#2"}},
      {"all three", {{"a", 30, 0.9}, {"b", 10, 0.5}, {"c", 20, 0.9}}, 3, {"b#1", "c#2", "a#3"}},
      {"tie: the more reliable", {{"a", 10, 0.5}, {"b", 10, 0.9}, {"c", 10, 0.7}}, 2, {"b#1", "c#2"}},
      {"impedance beats reliability", {{"a", 11, 1.0}, {"b", 10, 0.1}}, 1, {"b#1"}},
      {"tie on both: by id", {{"b", 10, 0.5}, {"a", 10, 0.5}}, 1, {"a#1"}},
      {"r beyond the candidates: one copy each", {{"a", 10, 0.9}, {"b", 20, 0.9}}, 3, {"a#1", "b#2"}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    Rig rig(c.nodes);
    rig.submit(1, spec(c.r));
    rig.service(kT0);
    EXPECT_EQ(rig.sends(1), c.expect);
    rig.service(kT0 + ms(1));  // nothing more to send: a node holds at most one copy of a job
    EXPECT_EQ(rig.sends(1), c.expect);
    EXPECT_EQ(rig.job(1).state, JobState::running);
  }
}

TEST(JobBook, NoCapableNodeFailsAtOnce) {
  Rig rig;  // nothing capable, available or not
  rig.submit(1, spec());
  rig.service(kT0);
  const Job& j = rig.job(1);
  EXPECT_EQ(j.state, JobState::failed);
  EXPECT_EQ(j.error, "no_capable_node");
  EXPECT_EQ(j.finished_wall_us, kWall0);
  EXPECT_TRUE(rig.sent.empty());
  EXPECT_EQ(rig.finished_count(1), 1);
  EXPECT_EQ(rig.trail(1), (Names{"created", "failed"}));
  EXPECT_EQ(rig.book.counts().failed, 1u);
  EXPECT_EQ(rig.book.counts().queued, 0u);
  EXPECT_EQ(rig.book.next_deadline_us(), INT64_MAX);
  rig.service(kT0 + ms(10'000));
  EXPECT_EQ(rig.finished_count(1), 1);
}

TEST(JobBook, CapableButNoneAvailableWaitsOneBackoffAndRetries) {
  Rig rig;
  rig.capable = std::vector<JobCandidate>{{"a", 10, 0.9}};  // exists, but its breaker is open
  rig.submit(1, spec());
  rig.service(kT0);
  EXPECT_EQ(rig.job(1).state, JobState::queued);
  EXPECT_TRUE(rig.finished.empty());
  EXPECT_EQ(rig.book.next_deadline_us(), kT0 + kBackoff);

  rig.ready = {{"a", 10, 0.9}};
  rig.service(kT0 + kBackoff - 1);
  EXPECT_TRUE(rig.sent.empty());
  rig.service(kT0 + kBackoff);
  EXPECT_EQ(rig.sends(1), (Names{"a#1"}));
  EXPECT_EQ(rig.job(1).retries_used, 0);  // waiting for a node is not a retry
}

TEST(JobBook, LoadAwareRankingCountsCopiesInFlight) {
  // k copies in flight rank a node as (k+1) x its impedance; ties: reliability.
  Rig rig({{"a", 10, 0.9}, {"b", 25, 0.9}, {"c", 40, 0.5}});
  for (std::uint64_t id = 1; id <= 6; ++id) rig.submit(id, spec());
  rig.service(kT0);
  Names chosen;
  for (const auto& s : rig.sent) chosen.push_back(s.node);
  // a:10 -> a:20 -> b:25 (a 30) -> a:30 (b 50) -> a:40 ties c:40, a more reliable -> a at its limit of 4: c
  EXPECT_EQ(chosen, (Names{"a", "a", "b", "a", "a", "c"}));
  EXPECT_EQ(rig.book.in_flight("a"), 4);
  EXPECT_EQ(rig.book.in_flight("b"), 1);
  EXPECT_EQ(rig.book.in_flight("c"), 1);
}

TEST(JobBook, PerNodeLimitIsHardAndTheWaitingJobGoesAfterABackoff) {
  JobLimits lim;
  lim.per_node = 2;
  Rig rig({{"a", 10, 0.9}}, lim);
  for (std::uint64_t id = 1; id <= 3; ++id) rig.submit(id, spec());
  rig.service(kT0);
  EXPECT_EQ(rig.sends(1), (Names{"a#1"}));
  EXPECT_EQ(rig.sends(2), (Names{"a#1"}));
  EXPECT_TRUE(rig.sends(3).empty());
  EXPECT_EQ(rig.book.in_flight("a"), 2);
  EXPECT_EQ(rig.job(3).state, JobState::queued);

  rig.answer_at(kT0 + ms(50), "a", 1, 1, OK, "x");
  EXPECT_EQ(rig.book.in_flight("a"), 1);
  rig.service(kT0 + kBackoff - 1);
  EXPECT_TRUE(rig.sends(3).empty());
  rig.service(kT0 + kBackoff);
  EXPECT_EQ(rig.sends(3), (Names{"a#1"}));
  EXPECT_EQ(rig.book.in_flight("a"), 2);
}

TEST(JobBook, PerNodeLimitSendsToAWorseNodeRatherThanOverload) {
  JobLimits lim;
  lim.per_node = 1;
  Rig rig({{"a", 10, 0.9}, {"b", 100, 0.9}}, lim);
  rig.submit(1, spec());
  rig.submit(2, spec());
  rig.submit(3, spec());
  rig.service(kT0);
  EXPECT_EQ(rig.sends(1), (Names{"a#1"}));
  EXPECT_EQ(rig.sends(2), (Names{"b#1"}));  // a's load (20) is lower than b's, but a is full
  EXPECT_TRUE(rig.sends(3).empty());
  EXPECT_EQ(rig.book.in_flight("a"), 1);
  EXPECT_EQ(rig.book.in_flight("b"), 1);
}

TEST(JobBook, CopyThatCannotLeaveGoesToTheNextNodeWithoutARetry) {
  Rig rig(abc());
  rig.unreachable = {"a"};
  rig.submit(1, spec());
  rig.service(kT0);
  EXPECT_EQ(rig.sends(1), (Names{"b#2"}));
  EXPECT_EQ(rig.trail(1), (Names{"created", "sent a#1", "refused a#1", "sent b#2"}));
  EXPECT_EQ(rig.job(1).retries_used, 0);
  EXPECT_EQ(rig.book.in_flight("a"), 0);
  EXPECT_EQ(rig.book.in_flight("b"), 1);
}

// --- timeouts, refusals, backoff ------------------------------------------------

TEST(JobBook, TimeoutAtTheDeadlineRetriesOnTheNextCandidateAfterBackoff) {
  Rig rig(abc());
  rig.submit(1, spec());
  rig.service(kT0);
  rig.service(kT0 + kDeadline - 1);
  EXPECT_EQ(rig.trail(1), (Names{"created", "sent a#1"}));
  EXPECT_TRUE(rig.outcomes.empty());

  rig.service(kT0 + kDeadline);
  EXPECT_EQ(rig.trail(1), (Names{"created", "sent a#1", "timeout a#1", "retry"}));
  EXPECT_EQ(rig.last_event(1, "timeout")->detail, "no result within 1000 ms");
  EXPECT_EQ(rig.last_event(1, "retry")->detail, "retry 1 of 3");
  EXPECT_EQ(rig.outcomes, (std::vector<Outcome>{{"a", false, "timeout"}}));
  EXPECT_EQ(rig.book.in_flight("a"), 0);
  EXPECT_EQ(rig.book.counts().retries, 1u);
  EXPECT_EQ(rig.book.next_deadline_us(), kT0 + kDeadline + kBackoff);

  rig.service(kT0 + kDeadline + kBackoff - 1);
  EXPECT_EQ(rig.sends(1), (Names{"a#1"}));
  rig.service(kT0 + kDeadline + kBackoff);
  EXPECT_EQ(rig.sends(1), (Names{"a#1", "b#2"}));
  EXPECT_EQ(rig.job(1).copies.back().deadline_us, kT0 + kDeadline + kBackoff + kDeadline);
  EXPECT_EQ(rig.job(1).state, JobState::running);
  EXPECT_TRUE(rig.finished.empty());
}

struct BackoffCase {
  std::int64_t backoff_us, backoff_max_us;
  std::vector<std::int64_t> waits_us;  // before retry 1, 2, ...
};

TEST(JobBook, BackoffDoublesWithEachRetryUpToTheMaximum) {
  const std::vector<BackoffCase> cases = {
      {ms(200), ms(5000), {ms(200), ms(400), ms(800), ms(1600)}},
      {ms(200), ms(500), {ms(200), ms(400), ms(500), ms(500)}},
      {ms(1000), ms(5000), {ms(1000), ms(2000), ms(4000), ms(5000)}},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.backoff_us);
    JobLimits lim;
    lim.backoff_us = c.backoff_us;
    lim.backoff_max_us = c.backoff_max_us;
    std::vector<JobCandidate> nodes;
    for (int i = 1; i <= 6; ++i) {
      char name[16];  // formatted: GCC 12 on ARM warns falsely on "lit" + std::string here
      std::snprintf(name, sizeof name, "n%d", i);
      nodes.push_back({name, 10.0 * i, 0.9});
    }
    Rig rig(nodes, lim);
    const int retries = static_cast<int>(c.waits_us.size());
    rig.submit(1, spec(1, retries));
    rig.service(kT0);
    std::int64_t sent_at = kT0;
    for (int k = 0; k < retries; ++k) {
      const std::int64_t timeout_at = sent_at + kDeadline;
      rig.service(timeout_at);
      const std::int64_t due = timeout_at + c.waits_us[k];
      EXPECT_EQ(rig.book.next_deadline_us(), due) << "retry " << k + 1;
      rig.service(due - 1);
      ASSERT_EQ(rig.sent.size(), static_cast<std::size_t>(k + 1)) << "retry " << k + 1 << " went early";
      rig.service(due);
      ASSERT_EQ(rig.sent.size(), static_cast<std::size_t>(k + 2)) << "retry " << k + 1 << " not sent when due";
      char next[16];
      std::snprintf(next, sizeof next, "n%d", k + 2);
      EXPECT_EQ(rig.sent.back().node, next);
      EXPECT_EQ(rig.sent.back().attempt, static_cast<std::uint32_t>(k + 2));
      sent_at = due;
    }
    // The last copy times out too: no retries left, the job fails once.
    rig.service(sent_at + kDeadline);
    const Job& j = rig.job(1);
    EXPECT_EQ(j.state, JobState::failed);
    EXPECT_EQ(j.error, "timeout: no node answered");
    EXPECT_EQ(j.retries_used, retries);
    EXPECT_EQ(rig.book.counts().retries, static_cast<std::uint64_t>(retries));
    EXPECT_EQ(rig.finished_count(1), 1);
    EXPECT_EQ(rig.book.next_deadline_us(), INT64_MAX);
    rig.service(sent_at + kDeadline + ms(60'000));
    EXPECT_EQ(rig.sent.size(), static_cast<std::size_t>(retries + 1));
    EXPECT_EQ(rig.finished_count(1), 1);
  }
}

TEST(JobBook, NoRetriesMeansTheFirstTimeoutFailsTheJob) {
  Rig rig(abc());
  rig.submit(1, spec(1, 0));
  rig.service(kT0);
  rig.service(kT0 + kDeadline);
  EXPECT_EQ(rig.job(1).state, JobState::failed);
  EXPECT_EQ(rig.job(1).error, "timeout: no node answered");
  EXPECT_EQ(rig.job(1).finished_wall_us, Rig::wall(kT0 + kDeadline));
  EXPECT_EQ(rig.sends(1), (Names{"a#1"}));
  EXPECT_EQ(rig.trail(1), (Names{"created", "sent a#1", "timeout a#1", "failed"}));
  EXPECT_EQ(rig.finished_count(1), 1);
}

struct RefusalCase {
  kairos_v1_JobStatus status;
  const char* error;
  const char* kind;    // the event and the outcome's reason
  const char* detail;  // the event's detail
};

TEST(JobBook, RefusedOrTimedOutResultRetriesElsewhereAfterBackoff) {
  const std::vector<RefusalCase> cases = {
      {REFUSED, "busy: 4 jobs running", "refused", "busy: 4 jobs running"},
      {TIMEOUT, "", "timeout", "handler timed out"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.kind);
    Rig rig(abc());
    rig.submit(1, spec());
    rig.service(kT0);
    rig.now = kT0 + ms(5);
    rig.answer("a", 1, 1, c.status, "", 0, c.error);
    EXPECT_EQ(rig.trail(1), (Names{"created", "sent a#1", std::string(c.kind) + " a#1", "retry"}));
    EXPECT_EQ(rig.last_event(1, c.kind)->detail, c.detail);
    EXPECT_EQ(rig.outcomes, (std::vector<Outcome>{{"a", false, c.kind}}));
    EXPECT_TRUE(rig.incapable.empty());
    EXPECT_EQ(rig.book.in_flight("a"), 0);
    rig.service(kT0 + ms(5) + kBackoff - 1);
    EXPECT_EQ(rig.sends(1), (Names{"a#1"}));
    rig.service(kT0 + ms(5) + kBackoff);
    EXPECT_EQ(rig.sends(1), (Names{"a#1", "b#2"}));
    // A redelivered refusal changes nothing.
    rig.answer("a", 1, 1, c.status, "", 0, c.error);
    EXPECT_EQ(rig.job(1).retries_used, 1);
    EXPECT_EQ(rig.outcomes.size(), 1u);
  }
}

TEST(JobBook, RefusedAckRetriesElsewhereOnceOnly) {
  Rig rig(abc());
  rig.submit(1, spec());
  rig.service(kT0);
  rig.now = kT0 + ms(3);
  rig.refuse("a", 1, 2, "late by 3 ms");  // not an attempt a holds
  rig.refuse("b", 1, 1, "late by 3 ms");  // not a node that holds attempt 1
  rig.refuse("a", 2, 1, "late by 3 ms");  // no such job
  EXPECT_EQ(rig.job(1).retries_used, 0);
  EXPECT_TRUE(rig.outcomes.empty());

  rig.refuse("a", 1, 1, "late by 3 ms");
  EXPECT_EQ(rig.trail(1), (Names{"created", "sent a#1", "refused a#1", "retry"}));
  EXPECT_EQ(rig.last_event(1, "refused")->detail, "late by 3 ms");
  EXPECT_EQ(rig.outcomes, (std::vector<Outcome>{{"a", false, "refused"}}));
  // The same refusal again, and the REFUSED result the node sends with it: nothing new.
  rig.refuse("a", 1, 1, "late by 3 ms");
  rig.answer("a", 1, 1, REFUSED, "", 0, "late by 3 ms");
  EXPECT_EQ(rig.job(1).retries_used, 1);
  EXPECT_EQ(rig.book.counts().retries, 1u);
  EXPECT_EQ(rig.outcomes.size(), 1u);

  rig.service(kT0 + ms(3) + kBackoff - 1);
  EXPECT_EQ(rig.sends(1), (Names{"a#1"}));
  rig.service(kT0 + ms(3) + kBackoff);
  EXPECT_EQ(rig.sends(1), (Names{"a#1", "b#2"}));
}

TEST(JobBook, NoHandlerRefusalIsACapabilityMismatchWhateverArrivesFirst) {
  // A node that refuses a handler sends a CONFLICT ack and a REFUSED result
  // (firmware Node::refuse, ack first); either may reach the gateway first.
  enum class Order { result_only, ack_only, ack_then_result, result_then_ack };
  for (auto order : {Order::result_only, Order::ack_only, Order::ack_then_result, Order::result_then_ack}) {
    SCOPED_TRACE(static_cast<int>(order));
    Rig rig(abc());
    rig.submit(1, spec());
    rig.service(kT0);
    const std::string why = "no handler 'sum'";
    auto ack = [&] { rig.refuse("a", 1, 1, why); };
    auto res = [&] { rig.answer("a", 1, 1, REFUSED, "", 0, why); };
    switch (order) {
      case Order::result_only: res(); break;
      case Order::ack_only: ack(); break;
      case Order::ack_then_result: ack(); res(); break;
      case Order::result_then_ack: res(); ack(); break;
    }
    ASSERT_EQ(rig.incapable.size(), 1u);
    EXPECT_EQ(rig.incapable[0].first, "a");
    EXPECT_EQ(rig.incapable[0].second, why);
    EXPECT_EQ(rig.job(1).retries_used, 1);
    EXPECT_EQ(rig.outcomes, (std::vector<Outcome>{{"a", false, "refused"}}));
    rig.service(kT0 + kBackoff);
    EXPECT_EQ(rig.sends(1), (Names{"a#1", "b#2"}));
  }
}

TEST(JobBook, OtherRefusalsAreNotACapabilityMismatch) {
  Rig rig(abc());
  rig.submit(1, spec());
  rig.service(kT0);
  rig.answer("a", 1, 1, REFUSED, "", 0, "frozen: no jobs until thaw");
  rig.service(kT0 + kBackoff);
  rig.refuse("b", 1, 2, "cannot run sum: no handler here");  // "no handler" not at the start
  EXPECT_TRUE(rig.incapable.empty());
  EXPECT_EQ(rig.job(1).retries_used, 2);
}

// Jobs (docs/DESIGN.md 5.5, 5.6): the vote by result hash, tie breaks, late
// results, restore after a gateway restart, trim and counts.
#include "tests/unit/gateway/job_rig.h"

using namespace kairos;
using namespace kairos::gw;
using namespace kairos::gw::jobs_test;

// --- the vote ---------------------------------------------------------------

TEST(JobBook, SingleCopyOkIsTheResult) {
  Rig rig(abc());
  rig.submit(1, spec());
  rig.service(kT0);
  rig.answer_at(kT0 + ms(40), "a", 1, 1, OK, "42");
  const Job& j = rig.job(1);
  EXPECT_EQ(j.state, JobState::done);
  EXPECT_EQ(j.status, OK);
  EXPECT_EQ(text(j.output), "42");
  EXPECT_EQ(j.error, "");
  EXPECT_EQ(j.winners, (Names{"a"}));
  EXPECT_TRUE(j.dissent.empty());
  EXPECT_EQ(j.finished_wall_us, Rig::wall(kT0 + ms(40)));
  EXPECT_EQ(rig.trail(1), (Names{"created", "sent a#1", "result a#1", "done"}));
  EXPECT_EQ(rig.outcomes, (std::vector<Outcome>{{"a", true, "result"}}));
  EXPECT_TRUE(rig.contradictions.empty());
  ASSERT_EQ(rig.finished_count(1), 1);
  EXPECT_EQ(rig.finished[0].state, JobState::done);
  EXPECT_EQ(rig.book.in_flight("a"), 0);
  EXPECT_EQ(rig.book.counts().done, 1u);
  EXPECT_EQ(rig.book.counts().running, 0u);
  EXPECT_EQ(rig.book.next_deadline_us(), INT64_MAX);
  rig.service(kT0 + ms(10'000));  // no timeout after the end
  EXPECT_EQ(rig.finished_count(1), 1);
  EXPECT_EQ(rig.outcomes.size(), 1u);
}

TEST(JobBook, HandlerErrorIsAResultThatFailsTheJob) {
  struct Case {
    const char* error;
    int exit_code;
    const char* expect;
  };
  for (const auto& c : {Case{"boom", 3, "handler failed (exit 3): boom"}, Case{"", 2, "handler failed (exit 2)"}}) {
    SCOPED_TRACE(c.expect);
    Rig rig(abc());
    rig.submit(1, spec());
    rig.service(kT0);
    rig.answer("a", 1, 1, ERR, "partial", c.exit_code, c.error);
    const Job& j = rig.job(1);
    EXPECT_EQ(j.state, JobState::failed);
    EXPECT_EQ(j.error, c.expect);
    EXPECT_EQ(j.status, ERR);
    EXPECT_EQ(j.exit_code, c.exit_code);
    EXPECT_EQ(text(j.output), "partial");
    EXPECT_EQ(j.winners, (Names{"a"}));
    EXPECT_EQ(j.retries_used, 0);  // an answer, not a reason to retry
    EXPECT_EQ(rig.outcomes, (std::vector<Outcome>{{"a", true, "result"}}));
    EXPECT_EQ(rig.finished_count(1), 1);
    EXPECT_EQ(rig.book.counts().failed, 1u);
  }
}

TEST(JobBook, TwoCopiesThatAgreeFinishOnTheSecond) {
  Rig rig(abc());
  rig.submit(1, spec(2));
  rig.service(kT0);
  EXPECT_EQ(rig.sends(1), (Names{"a#1", "b#2"}));
  rig.answer("b", 1, 2, OK, "7");
  EXPECT_EQ(rig.job(1).state, JobState::running);
  EXPECT_TRUE(rig.finished.empty());
  rig.answer("a", 1, 1, OK, "7");
  EXPECT_EQ(rig.job(1).state, JobState::done);
  EXPECT_EQ(rig.job(1).winners, (Names{"a", "b"}));  // in the order of the copies
  EXPECT_TRUE(rig.job(1).dissent.empty());
  EXPECT_EQ(rig.finished_count(1), 1);
  EXPECT_EQ(rig.outcomes, (std::vector<Outcome>{{"a", true, "result"}, {"b", true, "result"}}));
}

TEST(JobBook, TwoCopiesThatDisagreeGetATieBreakCopy) {
  Rig rig(abc());
  rig.submit(1, spec(2));
  rig.service(kT0);
  rig.now = kT0 + ms(30);
  rig.answer("a", 1, 1, OK, "7");
  rig.answer("b", 1, 2, OK, "8");
  EXPECT_EQ(rig.job(1).state, JobState::running);
  EXPECT_EQ(rig.last_event(1, "retry")->detail, "results disagree: one more copy");
  EXPECT_EQ(rig.job(1).retries_used, 1);
  EXPECT_TRUE(rig.contradictions.empty());
  // No backoff for a tie-break: it goes with the next service.
  rig.service(kT0 + ms(30));
  EXPECT_EQ(rig.sends(1), (Names{"a#1", "b#2", "c#3"}));
  rig.answer("c", 1, 3, OK, "7");
  const Job& j = rig.job(1);
  EXPECT_EQ(j.state, JobState::done);
  EXPECT_EQ(text(j.output), "7");
  EXPECT_EQ(j.winners, (Names{"a", "c"}));
  EXPECT_EQ(j.dissent, (Names{"b"}));
  ASSERT_EQ(rig.contradictions.size(), 1u);
  EXPECT_EQ(rig.contradictions[0].dissent, (Names{"b"}));
  EXPECT_EQ(rig.contradictions[0].detail, "1 of 3 results differ from the majority");
  EXPECT_EQ(rig.book.counts().contradictions, 1u);
  EXPECT_EQ(rig.outcomes,
            (std::vector<Outcome>{{"a", true, "result"}, {"c", true, "result"}, {"b", false, "outvoted"}}));
  EXPECT_EQ(rig.finished_count(1), 1);
}

struct LiarCase {
  Names order;        // arrival order; b is the liar
  bool liar_in_vote;  // b answered before the majority formed
};

TEST(JobBook, ThreeCopiesOutvoteOneLiar) {
  const std::vector<LiarCase> cases = {
      {{"a", "b", "c"}, true},
      {{"b", "a", "c"}, true},
      {{"c", "b", "a"}, true},
      {{"a", "c", "b"}, false},
      {{"c", "a", "b"}, false},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.order[0] + c.order[1] + c.order[2]);
    Rig rig(abc());
    rig.submit(1, spec(3));
    rig.service(kT0);
    ASSERT_EQ(rig.sends(1), (Names{"a#1", "b#2", "c#3"}));
    std::int64_t t = kT0;
    for (const auto& n : c.order) {
      const std::uint32_t attempt = n == "a" ? 1 : n == "b" ? 2 : 3;
      rig.answer_at(t += ms(10), n, 1, attempt, OK, n == "b" ? "lie" : "truth");
    }
    const Job& j = rig.job(1);
    EXPECT_EQ(j.state, JobState::done);
    EXPECT_EQ(text(j.output), "truth");
    EXPECT_EQ(j.winners, (Names{"a", "c"}));
    EXPECT_EQ(j.dissent, (Names{"b"}));
    EXPECT_EQ(rig.finished_count(1), 1);
    ASSERT_EQ(rig.finished.size(), 1u);
    EXPECT_EQ(rig.finished[0].dissent, c.liar_in_vote ? Names{"b"} : Names{});
    ASSERT_EQ(rig.contradictions.size(), 1u);
    EXPECT_EQ(rig.contradictions[0].dissent, (Names{"b"}));
    EXPECT_EQ(rig.book.counts().contradictions, 1u);
    EXPECT_EQ(rig.book.counts().late_results, c.liar_in_vote ? 0u : 1u);
    EXPECT_EQ(std::count(rig.outcomes.begin(), rig.outcomes.end(), Outcome{"b", false, "outvoted"}), 1);
    EXPECT_EQ(rig.job(1).retries_used, 0);
    if (!c.liar_in_vote) {
      EXPECT_EQ(rig.last_event(1, "late")->detail, "differs from the result");
      EXPECT_EQ(rig.contradictions[0].detail, "a late result differs from the majority");
    }
  }
}

TEST(JobBook, LateAgreeingResultIsCountedNotActedOn) {
  Rig rig(abc());
  rig.submit(1, spec(3));
  rig.service(kT0);
  rig.answer("a", 1, 1, OK, "x");
  rig.answer("b", 1, 2, OK, "x");
  ASSERT_EQ(rig.job(1).state, JobState::done);
  EXPECT_EQ(rig.book.in_flight("c"), 0);  // no longer waited for
  EXPECT_TRUE(rig.job(1).copies[2].failed);
  const auto outcomes = rig.outcomes.size();
  rig.answer("c", 1, 3, OK, "x");
  EXPECT_EQ(rig.last_event(1, "late")->detail, "agrees with the result");
  EXPECT_EQ(rig.trail(1).back(), "late c#3");
  EXPECT_EQ(rig.book.counts().late_results, 1u);
  EXPECT_TRUE(rig.contradictions.empty());
  EXPECT_TRUE(rig.job(1).dissent.empty());
  EXPECT_EQ(rig.outcomes.size(), outcomes);
  EXPECT_EQ(rig.finished_count(1), 1);
  EXPECT_EQ(rig.book.in_flight("c"), 0);
  // And a redelivery of it is nothing at all.
  rig.answer("c", 1, 3, OK, "x");
  EXPECT_EQ(rig.book.counts().late_results, 1u);
}

TEST(JobBook, ThreeWayDisagreementWithoutRetriesHasNoMajority) {
  Rig rig(abc());
  rig.submit(1, spec(3, 0));
  rig.service(kT0);
  rig.answer("a", 1, 1, OK, "x");
  rig.answer("b", 1, 2, OK, "y");
  EXPECT_EQ(rig.job(1).state, JobState::running);  // c may still agree with one of them
  rig.answer("c", 1, 3, OK, "z");
  const Job& j = rig.job(1);
  EXPECT_EQ(j.state, JobState::failed);
  EXPECT_EQ(j.error, "no_majority");
  EXPECT_TRUE(j.winners.empty());
  EXPECT_EQ(j.dissent, (Names{"a", "b", "c"}));
  ASSERT_EQ(rig.contradictions.size(), 1u);
  EXPECT_EQ(rig.contradictions[0].dissent, (Names{"a", "b", "c"}));
  EXPECT_EQ(rig.contradictions[0].detail, "no majority among 3 results");
  EXPECT_EQ(rig.book.counts().contradictions, 1u);
  EXPECT_EQ(rig.finished_count(1), 1);
  EXPECT_EQ(rig.sends(1).size(), 3u);
}

TEST(JobBook, ThreeWayDisagreementBrokenByAFourthCopy) {
  Rig rig(abcd());
  rig.submit(1, spec(3, 1));
  rig.service(kT0);
  rig.answer("a", 1, 1, OK, "x");
  rig.answer("b", 1, 2, OK, "y");
  rig.answer("c", 1, 3, OK, "z");
  EXPECT_EQ(rig.job(1).state, JobState::running);
  rig.service(kT0);
  EXPECT_EQ(rig.sends(1), (Names{"a#1", "b#2", "c#3", "d#4"}));
  rig.answer("d", 1, 4, OK, "y");
  const Job& j = rig.job(1);
  EXPECT_EQ(j.state, JobState::done);
  EXPECT_EQ(text(j.output), "y");
  EXPECT_EQ(j.winners, (Names{"b", "d"}));
  EXPECT_EQ(j.dissent, (Names{"a", "c"}));
  ASSERT_EQ(rig.contradictions.size(), 1u);
  EXPECT_EQ(rig.contradictions[0].dissent, (Names{"a", "c"}));
  EXPECT_EQ(rig.finished_count(1), 1);
}

TEST(JobBook, TieBreakCopyThatDisagreesTooEndsWithNoMajority) {
  Rig rig(abcd());
  rig.submit(1, spec(3, 1));
  rig.service(kT0);
  rig.answer("a", 1, 1, OK, "x");
  rig.answer("b", 1, 2, OK, "y");
  rig.answer("c", 1, 3, OK, "z");
  rig.service(kT0);
  rig.answer("d", 1, 4, OK, "w");
  const Job& j = rig.job(1);
  EXPECT_EQ(j.state, JobState::failed);
  EXPECT_EQ(j.error, "no_majority");
  EXPECT_EQ(j.dissent, (Names{"a", "b", "c", "d"}));
  ASSERT_EQ(rig.contradictions.size(), 1u);
  EXPECT_EQ(rig.contradictions[0].detail, "no majority among 4 results");
  EXPECT_EQ(rig.finished_count(1), 1);
}

TEST(JobBook, DisagreementWithNoNodeLeftToBreakTheTieEndsOnce) {
  Rig rig({{"a", 10, 0.9}, {"b", 20, 0.9}});
  rig.submit(1, spec(2, 3));
  rig.service(kT0);
  rig.answer("a", 1, 1, OK, "x");
  rig.answer("b", 1, 2, OK, "y");
  // At once: no retry is spent on a copy that has nowhere to go.
  const Job& j = rig.job(1);
  EXPECT_EQ(j.state, JobState::failed);
  EXPECT_EQ(j.error, "no_majority");
  EXPECT_EQ(j.dissent, (Names{"a", "b"}));
  EXPECT_EQ(j.retries_used, 0);
  EXPECT_EQ(rig.book.counts().retries, 0u);
  EXPECT_EQ(rig.last_event(1, "retry"), nullptr);
  EXPECT_EQ(rig.finished_count(1), 1);
  EXPECT_EQ(rig.contradictions.size(), 1u);
  for (int i = 1; i <= 5; ++i) rig.service(kT0 + ms(i));
  EXPECT_EQ(rig.sends(1), (Names{"a#1", "b#2"}));
  EXPECT_EQ(rig.finished_count(1), 1);
}

TEST(JobBook, TieBreakWaitsForACapableNodeThatIsNotAvailableYet) {
  Rig rig({{"a", 10, 0.9}, {"b", 20, 0.9}});
  rig.capable = std::vector<JobCandidate>{{"a", 10, 0.9}, {"b", 20, 0.9}, {"c", 30, 0.9}};  // c: breaker open
  rig.submit(1, spec(2, 3));
  rig.service(kT0);
  rig.answer("a", 1, 1, OK, "x");
  rig.answer("b", 1, 2, OK, "y");
  EXPECT_EQ(rig.job(1).retries_used, 1);
  rig.service(kT0 + ms(1));  // nobody to take it now: wait one backoff
  EXPECT_EQ(rig.job(1).state, JobState::running);
  EXPECT_EQ(rig.job(1).retries_used, 1);
  rig.ready.push_back({"c", 30, 0.9});
  rig.service(kT0 + ms(1) + kBackoff - 1);
  EXPECT_EQ(rig.sends(1), (Names{"a#1", "b#2"}));
  rig.service(kT0 + ms(1) + kBackoff);
  EXPECT_EQ(rig.sends(1), (Names{"a#1", "b#2", "c#3"}));
  rig.answer("c", 1, 3, OK, "y");
  EXPECT_EQ(rig.job(1).state, JobState::done);
  EXPECT_EQ(rig.job(1).winners, (Names{"b", "c"}));
  EXPECT_EQ(rig.job(1).retries_used, 1);
}

TEST(JobBook, RetryWithNoCapableNodeLeftEndsTheJob) {
  Rig rig({{"a", 10, 0.9}});
  rig.submit(1, spec(1, 3));
  rig.service(kT0);
  rig.service(kT0 + kDeadline);  // a times out; a retry is due in 200 ms
  rig.service(kT0 + kDeadline + kBackoff);
  const Job& j = rig.job(1);
  EXPECT_EQ(j.state, JobState::failed);
  EXPECT_EQ(j.error, "timeout: no node answered");
  EXPECT_EQ(rig.sends(1), (Names{"a#1"}));
  EXPECT_EQ(rig.finished_count(1), 1);
}

TEST(JobBook, MajorityOfErrorsIsAFailedJobAndOutvotesTheOk) {
  Rig rig(abc());
  rig.submit(1, spec(3));
  rig.service(kT0);
  rig.answer("a", 1, 1, ERR, "", 1, "bad payload");
  rig.answer("b", 1, 2, OK, "fine");
  rig.answer("c", 1, 3, ERR, "", 1, "bad payload");
  const Job& j = rig.job(1);
  EXPECT_EQ(j.state, JobState::failed);
  EXPECT_EQ(j.error, "handler failed (exit 1): bad payload");
  EXPECT_EQ(j.winners, (Names{"a", "c"}));
  EXPECT_EQ(j.dissent, (Names{"b"}));
  EXPECT_EQ(rig.finished_count(1), 1);
}

TEST(JobBook, RedundantJobWithOneTimeoutAndNoRetriesCannotReachAMajority) {
  Rig rig(abc());
  rig.submit(1, spec(2, 0));
  rig.service(kT0);
  rig.answer("a", 1, 1, OK, "x");
  rig.service(kT0 + kDeadline);  // b never answers
  const Job& j = rig.job(1);
  EXPECT_EQ(j.state, JobState::failed);
  EXPECT_EQ(j.error, "too_few_answers: 1 of 2 copies answered, 2 must agree");
  EXPECT_TRUE(rig.contradictions.empty());  // nobody disagreed
  EXPECT_EQ(rig.finished_count(1), 1);
}

TEST(JobBook, RedundantJobRetriesAMissingCopyAndKeepsTheAnswers) {
  Rig rig(abc());
  rig.submit(1, spec(2, 1));
  rig.service(kT0);
  rig.answer_at(kT0 + ms(100), "a", 1, 1, OK, "x");
  rig.service(kT0 + kDeadline);  // b times out
  EXPECT_EQ(rig.job(1).state, JobState::running);
  rig.service(kT0 + kDeadline + kBackoff);
  EXPECT_EQ(rig.sends(1), (Names{"a#1", "b#2", "c#3"}));
  rig.answer_at(kT0 + kDeadline + kBackoff + ms(10), "c", 1, 3, OK, "x");
  EXPECT_EQ(rig.job(1).state, JobState::done);
  EXPECT_EQ(rig.job(1).winners, (Names{"a", "c"}));
  EXPECT_EQ(rig.finished_count(1), 1);
}

// --- results that arrive late, twice, or from nowhere -------------------------

TEST(JobBook, AnswerAfterItsTimeoutStillDecidesAndTheRetryIsNotSent) {
  Rig rig(abc());
  rig.submit(1, spec());
  rig.service(kT0);
  rig.service(kT0 + kDeadline);
  ASSERT_EQ(rig.job(1).retries_used, 1);
  rig.answer_at(kT0 + kDeadline + ms(100), "a", 1, 1, OK, "x");
  EXPECT_EQ(rig.job(1).state, JobState::done);
  EXPECT_EQ(rig.job(1).winners, (Names{"a"}));
  EXPECT_EQ(rig.last_event(1, "result")->detail, "late, after a retry");
  EXPECT_EQ(rig.book.in_flight("a"), 0);
  rig.service(kT0 + kDeadline + kBackoff);
  EXPECT_EQ(rig.sends(1), (Names{"a#1"}));
  EXPECT_EQ(rig.finished_count(1), 1);
}

TEST(JobBook, AnswerAfterTheRetryLeftDecidesAndTheRetrysDissentIsLate) {
  Rig rig(abc());
  rig.submit(1, spec());
  rig.service(kT0);
  rig.service(kT0 + kDeadline);
  rig.service(kT0 + kDeadline + kBackoff);
  ASSERT_EQ(rig.sends(1), (Names{"a#1", "b#2"}));
  rig.answer_at(kT0 + ms(2500), "a", 1, 1, OK, "x");
  EXPECT_EQ(rig.job(1).state, JobState::done);
  EXPECT_EQ(rig.book.in_flight("b"), 0);
  rig.answer_at(kT0 + ms(3000), "b", 1, 2, OK, "y");
  EXPECT_EQ(rig.job(1).dissent, (Names{"b"}));
  ASSERT_EQ(rig.contradictions.size(), 1u);
  EXPECT_EQ(rig.contradictions[0].dissent, (Names{"b"}));
  EXPECT_EQ(rig.book.counts().late_results, 1u);
  EXPECT_EQ(rig.finished_count(1), 1);
  EXPECT_EQ(rig.book.in_flight("b"), 0);  // released once, at the end, not again
  rig.service(kT0 + ms(60'000));
  EXPECT_EQ(rig.finished_count(1), 1);
}

TEST(JobBook, DuplicateResultIsIgnored) {
  Rig rig(abc());
  rig.submit(1, spec(2));
  rig.service(kT0);
  rig.answer("a", 1, 1, OK, "x");
  rig.answer("a", 1, 1, OK, "x");  // QoS 1 redelivery: not a second vote
  EXPECT_EQ(rig.job(1).state, JobState::running);
  rig.answer("a", 1, 1, OK, "other");
  EXPECT_EQ(rig.job(1).state, JobState::running);
  EXPECT_EQ(rig.book.in_flight("b"), 1);
  EXPECT_EQ(rig.book.in_flight("a"), 0);
  rig.answer("b", 1, 2, OK, "x");
  rig.answer("b", 1, 2, OK, "x");
  EXPECT_EQ(rig.job(1).state, JobState::done);
  EXPECT_EQ(rig.finished_count(1), 1);
  EXPECT_EQ(rig.book.counts().late_results, 0u);
  EXPECT_EQ(rig.trail(1), (Names{"created", "sent a#1", "sent b#2", "result a#1", "result b#2", "done"}));
}

TEST(JobBook, StrayResultsChangeNothing) {
  Rig rig(abc());
  rig.submit(1, spec());
  rig.service(kT0);
  rig.answer("a", 9, 1, OK, "x");     // no such job
  rig.answer("a", 1, 2, OK, "x");     // no such attempt
  rig.answer("b", 1, 1, OK, "x");     // attempt 1 went to a, not b
  rig.answer("a", 1, 1, kairos_v1_JobStatus_JOB_UNSPECIFIED, "x");  // not a status
  EXPECT_EQ(rig.book.counts().stray_results, 4u);
  EXPECT_EQ(rig.job(1).state, JobState::running);
  EXPECT_EQ(rig.trail(1), (Names{"created", "sent a#1"}));
  EXPECT_TRUE(rig.outcomes.empty());
  rig.answer("a", 1, 1, OK, "x");
  EXPECT_EQ(rig.job(1).state, JobState::done);
}

// --- restart, trim, counts ------------------------------------------------------

TEST(JobBook, RestoredJobRunsAgainFromItsNextAttemptWithTheRetriesItHadLeft) {
  Job job;
  job.id = 7;
  job.spec = spec(1, 3);
  job.state = JobState::running;
  job.created_wall_us = kWall0 - 5;
  job.next_attempt = 3;
  job.retries_used = 2;
  JobCopy old;
  old.node = "b";
  old.attempt = 2;
  old.deadline_us = 123;  // another process's clock
  job.copies.push_back(old);

  Rig rig(abc());
  rig.book.restore(job, kT0);
  const Job& j = rig.job(7);
  EXPECT_EQ(j.state, JobState::queued);
  EXPECT_TRUE(j.copies.empty());
  EXPECT_EQ(j.created_wall_us, kWall0 - 5);
  EXPECT_EQ(rig.book.counts().queued, 1u);
  ASSERT_NE(rig.last_event(7, "resumed"), nullptr);
  EXPECT_EQ(rig.last_event(7, "resumed")->detail, "gateway restarted; attempts from 3");

  rig.service(kT0);
  EXPECT_EQ(rig.sends(7), (Names{"a#3"}));  // the old copies are void: a may take it again
  // A result of the old run went to a gateway that no longer exists.
  rig.answer("b", 7, 2, OK, "x");
  EXPECT_EQ(rig.book.counts().stray_results, 1u);
  EXPECT_EQ(rig.job(7).state, JobState::running);

  // One retry left, and its backoff continues the doubling: 200 ms << 2.
  rig.service(kT0 + kDeadline);
  EXPECT_EQ(rig.last_event(7, "retry")->detail, "retry 3 of 3");
  rig.service(kT0 + kDeadline + ms(800) - 1);
  EXPECT_EQ(rig.sends(7), (Names{"a#3"}));
  rig.service(kT0 + kDeadline + ms(800));
  EXPECT_EQ(rig.sends(7), (Names{"a#3", "b#4"}));
  rig.service(kT0 + kDeadline + ms(800) + kDeadline);
  EXPECT_EQ(rig.job(7).state, JobState::failed);
  EXPECT_EQ(rig.job(7).error, "timeout: no node answered");
  EXPECT_EQ(rig.finished_count(7), 1);
}

TEST(JobBook, RestoredRedundantJobSendsAllItsCopiesAgain) {
  Job job;
  job.id = 3;
  job.spec = spec(2, 1);
  job.state = JobState::running;
  job.next_attempt = 5;
  job.retries_used = 1;
  job.winners = {"stale"};
  Rig rig(abc());
  rig.book.restore(job, kT0 + ms(7));
  rig.service(kT0 + ms(7));
  EXPECT_EQ(rig.sends(3), (Names{"a#5", "b#6"}));
  EXPECT_TRUE(rig.job(3).winners.empty());
  rig.answer("a", 3, 5, OK, "x");
  rig.answer("b", 3, 6, OK, "x");
  EXPECT_EQ(rig.job(3).winners, (Names{"a", "b"}));
  EXPECT_EQ(rig.finished_count(3), 1);
}

TEST(JobBook, RestoredFinishedJobIsKeptButNotRun) {
  Job job;
  job.id = 4;
  job.spec = spec();
  job.state = JobState::done;
  job.status = OK;
  job.winners = {"a"};
  job.next_attempt = 2;
  Rig rig(abc());
  rig.book.restore(job, kT0);
  rig.service(kT0);
  EXPECT_TRUE(rig.sent.empty());
  EXPECT_TRUE(rig.events.empty());
  EXPECT_TRUE(rig.finished.empty());
  EXPECT_EQ(rig.job(4).state, JobState::done);
  EXPECT_EQ(rig.book.counts().done, 1u);
  EXPECT_EQ(rig.book.counts().queued, 0u);
  EXPECT_EQ(rig.book.next_deadline_us(), INT64_MAX);
  rig.answer("a", 4, 1, OK, "x");
  EXPECT_TRUE(rig.finished.empty());
  EXPECT_EQ(rig.book.counts().stray_results, 1u);
}

TEST(JobBook, TrimForgetsTheOldestFinishedJobsOnly) {
  JobLimits lim;
  lim.per_node = 10;
  Rig rig({{"a", 10, 0.9}}, lim);
  for (std::uint64_t id = 1; id <= 6; ++id) rig.submit(id, spec());
  rig.service(kT0);
  for (std::uint64_t id = 2; id <= 6; ++id) rig.answer("a", id, 1, OK, "x");  // 1 stays running
  rig.service(kT0 + ms(1));
  rig.book.trim(10);
  EXPECT_EQ(rig.book.jobs().size(), 6u);
  rig.book.trim(2);
  std::vector<std::uint64_t> ids;
  for (const auto& [id, j] : rig.book.jobs()) ids.push_back(id);
  EXPECT_EQ(ids, (std::vector<std::uint64_t>{1, 5, 6}));
  EXPECT_EQ(rig.job(1).state, JobState::running);
  rig.book.trim(0);
  EXPECT_EQ(rig.book.jobs().size(), 1u);
  // The running one still finishes normally.
  rig.answer("a", 1, 1, OK, "x");
  EXPECT_EQ(rig.job(1).state, JobState::done);
  EXPECT_EQ(rig.finished_count(1), 1);
}

TEST(JobBook, CountsFollowTheStates) {
  Rig rig(abc());
  rig.submit(1, spec());
  rig.submit(2, spec());
  rig.submit(3, spec(1, 0));
  auto c = rig.book.counts();
  EXPECT_EQ(c.queued, 3u);
  rig.service(kT0);
  c = rig.book.counts();
  EXPECT_EQ(c.queued, 0u);
  EXPECT_EQ(c.running, 3u);
  ASSERT_EQ(rig.sends(2), (Names{"a#1"}));  // a at 2 x 10 ties b at 20: same reliability, by id
  ASSERT_EQ(rig.sends(3), (Names{"b#1"}));
  rig.answer("a", 1, 1, OK, "x");
  rig.answer("a", 2, 1, ERR, "", 1);
  rig.service(kT0 + kDeadline);  // job 3 times out with no retries
  c = rig.book.counts();
  EXPECT_EQ(c.running, 0u);
  EXPECT_EQ(c.done, 1u);
  EXPECT_EQ(c.failed, 2u);
  EXPECT_EQ(c.retries, 0u);
  EXPECT_EQ(rig.finished.size(), 3u);
}

TEST(JobBook, NextDeadlineIsTheEarliestSendOrTimeout) {
  Rig rig(abc());
  EXPECT_EQ(rig.book.next_deadline_us(), INT64_MAX);
  rig.submit(1, spec());
  rig.service(kT0);
  rig.now = kT0 + ms(500);
  rig.submit(2, spec());
  EXPECT_EQ(rig.book.next_deadline_us(), kT0 + ms(500));  // job 2 may go now
  rig.service(kT0 + ms(500));
  EXPECT_EQ(rig.book.next_deadline_us(), kT0 + kDeadline);  // job 1's copy
  rig.service(kT0 + kDeadline);
  EXPECT_EQ(rig.book.next_deadline_us(), kT0 + kDeadline + kBackoff);  // job 1's retry
  rig.answer("a", 1, 1, OK, "x");  // job 1 ends after all
  EXPECT_EQ(rig.book.next_deadline_us(), kT0 + ms(500) + kDeadline);
}

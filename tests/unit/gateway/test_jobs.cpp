// Jobs (docs/DESIGN.md 5.5, 5.6): routing by impedance and load, the per-node limit,
// timeouts and refusals retried with doubling backoff, the vote by result
// hash, late results, restore after a gateway restart, trim and counts.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "gateway/jobs/jobs.h"

using namespace kairos;
using namespace kairos::gw;

namespace {

constexpr std::int64_t kT0 = 1'000'000'000;               // monotonic, us
constexpr std::int64_t kWall0 = 1'700'000'000'000'000;    // wall, us
constexpr std::int64_t ms(std::int64_t v) { return v * 1000; }

constexpr auto OK = kairos_v1_JobStatus_JOB_OK;
constexpr auto ERR = kairos_v1_JobStatus_JOB_ERROR;
constexpr auto REFUSED = kairos_v1_JobStatus_JOB_REFUSED;
constexpr auto TIMEOUT = kairos_v1_JobStatus_JOB_TIMEOUT;

// With timeout 1000 ms and the default 1 s grace a copy's deadline is 2 s after its send.
constexpr std::int64_t kDeadline = ms(2000);
constexpr std::int64_t kBackoff = ms(200);

using Names = std::vector<std::string>;

struct Sent {
  std::string node;
  std::uint64_t job;
  std::uint32_t attempt;
  std::int64_t at_us;
  bool ok;
};

struct Outcome {
  std::string node;
  bool good;
  std::string why;
  bool operator==(const Outcome&) const = default;
};

struct Contradiction {
  std::uint64_t job;
  Names dissent;
  std::string detail;
};

std::string text(const Bytes& b) { return {b.begin(), b.end()}; }

JobSpec spec(int r = 1, int retries = 3) {
  JobSpec s;
  s.handler = "sum";
  s.timeout_ms = 1000;
  s.redundancy = r;
  s.retries = retries;
  return s;
}

kairos_v1_JobResult result(std::uint64_t job, std::uint32_t attempt, kairos_v1_JobStatus status,
                           std::string_view output = "", int exit_code = 0, std::string_view error = "") {
  kairos_v1_JobResult r = kairos_v1_JobResult_init_zero;
  r.job_id = job;
  r.attempt = attempt;
  r.status = status;
  r.output.size = static_cast<pb_size_t>(output.size());
  std::memcpy(r.output.bytes, output.data(), output.size());
  std::snprintf(r.error, sizeof r.error, "%.*s", static_cast<int>(error.size()), error.data());
  r.exit_code = exit_code;
  return r;
}

// The gateway around a JobBook: candidates it controls, a recorder of
// everything the book does through its hooks, explicit clocks.
class Rig {
 public:
  explicit Rig(std::vector<JobCandidate> nodes = {}, JobLimits limits = {})
      : ready(std::move(nodes)), book(hooks(), limits) {}
  Rig(const Rig&) = delete;
  Rig& operator=(const Rig&) = delete;

  std::vector<JobCandidate> ready;                   // candidates(spec, false)
  std::optional<std::vector<JobCandidate>> capable;  // candidates(spec, true); `ready` when unset
  std::set<std::string> unreachable;                 // send() fails
  std::int64_t now = kT0;

  std::vector<Sent> sent;
  std::vector<JobEvent> events;
  std::vector<Outcome> outcomes;
  std::vector<Contradiction> contradictions;
  std::vector<std::pair<std::string, std::string>> incapable;  // node, detail
  std::vector<Job> finished;                                   // snapshots at the call
  JobBook book;

  static std::int64_t wall(std::int64_t mono) { return kWall0 + (mono - kT0); }

  const Job& submit(std::uint64_t id, JobSpec s) { return book.submit(id, std::move(s), now, wall(now)); }
  void service(std::int64_t t) {
    now = t;
    book.service(t, wall(t));
  }
  void answer(const std::string& node, std::uint64_t job, std::uint32_t attempt, kairos_v1_JobStatus st,
              std::string_view out = "", int exit_code = 0, std::string_view error = "") {
    book.on_result(node, result(job, attempt, st, out, exit_code, error), now, wall(now));
  }
  void answer_at(std::int64_t t, const std::string& node, std::uint64_t job, std::uint32_t attempt,
                 kairos_v1_JobStatus st, std::string_view out = "") {
    now = t;
    answer(node, job, attempt, st, out);
  }
  void refuse(const std::string& node, std::uint64_t job, std::uint32_t attempt, const std::string& why) {
    book.on_refused(node, job, attempt, why, now, wall(now));
  }

  const Job& job(std::uint64_t id) const {
    const Job* j = book.find(id);
    EXPECT_NE(j, nullptr) << "job " << id;
    return *j;
  }
  // "kind node#attempt" for each event of a job, in order.
  Names trail(std::uint64_t id) const {
    Names out;
    for (const auto& e : events) {
      if (e.job != id) continue;
      std::string s = e.kind;
      if (!e.node.empty()) s += " " + e.node + "#" + std::to_string(e.attempt);
      out.push_back(s);
    }
    return out;
  }
  const JobEvent* last_event(std::uint64_t id, const std::string& kind) const {
    for (auto it = events.rbegin(); it != events.rend(); ++it)
      if (it->job == id && it->kind == kind) return &*it;
    return nullptr;
  }
  // "node#attempt" of every copy that left, in order.
  Names sends(std::uint64_t id) const {
    Names out;
    for (const auto& s : sent)
      if (s.job == id && s.ok) out.push_back(s.node + "#" + std::to_string(s.attempt));
    return out;
  }
  int finished_count(std::uint64_t id) const {
    return static_cast<int>(std::count_if(finished.begin(), finished.end(), [&](const Job& j) { return j.id == id; }));
  }

 private:
  JobHooks hooks() {
    JobHooks h;
    h.candidates = [this](const JobSpec&, bool any) { return any && capable ? *capable : ready; };
    h.send = [this](const std::string& node, const Job& job, std::uint32_t attempt) {
      bool ok = !unreachable.contains(node);
      sent.push_back({node, job.id, attempt, now, ok});
      return ok;
    };
    h.changed = [this](const Job&, const JobEvent& e) { events.push_back(e); };
    h.outcome = [this](const std::string& node, bool good, const std::string& why) {
      outcomes.push_back({node, good, why});
    };
    h.contradiction = [this](const Job& job, const Names& dissent, const std::string& detail) {
      contradictions.push_back({job.id, dissent, detail});
    };
    h.incapable = [this](const std::string& node, const Job&, const std::string& detail) {
      incapable.emplace_back(node, detail);
    };
    h.finished = [this](const Job& job) { finished.push_back(job); };
    return h;
  }
};

// Three nodes, a the best, then b, then c.
std::vector<JobCandidate> abc() { return {{"a", 10, 0.9}, {"b", 20, 0.9}, {"c", 30, 0.9}}; }
std::vector<JobCandidate> abcd() { return {{"a", 10, 0.9}, {"b", 20, 0.9}, {"c", 30, 0.9}, {"d", 40, 0.9}}; }

}  // namespace

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

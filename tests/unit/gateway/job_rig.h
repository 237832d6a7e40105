#pragma once
// The gateway around a JobBook for its unit tests (test_jobs.cpp,
// test_job_votes.cpp): candidates the test controls, a recorder of
// everything the book does through its hooks, explicit clocks.
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

namespace kairos::gw::jobs_test {


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

inline std::string text(const Bytes& b) { return {b.begin(), b.end()}; }

inline JobSpec spec(int r = 1, int retries = 3) {
  JobSpec s;
  s.handler = "sum";
  s.timeout_ms = 1000;
  s.redundancy = r;
  s.retries = retries;
  return s;
}

inline kairos_v1_JobResult result(std::uint64_t job, std::uint32_t attempt, kairos_v1_JobStatus status,
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
inline std::vector<JobCandidate> abc() { return {{"a", 10, 0.9}, {"b", 20, 0.9}, {"c", 30, 0.9}}; }
inline std::vector<JobCandidate> abcd() { return {{"a", 10, 0.9}, {"b", 20, 0.9}, {"c", 30, 0.9}, {"d", 40, 0.9}}; }

}  // namespace kairos::gw::jobs_test

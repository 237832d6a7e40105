#include "gateway/jobs/job_store.h"

#include <sqlite3.h>

#include <stdexcept>

#include "common/core/lists.h"

namespace kairos::gw {

namespace {

constexpr const char* kJobColumns =
    "id, handler, needs, dest, payload, timeout_ms, redundancy, retries, state, retries_used, next_attempt, "
    "created_wall_us, finished_wall_us, status, exit_code, output, error, winners, dissent, poll, operator";

Job job_from(const Stmt& q) {
  Job j;
  j.id = static_cast<std::uint64_t>(q.int64(0));
  j.spec.handler = q.text(1);
  j.spec.needs = split_list(q.text(2));
  j.spec.to = q.text(3);
  j.spec.payload = q.blob(4);
  j.spec.timeout_ms = static_cast<std::uint32_t>(q.int64(5));
  j.spec.redundancy = static_cast<int>(q.int64(6));
  j.spec.retries = static_cast<int>(q.int64(7));
  j.state = parse_job_state(q.text(8)).value_or(JobState::queued);
  j.retries_used = static_cast<int>(q.int64(9));
  j.next_attempt = static_cast<std::uint32_t>(q.int64(10));
  j.created_wall_us = q.int64(11);
  j.finished_wall_us = q.int64(12);
  j.status = static_cast<kairos_v1_JobStatus>(q.int64(13));
  j.exit_code = static_cast<int>(q.int64(14));
  j.output = q.blob(15);
  j.error = q.text(16);
  j.winners = split_list(q.text(17));
  j.dissent = split_list(q.text(18));
  j.spec.poll = q.int64(19) != 0;
  j.spec.asked_by = q.text(20);
  return j;
}

}  // namespace

JobStore::JobStore(Store& store)
    : db_(store.handle()),
      save_(std::make_unique<Stmt>(db_, R"sql(
    INSERT INTO jobs (id, handler, needs, dest, payload, timeout_ms, redundancy, retries, state, retries_used,
                      next_attempt, created_wall_us, finished_wall_us, status, exit_code, output, error, winners, dissent,
                      poll, operator)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)
    ON CONFLICT(id) DO UPDATE SET state=?9, retries_used=?10, next_attempt=?11, finished_wall_us=?13, status=?14,
      exit_code=?15, output=?16, error=?17, winners=?18, dissent=?19)sql")),
      append_event_(std::make_unique<Stmt>(db_, R"sql(
    INSERT INTO job_events (job_id, kind, node, attempt, detail, at_wall_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6))sql")) {}

JobStore::~JobStore() = default;

void JobStore::save(const Job& j) {
  save_->bind(1, static_cast<std::int64_t>(j.id))
      .bind(2, j.spec.handler)
      .bind(3, join_list(j.spec.needs))
      .bind(4, j.spec.to)
      .bind(5, j.spec.private_data ? ByteView() : ByteView(j.spec.payload))
      .bind(6, static_cast<std::int64_t>(j.spec.timeout_ms))
      .bind(7, static_cast<std::int64_t>(j.spec.redundancy))
      .bind(8, static_cast<std::int64_t>(j.spec.retries))
      .bind(9, std::string_view(to_string(j.state)))
      .bind(10, static_cast<std::int64_t>(j.retries_used))
      .bind(11, static_cast<std::int64_t>(j.next_attempt))
      .bind(12, j.created_wall_us)
      .bind(13, j.finished_wall_us)
      .bind(14, static_cast<std::int64_t>(j.status))
      .bind(15, static_cast<std::int64_t>(j.exit_code))
      .bind(16, j.spec.private_data ? ByteView() : ByteView(j.output))
      .bind(17, j.error)
      .bind(18, join_list(j.winners))
      .bind(19, join_list(j.dissent))
      .bind(20, static_cast<std::int64_t>(j.spec.poll))
      .bind(21, j.spec.asked_by)
      .run();
}

void JobStore::append_event(const JobEvent& e, std::int64_t at_wall_us) {
  append_event_->bind(1, static_cast<std::int64_t>(e.job))
      .bind(2, e.kind)
      .bind(3, e.node)
      .bind(4, static_cast<std::int64_t>(e.attempt))
      .bind(5, e.detail)
      .bind(6, at_wall_us)
      .run();
}

std::vector<Job> JobStore::load(bool unfinished_only) {
  std::string sql = std::string("SELECT ") + kJobColumns + " FROM jobs" +
                    (unfinished_only ? " WHERE state NOT IN ('DONE', 'FAILED')" : "") + " ORDER BY id";
  Stmt q(db_, sql);
  std::vector<Job> out;
  while (q.step()) out.push_back(job_from(q));
  return out;
}

std::optional<Job> JobStore::load_one(std::uint64_t id) {
  Stmt q(db_, std::string("SELECT ") + kJobColumns + " FROM jobs WHERE id = ?1");
  q.bind(1, static_cast<std::int64_t>(id));
  if (!q.step()) return std::nullopt;
  return job_from(q);
}

std::vector<Job> JobStore::finished_since(std::int64_t since_wall_us, std::size_t limit) {
  Stmt q(db_, std::string("SELECT ") + kJobColumns +
                  " FROM jobs WHERE state IN ('DONE', 'FAILED') AND finished_wall_us >= ?1 "
                  "ORDER BY finished_wall_us, id LIMIT ?2");
  q.bind(1, since_wall_us).bind(2, static_cast<std::int64_t>(limit));
  std::vector<Job> out;
  while (q.step()) out.push_back(job_from(q));
  return out;
}

std::int64_t JobStore::newest_finished_us() {
  Stmt q(db_, "SELECT COALESCE(MAX(finished_wall_us), 0) FROM jobs WHERE state IN ('DONE', 'FAILED')");
  q.step();
  return q.int64(0);
}

std::uint64_t JobStore::max_id() {
  Stmt q(db_, "SELECT COALESCE(MAX(id), 0) FROM jobs");
  q.step();
  return static_cast<std::uint64_t>(q.int64(0));
}

}  // namespace kairos::gw

#include "gateway/hierarchy/catchup.h"

#include <algorithm>

#include "common/core/utf8.h"
#include "common/io/clock.h"
#include "common/io/log.h"

namespace kairos::gw {

namespace {

constexpr std::int64_t kPullWaitUs = 10'000'000;
// A page as large as a reply holds.
constexpr std::uint32_t kConflictPage = pb_arraysize(kairos_v1_ConflictList, entries);
constexpr std::uint32_t kJobPage = pb_arraysize(kairos_v1_JobList, recent);

}  // namespace

CatchUp::CatchUp(Outbox& outbox, SectorBook& book, Fanout& fanout) : outbox_(outbox), book_(book), fanout_(fanout) {
  sqlite3* db = outbox_.store().handle();
  // What the root caught of its sectors: kept once each (sector, id), never changed.
  for (const char* sql : {
           "CREATE TABLE IF NOT EXISTS sector_conflicts (sector TEXT NOT NULL, id INTEGER NOT NULL, type TEXT NOT NULL, "
           "priority INTEGER NOT NULL, node TEXT NOT NULL, detail TEXT NOT NULL, at_wall_us INTEGER NOT NULL, "
           "PRIMARY KEY (sector, id))",
           "CREATE TRIGGER IF NOT EXISTS sector_conflicts_no_update BEFORE UPDATE ON sector_conflicts "
           "BEGIN SELECT RAISE(ABORT, 'the conflict log is append-only'); END",
           "CREATE TABLE IF NOT EXISTS sector_jobs (sector TEXT NOT NULL, id INTEGER NOT NULL, handler TEXT NOT NULL, "
           "state TEXT NOT NULL, error TEXT NOT NULL, asked_by TEXT NOT NULL, finished_wall_us INTEGER NOT NULL, "
           "PRIMARY KEY (sector, id))",
           "CREATE TRIGGER IF NOT EXISTS sector_jobs_no_update BEFORE UPDATE ON sector_jobs "
           "BEGIN SELECT RAISE(ABORT, 'a finished job does not change'); END",
       })
    Stmt(db, sql).run();
  Stmt conflicts(db, "SELECT sector, MAX(id) FROM sector_conflicts GROUP BY sector");
  while (conflicts.step()) held_[conflicts.text(0)].conflict = static_cast<std::uint64_t>(conflicts.int64(1));
  Stmt jobs(db, "SELECT sector, MAX(finished_wall_us) FROM sector_jobs GROUP BY sector");
  while (jobs.step()) held_[jobs.text(0)].finished_us = jobs.int64(1);
}

void CatchUp::service(std::int64_t now_us) {
  if (outbox_.paused(now_us)) return;
  for (const auto& sector : book_.reachable(now_us)) {
    const kairos_v1_SectorSummary* s = book_.summary(sector);
    if (!s) continue;
    const Held& held = held_[sector];
    if (!pulling_conflicts_.count(sector) && s->conflict_high > held.conflict)
      pull_conflicts(sector, held.conflict, now_us);
    // Jobs finished in the same microsecond as the newest held are asked again: kept once.
    if (!pulling_jobs_.count(sector) && s->job_finished_us > held.finished_us)
      pull_jobs(sector, held.finished_us, now_us);
  }
}

void CatchUp::pull_conflicts(const std::string& sector, std::uint64_t after, std::int64_t now_us) {
  kairos_v1_ControlRequest req = kairos_v1_ControlRequest_init_zero;
  req.which_verb = kairos_v1_ControlRequest_conflicts_tag;
  req.verb.conflicts.since = true;
  req.verb.conflicts.after_id = after;
  req.verb.conflicts.min_priority = 3;
  req.verb.conflicts.limit = kConflictPage;
  pulling_conflicts_.insert(sector);
  fanout_.ask(sector, req, now_us + kPullWaitUs, [this](const std::string& s, SectorAnswer a) {
    pulling_conflicts_.erase(s);
    if (!a || !a->ok || a->which_reply != kairos_v1_ControlResponse_conflicts_tag) return;
    const auto& l = a->reply.conflicts;
    const bool kept = outbox_.transaction([&](Store& store) {
      Stmt add(store.handle(),
               "INSERT OR IGNORE INTO sector_conflicts (sector, id, type, priority, node, detail, at_wall_us) "
               "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
      for (pb_size_t i = 0; i < l.entries_count; ++i) {
        const auto& e = l.entries[i];
        add.bind(1, s).bind(2, static_cast<std::int64_t>(e.id)).bind(3, e.type);
        add.bind(4, static_cast<std::int64_t>(e.priority)).bind(5, e.node).bind(6, e.detail).bind(7, e.at_us);
        add.run();
      }
    }, mono_us());
    if (!kept || !l.entries_count) return;
    Held& held = held_[s];
    for (pb_size_t i = 0; i < l.entries_count; ++i) held.conflict = std::max(held.conflict, l.entries[i].id);
    log::info("sectors", s + ": caught " + std::to_string(l.entries_count) + " conflicts");
  });
}

void CatchUp::pull_jobs(const std::string& sector, std::int64_t since, std::int64_t now_us) {
  kairos_v1_ControlRequest req = kairos_v1_ControlRequest_init_zero;
  req.which_verb = kairos_v1_ControlRequest_jobs_tag;
  req.verb.jobs.finished = true;
  req.verb.jobs.finished_since_us = since;
  req.verb.jobs.limit = kJobPage;
  pulling_jobs_.insert(sector);
  fanout_.ask(sector, req, now_us + kPullWaitUs, [this](const std::string& s, SectorAnswer a) {
    pulling_jobs_.erase(s);
    if (!a || !a->ok || a->which_reply != kairos_v1_ControlResponse_jobs_tag) return;
    const auto& l = a->reply.jobs;
    const bool kept = outbox_.transaction([&](Store& store) {
      Stmt add(store.handle(),
               "INSERT OR IGNORE INTO sector_jobs (sector, id, handler, state, error, asked_by, finished_wall_us) "
               "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)");
      for (pb_size_t i = 0; i < l.recent_count; ++i) {
        const auto& j = l.recent[i];
        add.bind(1, s).bind(2, static_cast<std::int64_t>(j.job_id)).bind(3, j.handler).bind(4, j.state);
        add.bind(5, j.error).bind(6, j.asked_by).bind(7, j.finished_us);
        add.run();
      }
    }, mono_us());
    if (!kept) return;
    Held& held = held_[s];
    for (pb_size_t i = 0; i < l.recent_count; ++i) held.finished_us = std::max(held.finished_us, l.recent[i].finished_us);
    // A full page of jobs finished in one microsecond would be asked for again and again.
    if (l.recent_count == kJobPage && l.recent[0].finished_us == l.recent[kJobPage - 1].finished_us)
      log::warn("sectors", s + ": " + std::to_string(kJobPage) + " jobs finished in one microsecond; the root lists some");
  });
}

void CatchUp::fill_conflicts(const kairos_v1_ConflictsRequest& q, kairos_v1_ConflictList& r) {
  const std::uint32_t limit = q.limit ? std::min(q.limit, kConflictPage) : kConflictPage;
  sqlite3* db = outbox_.store().handle();
  Stmt count(db, "SELECT COUNT(*) FROM sector_conflicts");
  count.step();
  r.total = static_cast<std::uint64_t>(count.int64(0));
  Stmt q2(db, "SELECT sector, id, type, priority, node, detail, at_wall_us FROM (SELECT * FROM sector_conflicts "
              "ORDER BY at_wall_us DESC, sector, id DESC LIMIT ?1) ORDER BY at_wall_us, sector, id");
  q2.bind(1, static_cast<std::int64_t>(limit));
  while (q2.step()) {
    auto& e = r.entries[r.entries_count++];
    set_string(e.sector, q2.text(0));
    e.id = static_cast<std::uint64_t>(q2.int64(1));
    set_string(e.type, q2.text(2));
    e.priority = static_cast<std::uint32_t>(q2.int64(3));
    set_string(e.node, q2.text(4));
    set_string(e.detail, q2.text(5).substr(0, 256));
    e.at_us = q2.int64(6);
  }
}

void CatchUp::fill_jobs(const kairos_v1_JobsRequest& q, kairos_v1_JobList& r) {
  const std::uint32_t limit = q.limit ? std::min(q.limit, kJobPage) : kJobPage;
  sqlite3* db = outbox_.store().handle();
  Stmt counts(db, "SELECT state, COUNT(*) FROM sector_jobs GROUP BY state");
  while (counts.step()) {
    if (counts.text(0) == "DONE") r.done = static_cast<std::uint64_t>(counts.int64(1));
    if (counts.text(0) == "FAILED") r.failed = static_cast<std::uint64_t>(counts.int64(1));
  }
  Stmt q2(db, "SELECT sector, id, handler, state, error, asked_by, finished_wall_us FROM sector_jobs "
              "ORDER BY finished_wall_us DESC, sector, id DESC LIMIT ?1");
  q2.bind(1, static_cast<std::int64_t>(limit));
  while (q2.step()) {
    auto& j = r.recent[r.recent_count++];
    set_string(j.sector, q2.text(0));
    j.job_id = static_cast<std::uint64_t>(q2.int64(1));
    set_string(j.handler, q2.text(2));
    set_string(j.state, q2.text(3));
    set_string(j.error, q2.text(4).substr(0, 64));
    set_string(j.asked_by, q2.text(5));
    j.finished_us = q2.int64(6);
  }
}

}  // namespace kairos::gw

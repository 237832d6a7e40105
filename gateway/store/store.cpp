#include "gateway/store/store.h"

#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "common/io/session_file.h"

#include "common/core/lists.h"

namespace kairos::gw {

namespace {
[[noreturn]] void fail(sqlite3* db, std::string_view what) {
  throw std::runtime_error(std::string(what) + ": " + sqlite3_errmsg(db));
}
}  // namespace

Stmt::Stmt(sqlite3* db, std::string_view sql) : db_(db) {
  if (sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr) != SQLITE_OK)
    fail(db, "prepare");
}

Stmt::~Stmt() { sqlite3_finalize(stmt_); }

Stmt& Stmt::bind(int i, std::int64_t v) {
  sqlite3_bind_int64(stmt_, i, v);
  return *this;
}

Stmt& Stmt::bind(int i, std::string_view v) {
  sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}

Stmt& Stmt::bind(int i, ByteView v) {
  sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}

bool Stmt::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  fail(db_, "step");
}

void Stmt::run() {
  while (step()) {
  }
  reset();
}

void Stmt::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

std::int64_t Stmt::int64(int col) const { return sqlite3_column_int64(stmt_, col); }

std::string Stmt::text(int col) const {
  const auto* p = sqlite3_column_text(stmt_, col);
  return p ? std::string(reinterpret_cast<const char*>(p), static_cast<std::size_t>(sqlite3_column_bytes(stmt_, col)))
           : std::string();
}

Bytes Stmt::blob(int col) const {
  const auto* p = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, col));
  return p ? Bytes(p, p + sqlite3_column_bytes(stmt_, col)) : Bytes();
}

std::string database_problem(const std::string& path) {
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  const std::string owner = "the user kairos-gateway runs as (uid " + std::to_string(::geteuid()) + ")";
  const std::string fix =
      "the packaged unit makes /var/lib/kairos for it (StateDirectory=kairos); elsewhere: install -d -o kairos -g "
      "kairos " + dir + ", or point gateway.database at a file in a directory it may write";
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR)
      return "the directory " + dir + " of gateway.database (" + path + ") does not exist: create it for " + owner +
             " (" + fix + ")";
    return "the directory " + dir + " of gateway.database (" + path + "): " + std::strerror(errno);
  }
  if (!S_ISDIR(st.st_mode)) return dir + ", the directory of gateway.database (" + path + "), is not a directory";
  // SQLite creates the file and, in WAL mode, its -wal and -shm files beside it.
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    return "the directory " + dir + " of gateway.database (" + path + ") is not writable by " + owner +
           " (" + std::strerror(errno) + "): SQLite creates the file and its -wal and -shm files there (" + fix + ")";
  if (::access(path.c_str(), F_OK) == 0 && ::access(path.c_str(), R_OK | W_OK) != 0)
    return "gateway.database " + path + " is not writable by " + owner + " (" + std::strerror(errno) +
           "): chown kairos " + path;
  return "";
}

Store::Store(const std::string& path) {
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw std::runtime_error(path + ": " + msg);
  }
  sqlite3_busy_timeout(db_, 5000);
  exec("PRAGMA journal_mode=WAL");
  exec("PRAGMA synchronous=FULL");
  exec(R"sql(
    CREATE TABLE IF NOT EXISTS nodes (
      id TEXT PRIMARY KEY,
      cluster TEXT NOT NULL,
      board TEXT NOT NULL,
      device_class INTEGER NOT NULL,
      firmware TEXT NOT NULL,
      context_hash BLOB,
      capabilities TEXT NOT NULL,
      session INTEGER NOT NULL,
      online INTEGER NOT NULL,
      last_seen_wall_us INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS meta (
      key TEXT PRIMARY KEY,
      value INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS ctl_requests (
      client TEXT NOT NULL,
      session INTEGER NOT NULL,
      seq INTEGER NOT NULL,
      sent_at_us INTEGER NOT NULL,
      PRIMARY KEY (client, session, seq)) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS ctl_requests_by_time ON ctl_requests (sent_at_us);
    CREATE TABLE IF NOT EXISTS sessions (
      sender TEXT NOT NULL,
      session INTEGER NOT NULL,
      high_water INTEGER NOT NULL,
      first_seen INTEGER NOT NULL,
      PRIMARY KEY (sender, session));
    CREATE TABLE IF NOT EXISTS events (
      id INTEGER PRIMARY KEY,
      node TEXT NOT NULL,
      session INTEGER NOT NULL,
      seq INTEGER NOT NULL,
      kind INTEGER NOT NULL,
      source TEXT NOT NULL,
      detail TEXT NOT NULL,
      sent_at_us INTEGER NOT NULL,
      historical INTEGER NOT NULL,
      received_wall_us INTEGER NOT NULL,
      UNIQUE (node, session, seq));
    -- The event log is append-only: history is not rewritten.
    CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
      BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
    CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
      BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
    -- The conflict log (docs/DESIGN.md 5.6, 5.7) is append-only too.
    CREATE TABLE IF NOT EXISTS conflicts (
      id INTEGER PRIMARY KEY,
      type TEXT NOT NULL,
      priority INTEGER NOT NULL,
      node TEXT NOT NULL,
      detail TEXT NOT NULL,
      at_wall_us INTEGER NOT NULL);
    -- The status box counts the last hour's conflicts at every call.
    CREATE INDEX IF NOT EXISTS conflicts_at ON conflicts (at_wall_us);
    CREATE TRIGGER IF NOT EXISTS conflicts_no_update BEFORE UPDATE ON conflicts
      BEGIN SELECT RAISE(ABORT, 'the conflict log is append-only'); END;
    CREATE TRIGGER IF NOT EXISTS conflicts_no_delete BEFORE DELETE ON conflicts
      BEGIN SELECT RAISE(ABORT, 'the conflict log is append-only'); END;
    -- The resolution queue (docs/DESIGN.md 5.6): a task per conflict, open until resolved.
    CREATE TABLE IF NOT EXISTS resolutions (
      id INTEGER PRIMARY KEY,
      conflict_id INTEGER NOT NULL UNIQUE REFERENCES conflicts(id),
      priority INTEGER NOT NULL,
      strategy TEXT NOT NULL,
      state TEXT NOT NULL CHECK (state IN ('open', 'resolved')),
      resolution TEXT NOT NULL DEFAULT '',
      resolved_wall_us INTEGER NOT NULL DEFAULT 0);
    CREATE INDEX IF NOT EXISTS resolutions_open ON resolutions (state, priority);
    CREATE TRIGGER IF NOT EXISTS resolutions_once BEFORE UPDATE ON resolutions WHEN OLD.state = 'resolved'
      BEGIN SELECT RAISE(ABORT, 'a resolved task stays resolved'); END;
    CREATE TRIGGER IF NOT EXISTS resolutions_no_delete BEFORE DELETE ON resolutions
      BEGIN SELECT RAISE(ABORT, 'resolution tasks are kept'); END;
    -- Quarantine store (docs/DESIGN.md 5.6): who was quarantined or healed, why, and
    -- the data in question. Append-only; a node's state is its newest row.
    CREATE TABLE IF NOT EXISTS quarantine (
      id INTEGER PRIMARY KEY,
      node TEXT NOT NULL,
      action TEXT NOT NULL CHECK (action IN ('quarantine', 'heal', 'data')),
      reason TEXT NOT NULL,
      data BLOB,
      at_wall_us INTEGER NOT NULL);
    CREATE TRIGGER IF NOT EXISTS quarantine_no_update BEFORE UPDATE ON quarantine
      BEGIN SELECT RAISE(ABORT, 'the quarantine store is append-only'); END;
    CREATE TRIGGER IF NOT EXISTS quarantine_no_delete BEFORE DELETE ON quarantine
      BEGIN SELECT RAISE(ABORT, 'the quarantine store is append-only'); END;
    -- Jobs (docs/DESIGN.md 5.5). A finished job never changes again: a second
    -- completion is refused by the database itself.
    CREATE TABLE IF NOT EXISTS jobs (
      id INTEGER PRIMARY KEY,
      handler TEXT NOT NULL,
      needs TEXT NOT NULL,
      dest TEXT NOT NULL,
      payload BLOB,
      timeout_ms INTEGER NOT NULL,
      redundancy INTEGER NOT NULL,
      retries INTEGER NOT NULL,
      state TEXT NOT NULL,
      retries_used INTEGER NOT NULL,
      next_attempt INTEGER NOT NULL,
      created_wall_us INTEGER NOT NULL,
      finished_wall_us INTEGER NOT NULL,
      status INTEGER NOT NULL,
      exit_code INTEGER NOT NULL,
      output BLOB,
      error TEXT NOT NULL,
      winners TEXT NOT NULL,
      dissent TEXT NOT NULL,
      poll INTEGER NOT NULL DEFAULT 0);
    CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state);
    -- (Only the list of outvoted nodes may still grow, with late results.)
    CREATE TRIGGER IF NOT EXISTS jobs_final BEFORE UPDATE ON jobs
      WHEN OLD.state IN ('DONE', 'FAILED') AND (NEW.state IS NOT OLD.state OR NEW.output IS NOT OLD.output
        OR NEW.status IS NOT OLD.status OR NEW.exit_code IS NOT OLD.exit_code OR NEW.error IS NOT OLD.error
        OR NEW.winners IS NOT OLD.winners OR NEW.finished_wall_us IS NOT OLD.finished_wall_us
        OR NEW.handler IS NOT OLD.handler OR NEW.payload IS NOT OLD.payload
        OR NEW.created_wall_us IS NOT OLD.created_wall_us)
      BEGIN SELECT RAISE(ABORT, 'a finished job does not change'); END;
    CREATE TRIGGER IF NOT EXISTS jobs_no_delete BEFORE DELETE ON jobs
      BEGIN SELECT RAISE(ABORT, 'jobs are kept'); END;
    -- Snapshots of the registry and mesh state (freeze, EMERGENCY): append-only.
    CREATE TABLE IF NOT EXISTS snapshots (
      id INTEGER PRIMARY KEY,
      kind TEXT NOT NULL,
      scope TEXT NOT NULL,
      at_wall_us INTEGER NOT NULL,
      body TEXT NOT NULL);
    CREATE TRIGGER IF NOT EXISTS snapshots_no_update BEFORE UPDATE ON snapshots
      BEGIN SELECT RAISE(ABORT, 'snapshots are kept as written'); END;
    CREATE TRIGGER IF NOT EXISTS snapshots_no_delete BEFORE DELETE ON snapshots
      BEGIN SELECT RAISE(ABORT, 'snapshots are kept as written'); END;
    CREATE TABLE IF NOT EXISTS job_events (
      id INTEGER PRIMARY KEY,
      job_id INTEGER NOT NULL,
      kind TEXT NOT NULL,
      node TEXT NOT NULL,
      attempt INTEGER NOT NULL,
      detail TEXT NOT NULL,
      at_wall_us INTEGER NOT NULL);
    CREATE INDEX IF NOT EXISTS job_events_job ON job_events (job_id);
    CREATE TRIGGER IF NOT EXISTS job_events_no_update BEFORE UPDATE ON job_events
      BEGIN SELECT RAISE(ABORT, 'the job log is append-only'); END;
    CREATE TRIGGER IF NOT EXISTS job_events_no_delete BEFORE DELETE ON job_events
      BEGIN SELECT RAISE(ABORT, 'the job log is append-only'); END;
    CREATE TABLE IF NOT EXISTS breaker_holds (
      cluster TEXT PRIMARY KEY,
      operator TEXT NOT NULL,
      at_wall_us INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS ball_plays (
      ball_id TEXT PRIMARY KEY,
      session TEXT NOT NULL,
      started_wall_us INTEGER NOT NULL);
    CREATE INDEX IF NOT EXISTS ball_plays_session ON ball_plays (session);
    CREATE TABLE IF NOT EXISTS ball_entries (
      ball_id TEXT NOT NULL,
      seq INTEGER NOT NULL,
      session TEXT NOT NULL,
      kind TEXT NOT NULL,
      author TEXT NOT NULL,
      at_us INTEGER NOT NULL,
      text BLOB NOT NULL,
      hash BLOB NOT NULL,
      PRIMARY KEY (ball_id, seq));
    CREATE TRIGGER IF NOT EXISTS ball_plays_no_update BEFORE UPDATE ON ball_plays
      BEGIN SELECT RAISE(ABORT, 'Ball plays are append-only'); END;
    CREATE TRIGGER IF NOT EXISTS ball_plays_no_delete BEFORE DELETE ON ball_plays
      BEGIN SELECT RAISE(ABORT, 'Ball plays are append-only'); END;
    CREATE TRIGGER IF NOT EXISTS ball_entries_no_update BEFORE UPDATE ON ball_entries
      BEGIN SELECT RAISE(ABORT, 'the Ball lineage is append-only'); END;
    CREATE TRIGGER IF NOT EXISTS ball_entries_no_delete BEFORE DELETE ON ball_entries
      BEGIN SELECT RAISE(ABORT, 'the Ball lineage is append-only'); END;
  )sql");
  migrate_operators();
  append_ball_entry_ = std::make_unique<Stmt>(db_, R"sql(
    INSERT INTO ball_entries (ball_id, seq, session, kind, author, at_us, text, hash, operator)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9))sql");
  open_task_ = std::make_unique<Stmt>(
      db_, "INSERT INTO resolutions (conflict_id, priority, strategy, state) VALUES (?1, ?2, ?3, 'open')");
  append_quarantine_ = std::make_unique<Stmt>(db_, R"sql(
    INSERT INTO quarantine (node, action, reason, data, at_wall_us, operator) VALUES (?1, ?2, ?3, ?4, ?5, ?6))sql");
  append_conflict_ = std::make_unique<Stmt>(db_, R"sql(
    INSERT INTO conflicts (type, priority, node, detail, at_wall_us) VALUES (?1, ?2, ?3, ?4, ?5))sql");
  upsert_node_ = std::make_unique<Stmt>(db_, R"sql(
    INSERT INTO nodes (id, cluster, board, device_class, firmware, context_hash, capabilities,
                       session, online, last_seen_wall_us)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
    ON CONFLICT(id) DO UPDATE SET cluster=?2, board=?3, device_class=?4, firmware=?5,
      context_hash=?6, capabilities=?7, session=?8, online=?9, last_seen_wall_us=?10)sql");
  append_event_ = std::make_unique<Stmt>(db_, R"sql(
    INSERT OR IGNORE INTO events (node, session, seq, kind, source, detail, sent_at_us, historical, received_wall_us)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9))sql");
  save_session_ = std::make_unique<Stmt>(db_, R"sql(
    INSERT INTO sessions (sender, session, high_water, first_seen) VALUES (?1, ?2, ?3, ?4)
    ON CONFLICT(sender, session) DO UPDATE SET high_water = MAX(high_water, ?3))sql");
}

Store::~Store() {
  upsert_node_.reset();
  save_session_.reset();
  append_event_.reset();
  append_conflict_.reset();
  append_quarantine_.reset();
  open_task_.reset();
  // close_v2: the connection goes once the last statement is finalized, whatever the order.
  sqlite3_close_v2(db_);
}

void Store::exec(std::string_view sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, std::string(sql).c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "?";
    sqlite3_free(err);
    throw std::runtime_error("sqlite: " + msg);
  }
}

void Store::begin() { exec("BEGIN IMMEDIATE"); }
void Store::rollback() {
  if (!sqlite3_get_autocommit(db_)) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}
void Store::commit() { exec("COMMIT"); }

void Store::upsert_node(const StoredNode& n) {
  auto& s = *upsert_node_;
  s.bind(1, n.id).bind(2, n.cluster).bind(3, n.board).bind(4, std::int64_t{n.device_class});
  s.bind(5, n.firmware).bind(6, ByteView(n.context_hash)).bind(7, n.capabilities);
  s.bind(8, static_cast<std::int64_t>(n.session)).bind(9, std::int64_t{n.online}).bind(10, n.last_seen_wall_us);
  s.run();
}

std::vector<StoredNode> Store::load_nodes() {
  Stmt s(db_, "SELECT id, cluster, board, device_class, firmware, context_hash, capabilities, session, "
              "online, last_seen_wall_us FROM nodes ORDER BY id");
  std::vector<StoredNode> out;
  while (s.step()) {
    StoredNode n;
    n.id = s.text(0);
    n.cluster = s.text(1);
    n.board = s.text(2);
    n.device_class = static_cast<int>(s.int64(3));
    n.firmware = s.text(4);
    n.context_hash = s.blob(5);
    n.capabilities = s.text(6);
    n.session = static_cast<std::uint64_t>(s.int64(7));
    n.online = s.int64(8) != 0;
    n.last_seen_wall_us = s.int64(9);
    out.push_back(std::move(n));
  }
  return out;
}

void Store::save_session(const StoredSession& x, std::int64_t first_seen_us) {
  auto& s = *save_session_;
  s.bind(1, x.sender).bind(2, static_cast<std::int64_t>(x.session)).bind(3, static_cast<std::int64_t>(x.high_water));
  s.bind(4, first_seen_us);
  s.run();
}

void Store::append_event(const StoredEvent& e) {
  auto& s = *append_event_;
  s.bind(1, e.node).bind(2, static_cast<std::int64_t>(e.session)).bind(3, static_cast<std::int64_t>(e.seq));
  s.bind(4, std::int64_t{e.kind}).bind(5, e.source).bind(6, e.detail).bind(7, e.sent_at_us);
  s.bind(8, std::int64_t{e.historical}).bind(9, e.received_wall_us);
  s.run();
}

void Store::append_conflict(const StoredConflict& c) {
  append_conflict_->bind(1, c.type).bind(2, static_cast<std::int64_t>(c.priority)).bind(3, c.node).bind(4, c.detail)
      .bind(5, c.at_wall_us).run();
  open_task_->bind(1, static_cast<std::int64_t>(sqlite3_last_insert_rowid(db_)))
      .bind(2, static_cast<std::int64_t>(c.priority))
      .bind(3, c.suggested)
      .run();
}

namespace {

constexpr const char* kConflictColumns =
    "c.type, c.priority, c.node, c.detail, c.at_wall_us, COALESCE(r.strategy, ''), COALESCE(r.id, 0), "
    "COALESCE(r.state, ''), COALESCE(r.resolution, ''), COALESCE(r.resolved_by, ''), c.id";

StoredConflict conflict_from(const Stmt& q) {
  return {q.text(0), static_cast<int>(q.int64(1)), q.text(2), q.text(3), q.int64(4), q.text(5),
          static_cast<std::uint64_t>(q.int64(6)), q.text(7), q.text(8), q.text(9),
          static_cast<std::uint64_t>(q.int64(10))};
}

}  // namespace

std::vector<StoredConflict> Store::open_tasks(std::size_t limit) {
  Stmt q(db_, std::string("SELECT ") + kConflictColumns +
                  " FROM resolutions AS r JOIN conflicts AS c ON c.id = r.conflict_id WHERE r.state = 'open' "
                  "ORDER BY r.priority DESC, r.id LIMIT ?1");
  q.bind(1, static_cast<std::int64_t>(limit));
  std::vector<StoredConflict> out;
  while (q.step()) out.push_back(conflict_from(q));
  return out;
}

std::array<std::uint32_t, 5> Store::open_tasks_by_priority() {
  Stmt q(db_, "SELECT priority, COUNT(*) FROM resolutions WHERE state = 'open' GROUP BY priority");
  std::array<std::uint32_t, 5> out{};
  while (q.step()) {
    const auto p = q.int64(0);
    if (p >= 0 && p < 5) out[static_cast<std::size_t>(p)] = static_cast<std::uint32_t>(q.int64(1));
  }
  return out;
}

std::uint64_t Store::open_task_count() {
  Stmt q(db_, "SELECT COUNT(*) FROM resolutions WHERE state = 'open'");
  q.step();
  return static_cast<std::uint64_t>(q.int64(0));
}

bool Store::resolve_task(std::uint64_t task, const std::string& how, std::int64_t at_wall_us, const std::string& by) {
  Stmt q(db_, "UPDATE resolutions SET state = 'resolved', resolution = ?2, resolved_wall_us = ?3, resolved_by = ?4 "
              "WHERE id = ?1 AND state = 'open'");
  q.bind(1, static_cast<std::int64_t>(task)).bind(2, how).bind(3, at_wall_us).bind(4, by).run();
  return sqlite3_changes(db_) == 1;
}

int Store::resolve_node(const std::string& node, const std::vector<std::string>& types, const std::string& how,
                        std::int64_t at_wall_us, const std::string& by) {
  int n = 0;
  for (const auto& type : types) {
    Stmt q(db_, "UPDATE resolutions SET state = 'resolved', resolution = ?3, resolved_wall_us = ?4, resolved_by = ?5 "
                "WHERE state = 'open' AND conflict_id IN (SELECT id FROM conflicts WHERE node = ?1 AND type = ?2)");
    q.bind(1, node).bind(2, type).bind(3, how).bind(4, at_wall_us).bind(5, by).run();
    n += sqlite3_changes(db_);
  }
  return n;
}

std::uint64_t Store::conflict_count() {
  Stmt q(db_, "SELECT COUNT(*) FROM conflicts");
  return q.step() ? static_cast<std::uint64_t>(q.int64(0)) : 0;
}

std::vector<Store::ConflictCount> Store::conflict_counts() {
  std::vector<ConflictCount> out;
  Stmt q(db_, "SELECT type, priority, COUNT(*) FROM conflicts GROUP BY type, priority ORDER BY type, priority");
  while (q.step()) out.push_back({q.text(0), static_cast<int>(q.int64(1)), static_cast<std::uint64_t>(q.int64(2))});
  return out;
}

std::vector<StoredConflict> Store::conflicts(std::size_t limit) {
  Stmt q(db_, std::string("SELECT ") + kConflictColumns +
                  " FROM (SELECT * FROM conflicts ORDER BY id DESC LIMIT ?1) AS c "
                  "LEFT JOIN resolutions AS r ON r.conflict_id = c.id ORDER BY c.id");
  q.bind(1, static_cast<std::int64_t>(limit));
  std::vector<StoredConflict> out;
  while (q.step()) out.push_back(conflict_from(q));
  return out;
}

std::vector<StoredConflict> Store::conflicts_after(std::uint64_t after_id, int min_priority, std::size_t limit) {
  Stmt q(db_, std::string("SELECT ") + kConflictColumns +
                  " FROM conflicts AS c LEFT JOIN resolutions AS r ON r.conflict_id = c.id "
                  "WHERE c.id > ?1 AND c.priority >= ?2 ORDER BY c.id LIMIT ?3");
  q.bind(1, static_cast<std::int64_t>(after_id)).bind(2, static_cast<std::int64_t>(min_priority));
  q.bind(3, static_cast<std::int64_t>(limit));
  std::vector<StoredConflict> out;
  while (q.step()) out.push_back(conflict_from(q));
  return out;
}

std::uint64_t Store::conflict_high(int min_priority) {
  Stmt q(db_, "SELECT COALESCE(MAX(id), 0) FROM conflicts WHERE priority >= ?1");
  q.bind(1, static_cast<std::int64_t>(min_priority));
  q.step();
  return static_cast<std::uint64_t>(q.int64(0));
}

std::vector<StoredSession> Store::load_sessions() {
  Stmt s(db_, "SELECT sender, session, high_water FROM sessions ORDER BY sender, first_seen, rowid");
  std::vector<StoredSession> out;
  while (s.step())
    out.push_back({s.text(0), static_cast<std::uint64_t>(s.int64(1)), static_cast<std::uint64_t>(s.int64(2))});
  return out;
}

}  // namespace kairos::gw

namespace kairos::gw {
std::uint64_t Store::next_gateway_session(std::uint64_t now_us) {
  Stmt q(db_, "SELECT value FROM meta WHERE key = 'gateway_session'");
  std::uint64_t prev = q.step() ? static_cast<std::uint64_t>(q.int64(0)) : 0;
  std::uint64_t next = next_session_id(prev, now_us);
  Stmt w(db_, "INSERT INTO meta (key, value) VALUES ('gateway_session', ?1) "
              "ON CONFLICT (key) DO UPDATE SET value = excluded.value");
  w.bind(1, static_cast<std::int64_t>(next)).run();
  return next;
}

bool Store::remember_request(const std::string& client, std::uint64_t session, std::uint64_t seq,
                             std::int64_t sent_at_us) {
  Stmt add(db_, "INSERT OR IGNORE INTO ctl_requests (client, session, seq, sent_at_us) VALUES (?1, ?2, ?3, ?4)");
  add.bind(1, client).bind(2, static_cast<std::int64_t>(session)).bind(3, static_cast<std::int64_t>(seq));
  add.bind(4, sent_at_us).run();
  return sqlite3_changes(db_) == 1;
}

void Store::forget_requests(std::int64_t before_us) {
  Stmt forget(db_, "DELETE FROM ctl_requests WHERE sent_at_us < ?1");
  forget.bind(1, before_us).run();
}

void Store::forget_node(const std::string& id) {
  Stmt forget(db_, "DELETE FROM nodes WHERE id = ?1");
  forget.bind(1, id).run();
}

std::uint64_t Store::next_count(const std::string& key) {
  Stmt q(db_, "SELECT value FROM meta WHERE key = ?1");
  q.bind(1, key);
  const std::uint64_t next = q.step() ? static_cast<std::uint64_t>(q.int64(0)) + 1 : 0;
  Stmt w(db_, "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value");
  w.bind(1, key).bind(2, static_cast<std::int64_t>(next)).run();
  return next;
}

void Store::append_quarantine(const std::string& node, const std::string& action, const std::string& reason,
                              ByteView data, std::int64_t at_wall_us, const std::string& by) {
  append_quarantine_->bind(1, node).bind(2, action).bind(3, reason).bind(4, data).bind(5, at_wall_us).bind(6, by).run();
}

std::uint64_t Store::append_snapshot(const std::string& kind, const std::string& scope, const std::string& body,
                                     std::int64_t at_wall_us, const std::string& by) {
  Stmt q(db_, "INSERT INTO snapshots (kind, scope, at_wall_us, body, operator) VALUES (?1, ?2, ?3, ?4, ?5)");
  q.bind(1, kind).bind(2, scope).bind(3, at_wall_us).bind(4, body).bind(5, by).run();
  return static_cast<std::uint64_t>(sqlite3_last_insert_rowid(db_));
}

std::uint32_t Store::conflicts_since(std::int64_t wall_us) {
  Stmt q(db_, "SELECT COUNT(*) FROM conflicts WHERE at_wall_us >= ?1");
  q.bind(1, wall_us);
  q.step();
  return static_cast<std::uint32_t>(q.int64(0));
}

std::map<std::string, std::string> Store::quarantined() {
  // A node is quarantined when its newest quarantine or heal row is a quarantine.
  Stmt q(db_, R"sql(
    SELECT node, reason FROM quarantine AS a WHERE action IN ('quarantine', 'heal') AND id =
      (SELECT MAX(id) FROM quarantine AS b WHERE b.node = a.node AND b.action IN ('quarantine', 'heal'))
      AND action = 'quarantine')sql");
  std::map<std::string, std::string> out;
  while (q.step()) out[q.text(0)] = q.text(1);
  return out;
}

void Store::set_breaker_hold(const std::string& cluster, bool held, const std::string& by, std::int64_t at_wall_us) {
  if (!held) {
    Stmt q(db_, "DELETE FROM breaker_holds WHERE cluster = ?1");
    q.bind(1, cluster).run();
    return;
  }
  Stmt q(db_, "INSERT OR REPLACE INTO breaker_holds (cluster, operator, at_wall_us) VALUES (?1, ?2, ?3)");
  q.bind(1, cluster).bind(2, by).bind(3, at_wall_us).run();
}

std::vector<std::string> Store::breaker_holds() {
  Stmt q(db_, "SELECT cluster FROM breaker_holds ORDER BY cluster");
  std::vector<std::string> out;
  while (q.step()) out.push_back(q.text(0));
  return out;
}

}  // namespace kairos::gw

// The gateway's SQLite file, the part about named operators (docs/PROTOCOL.md,
// Operators): their state, the audit log, and who asked for each record.
#include <sqlite3.h>

#include "gateway/store/store.h"

namespace kairos::gw {

namespace {

bool has_column(sqlite3* db, const std::string& table, const std::string& column) {
  Stmt q(db, "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2");
  q.bind(1, table).bind(2, column);
  return q.step();
}

}  // namespace

void Store::migrate_operators() {
  exec(R"sql(
    CREATE TABLE IF NOT EXISTS operators (
      name TEXT PRIMARY KEY,
      state TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'revoked')),
      changed_by TEXT NOT NULL DEFAULT '',
      changed_wall_us INTEGER NOT NULL DEFAULT 0,
      requests INTEGER NOT NULL DEFAULT 0,
      last_request_wall_us INTEGER NOT NULL DEFAULT 0);
    -- What each operator asked that changes something, and revocations: append-only.
    CREATE TABLE IF NOT EXISTS operator_log (
      id INTEGER PRIMARY KEY,
      operator TEXT NOT NULL,
      verb TEXT NOT NULL,
      detail TEXT NOT NULL,
      at_wall_us INTEGER NOT NULL);
    CREATE INDEX IF NOT EXISTS operator_log_by ON operator_log (operator, id);
    CREATE TRIGGER IF NOT EXISTS operator_log_no_update BEFORE UPDATE ON operator_log
      BEGIN SELECT RAISE(ABORT, 'the operator log is append-only'); END;
    CREATE TRIGGER IF NOT EXISTS operator_log_no_delete BEFORE DELETE ON operator_log
      BEGIN SELECT RAISE(ABORT, 'the operator log is append-only'); END;
  )sql");
  // Who asked, on the records of databases written before named operators
  // ("" on the rows that were there: the gateway's own, or not known).
  struct Column {
    const char* table;
    const char* column;
  };
  for (const auto& c : {Column{"jobs", "operator"}, Column{"snapshots", "operator"}, Column{"quarantine", "operator"},
                        Column{"ball_entries", "operator"}, Column{"resolutions", "resolved_by"}})
    if (!has_column(db_, c.table, c.column))
      exec(std::string("ALTER TABLE ") + c.table + " ADD COLUMN " + c.column + " TEXT NOT NULL DEFAULT ''");
}

std::vector<OperatorRecord> Store::load_operators() {
  Stmt q(db_, "SELECT name, state, changed_by, changed_wall_us, requests, last_request_wall_us FROM operators "
              "ORDER BY name");
  std::vector<OperatorRecord> out;
  while (q.step())
    out.push_back({q.text(0), q.text(1) == "revoked", q.text(2), q.int64(3), static_cast<std::uint64_t>(q.int64(4)),
                   q.int64(5)});
  return out;
}

void Store::save_operator(const OperatorRecord& r) {
  Stmt q(db_, R"sql(
    INSERT INTO operators (name, state, changed_by, changed_wall_us, requests, last_request_wall_us)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6)
    ON CONFLICT (name) DO UPDATE SET state = ?2, changed_by = ?3, changed_wall_us = ?4, requests = ?5,
      last_request_wall_us = ?6)sql");
  q.bind(1, r.name).bind(2, std::string_view(r.revoked ? "revoked" : "active")).bind(3, r.changed_by);
  q.bind(4, r.changed_wall_us).bind(5, static_cast<std::int64_t>(r.requests)).bind(6, r.last_request_wall_us).run();
}

void Store::append_operator_action(const OperatorAction& a) {
  Stmt q(db_, "INSERT INTO operator_log (operator, verb, detail, at_wall_us) VALUES (?1, ?2, ?3, ?4)");
  q.bind(1, a.name).bind(2, a.verb).bind(3, a.detail).bind(4, a.at_wall_us).run();
}

std::vector<OperatorAction> Store::operator_actions(const std::string& name, std::uint64_t before_id,
                                                    std::size_t limit) {
  Stmt q(db_, "SELECT id, operator, verb, detail, at_wall_us FROM operator_log WHERE (?1 = '' OR operator = ?1) "
              "AND (?2 = 0 OR id < ?2) ORDER BY id DESC LIMIT ?3");
  q.bind(1, name).bind(2, static_cast<std::int64_t>(before_id)).bind(3, static_cast<std::int64_t>(limit));
  std::vector<OperatorAction> out;
  while (q.step())
    out.push_back({static_cast<std::uint64_t>(q.int64(0)), q.text(1), q.text(2), q.text(3), q.int64(4)});
  return out;
}

}  // namespace kairos::gw

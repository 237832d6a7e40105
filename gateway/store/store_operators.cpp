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

}  // namespace kairos::gw

#pragma once
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <map>
#include <optional>

#include "common/core/ball.h"
#include "common/core/bytes.h"

struct sqlite3;
struct sqlite3_stmt;

namespace kairos::gw {

// A prepared statement; reset after every step sequence.
class Stmt {
 public:
  Stmt(sqlite3* db, std::string_view sql);
  ~Stmt();
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& bind(int i, std::int64_t v);
  Stmt& bind(int i, std::string_view v);
  Stmt& bind(int i, ByteView v);
  // One step: true while a row is available.
  bool step();
  void run();  // steps to the end and resets
  void reset();
  std::int64_t int64(int col) const;
  std::string text(int col) const;
  Bytes blob(int col) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

// What the registry persists of a node.
struct StoredNode {
  std::string id;
  std::string cluster;
  std::string board;
  int device_class = 0;
  std::string firmware;
  Bytes context_hash;
  std::string capabilities;  // comma separated
  std::uint64_t session = 0;
  bool online = false;
  std::int64_t last_seen_wall_us = 0;
};

// A node's event, as logged (append-only).
struct StoredEvent {
  std::string node;
  std::uint64_t session = 0;
  std::uint64_t seq = 0;
  int kind = 0;
  std::string source;
  std::string detail;
  std::int64_t sent_at_us = 0;
  bool historical = false;
  std::int64_t received_wall_us = 0;
};

// A conflict (docs/DESIGN.md 5.6), as logged (append-only).
struct StoredConflict {
  std::string type;      // CONTEXT_DIVERGENCE, DATA_CONTRADICTION, TEMPORAL_PARADOX, CAPABILITY_MISMATCH, HASH_MISMATCH
  int priority = 0;      // 0..4
  std::string node;
  std::string detail;
  std::int64_t at_wall_us = 0;
  std::string suggested;  // the resolution task's strategy
  // As read back with its resolution task:
  std::uint64_t task = 0;
  std::string task_state;  // open, resolved
  std::string resolution;
  std::string resolved_by{};  // the operator who resolved the task
  std::uint64_t id = 0;       // in the conflict log
};

// A Ball play (docs/DESIGN.md 6): the newest play of a session is its current one.
struct StoredPlay {
  std::string session;
  std::string ball_id;
  std::int64_t started_wall_us = 0;
};

struct StoredSession {
  std::string sender;
  std::uint64_t session = 0;
  std::uint64_t high_water = 0;
};

// Why the gateway could not create or write its SQLite file at path (its
// directory missing, not a directory, or not writable by this user, or the
// file itself not writable), naming the directory and what to do; "" when
// nothing is in the way. Looks at the file system.
std::string database_problem(const std::string& path);

// The gateway's SQLite file (WAL mode). Throws std::runtime_error with
// SQLite's message on failure.
class Store {
 public:
  explicit Store(const std::string& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  void upsert_node(const StoredNode& n);
  std::vector<StoredNode> load_nodes();
  // Records a session's high-water mark (first_seen_us orders a sender's sessions).
  void save_session(const StoredSession& s, std::int64_t first_seen_us);
  std::vector<StoredSession> load_sessions();  // ordered by sender, then age
  void append_event(const StoredEvent& e);
  void append_conflict(const StoredConflict& c);
  // The logged conflicts, oldest first (at most limit, the newest ones).
  std::vector<StoredConflict> conflicts(std::size_t limit);
  // The entries after after_id of at least min_priority, oldest first (a root catching up).
  std::vector<StoredConflict> conflicts_after(std::uint64_t after_id, int min_priority, std::size_t limit);
  // The newest entry's id of at least min_priority (0: none).
  std::uint64_t conflict_high(int min_priority);
  std::uint64_t conflict_count();
  // Entries of the log by type and priority (the metrics).
  struct ConflictCount {
    std::string type;
    int priority = 0;
    std::uint64_t count = 0;
  };
  std::vector<ConflictCount> conflict_counts();
  // The resolution queue (docs/DESIGN.md 5.6): every conflict opens a task with its
  // suggested strategy; open tasks, highest priority first, oldest first.
  std::vector<StoredConflict> open_tasks(std::size_t limit);
  // Open resolution tasks by priority 0..4 (a sector's summary).
  std::array<std::uint32_t, 5> open_tasks_by_priority();
  std::uint64_t open_task_count();
  // Closes a task, by the operator by; false when there is no such open task.
  bool resolve_task(std::uint64_t task, const std::string& how, std::int64_t at_wall_us, const std::string& by = "");
  // Closes a node's open tasks of these types (heal); how many.
  int resolve_node(const std::string& node, const std::vector<std::string>& types, const std::string& how,
                   std::int64_t at_wall_us, const std::string& by = "");
  // The gateway's next session id: above every earlier one, persisted (docs/DESIGN.md 4).
  std::uint64_t next_gateway_session(std::uint64_t now_us);
  // Records a control request that was accepted; false when it was
  // already recorded: a replay.
  bool remember_request(const std::string& client, std::uint64_t session, std::uint64_t seq, std::int64_t sent_at_us);
  // Forgets the requests sent before before_us (refused by their age anyway).
  void forget_requests(std::int64_t before_us);
  // A node's row goes (kairosctl forget); its events, conflicts and quarantine history stay.
  void forget_node(const std::string& id);
  // A counter kept in meta, advanced by one and returned (the first call returns 0).
  std::uint64_t next_count(const std::string& key);
  // Quarantine store (append-only): action is quarantine, heal or data; by
  // the operator who asked (heal), "" for the gateway's own.
  void append_quarantine(const std::string& node, const std::string& action, const std::string& reason, ByteView data,
                         std::int64_t at_wall_us, const std::string& by = "");
  // Nodes whose newest quarantine/heal row is a quarantine, with its reason.
  std::map<std::string, std::string> quarantined();
  // Clusters an operator holds OPEN (kairosctl breakers hold), kept across restarts.
  void set_breaker_hold(const std::string& cluster, bool held, const std::string& by, std::int64_t at_wall_us);
  std::vector<std::string> breaker_holds();
  // A snapshot of the registry and mesh state (JSON), by the operator who
  // asked ("" for EMERGENCY's); its id.
  std::uint64_t append_snapshot(const std::string& kind, const std::string& scope, const std::string& body,
                                std::int64_t at_wall_us, const std::string& by = "");
  std::uint32_t conflicts_since(std::int64_t wall_us);
  // Ball plays and their lineage (append-only; docs/DESIGN.md 6).
  void append_ball_play(const std::string& session, const std::string& ball_id, std::int64_t at_wall_us);
  void append_ball_entry(const std::string& ball_id, const ball::Entry& e);
  // The newest plays, newest first.
  std::vector<StoredPlay> ball_plays(std::size_t limit);
  std::optional<StoredPlay> ball_play(const std::string& ball_id);
  // Every session's newest play, oldest session first.
  std::vector<StoredPlay> current_ball_plays();
  // A play's entries as stored, from from_seq on, in sequence order.
  std::vector<ball::Entry> ball_entries(const std::string& ball_id, std::uint64_t from_seq, std::size_t limit);
  std::optional<ball::Entry> last_ball_entry(const std::string& ball_id);
  // The SQLite handle, for the modules' own tables (jobs/job_store, rpc/operator_store).
  sqlite3* handle() { return db_; }
  void begin();
  // Ends a failed transaction, if one is open (never throws).
  void rollback();
  void commit();

 private:
  void exec(std::string_view sql);
  // The operator tables, and who-asked columns added to older databases.
  void migrate_operators();
  sqlite3* db_ = nullptr;
  std::unique_ptr<Stmt> upsert_node_;
  std::unique_ptr<Stmt> save_session_;
  std::unique_ptr<Stmt> append_event_;
  std::unique_ptr<Stmt> append_conflict_;
  std::unique_ptr<Stmt> append_quarantine_;
  std::unique_ptr<Stmt> open_task_;
  std::unique_ptr<Stmt> append_ball_entry_;  // a conflict's resolution task
};

}  // namespace kairos::gw

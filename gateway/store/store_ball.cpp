// Ball plays and their append-only lineage in the gateway's SQLite file
// (docs/DESIGN.md 6).
#include "gateway/store/store.h"

#include <sqlite3.h>

#include <stdexcept>

namespace kairos::gw {

void Store::append_ball_play(const std::string& session, const std::string& ball_id, std::int64_t at_wall_us) {
  Stmt q(db_, "INSERT INTO ball_plays (ball_id, session, started_wall_us) VALUES (?1, ?2, ?3)");
  q.bind(1, ball_id).bind(2, session).bind(3, at_wall_us).run();
}

void Store::append_ball_entry(const std::string& ball_id, const ball::Entry& e) {
  append_ball_entry_->bind(1, ball_id)
      .bind(2, static_cast<std::int64_t>(e.seq))
      .bind(3, e.session)
      .bind(4, e.kind)
      .bind(5, e.author)
      .bind(6, e.at_us)
      .bind(7, ByteView(reinterpret_cast<const std::uint8_t*>(e.text.data()), e.text.size()))
      .bind(8, ByteView(e.hash.data(), e.hash.size()))
      .bind(9, e.asked_by)
      .run();
}

std::vector<StoredPlay> Store::ball_plays(std::size_t limit) {
  Stmt q(db_, "SELECT session, ball_id, started_wall_us FROM ball_plays ORDER BY rowid DESC LIMIT ?1");
  q.bind(1, static_cast<std::int64_t>(limit));
  std::vector<StoredPlay> out;
  while (q.step()) out.push_back({q.text(0), q.text(1), q.int64(2)});
  return out;
}

std::optional<StoredPlay> Store::ball_play(const std::string& ball_id) {
  Stmt q(db_, "SELECT session, ball_id, started_wall_us FROM ball_plays WHERE ball_id = ?1");
  q.bind(1, ball_id);
  if (!q.step()) return std::nullopt;
  return StoredPlay{q.text(0), q.text(1), q.int64(2)};
}

std::vector<StoredPlay> Store::current_ball_plays() {
  Stmt q(db_, "SELECT session, ball_id, started_wall_us FROM ball_plays AS p "
              "WHERE rowid = (SELECT MAX(rowid) FROM ball_plays WHERE session = p.session) ORDER BY rowid");
  std::vector<StoredPlay> out;
  while (q.step()) out.push_back({q.text(0), q.text(1), q.int64(2)});
  return out;
}

namespace {

constexpr const char* kEntryColumns = "seq, session, kind, author, at_us, text, hash, operator";

ball::Entry entry_from(const Stmt& q) {
  ball::Entry e;
  e.seq = static_cast<std::uint64_t>(q.int64(0));
  e.session = q.text(1);
  e.kind = q.text(2);
  e.author = q.text(3);
  e.at_us = q.int64(4);
  Bytes text = q.blob(5);
  e.text.assign(text.begin(), text.end());
  Bytes hash = q.blob(6);
  if (hash.size() == e.hash.size()) std::copy(hash.begin(), hash.end(), e.hash.begin());
  e.asked_by = q.text(7);
  return e;
}

}  // namespace

std::vector<ball::Entry> Store::ball_entries(const std::string& ball_id, std::uint64_t from_seq, std::size_t limit) {
  Stmt q(db_, std::string("SELECT ") + kEntryColumns +
                  " FROM ball_entries WHERE ball_id = ?1 AND seq >= ?2 ORDER BY seq LIMIT ?3");
  q.bind(1, ball_id).bind(2, static_cast<std::int64_t>(from_seq)).bind(3, static_cast<std::int64_t>(limit));
  std::vector<ball::Entry> out;
  while (q.step()) out.push_back(entry_from(q));
  return out;
}

std::optional<ball::Entry> Store::last_ball_entry(const std::string& ball_id) {
  Stmt q(db_, std::string("SELECT ") + kEntryColumns + " FROM ball_entries WHERE ball_id = ?1 ORDER BY seq DESC LIMIT 1");
  q.bind(1, ball_id);
  if (!q.step()) return std::nullopt;
  return entry_from(q);
}

}  // namespace kairos::gw

// Named operators in the gateway's SQLite file (docs/PROTOCOL.md, Operators):
// their state and the audit log of what they asked. The tables are the
// store's schema (store_operators.cpp).
#include "gateway/rpc/operator_store.h"

namespace kairos::gw {

std::vector<OperatorRecord> load_operators(Store& store) {
  Stmt q(store.handle(), "SELECT name, state, changed_by, changed_wall_us, requests, last_request_wall_us FROM operators "
              "ORDER BY name");
  std::vector<OperatorRecord> out;
  while (q.step())
    out.push_back({q.text(0), q.text(1) == "revoked", q.text(2), q.int64(3), static_cast<std::uint64_t>(q.int64(4)),
                   q.int64(5)});
  return out;
}

void save_operator(Store& store, const OperatorRecord& r) {
  Stmt q(store.handle(), R"sql(
    INSERT INTO operators (name, state, changed_by, changed_wall_us, requests, last_request_wall_us)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6)
    ON CONFLICT (name) DO UPDATE SET state = ?2, changed_by = ?3, changed_wall_us = ?4, requests = ?5,
      last_request_wall_us = ?6)sql");
  q.bind(1, r.name).bind(2, std::string_view(r.revoked ? "revoked" : "active")).bind(3, r.changed_by);
  q.bind(4, r.changed_wall_us).bind(5, static_cast<std::int64_t>(r.requests)).bind(6, r.last_request_wall_us).run();
}

void append_operator_action(Store& store, const OperatorAction& a) {
  Stmt q(store.handle(), "INSERT INTO operator_log (operator, verb, detail, at_wall_us) VALUES (?1, ?2, ?3, ?4)");
  q.bind(1, a.name).bind(2, a.verb).bind(3, a.detail).bind(4, a.at_wall_us).run();
}

std::vector<OperatorAction> operator_actions(Store& store, const std::string& name, std::uint64_t before_id,
                                             std::size_t limit) {
  Stmt q(store.handle(), "SELECT id, operator, verb, detail, at_wall_us FROM operator_log WHERE (?1 = '' OR operator = ?1) "
              "AND (?2 = 0 OR id < ?2) ORDER BY id DESC LIMIT ?3");
  q.bind(1, name).bind(2, static_cast<std::int64_t>(before_id)).bind(3, static_cast<std::int64_t>(limit));
  std::vector<OperatorAction> out;
  while (q.step())
    out.push_back({static_cast<std::uint64_t>(q.int64(0)), q.text(1), q.text(2), q.text(3), q.int64(4)});
  return out;
}

}  // namespace kairos::gw

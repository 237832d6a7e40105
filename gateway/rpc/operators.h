#pragma once
// Named operators (docs/PROTOCOL.md, Operators): whose key checks a control
// request, who is revoked, and what each asked.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/core/crypto.h"
#include "kairos.pb.h"

namespace kairos::gw {

// An operator as the database keeps it (table operators).
struct OperatorRecord {
  std::string name;
  bool revoked = false;
  std::string changed_by;           // who last revoked or restored it
  std::int64_t changed_wall_us = 0;
  std::uint64_t requests = 0;       // accepted, ever
  std::int64_t last_request_wall_us = 0;
};

// A line of the audit log (table operator_log, append-only).
struct OperatorAction {
  std::uint64_t id = 0;
  std::string name;
  std::string verb;
  std::string detail;
  std::int64_t at_wall_us = 0;
};

// Where an operator's key is: its own file, the shared operator.key (the
// operator named "operator", on the legacy _ctl/req), or nowhere.
enum class OperatorKey { named, shared, missing };
std::string_view to_string(OperatorKey k);

// The audit line of a request that changes something: verb and what was
// asked (at most 128 bytes, UTF-8 kept whole); an empty verb for requests
// that only read (status, nodes, jobs, conflicts, ball show, ...).
struct AuditLine {
  std::string verb;
  std::string detail;
};
AuditLine audit_line(const kairos_v1_ControlRequest& req);

// The operator a request on this _ctl/req topic speaks for: the topic's
// name, or "operator" on the legacy _ctl/req.
std::string operator_of(std::string_view ctl_req_topic);

// The operators a gateway knows: a key file <keys_dir>/operators/<name>.key
// each (mode rules as for every key), read when first asked for and again
// when the file changes (looked at no more often than recheck_us), plus the
// shared operator.key, whose holders speak as "operator" on the legacy
// _ctl/req. Their state comes from the database (restore) and is kept here.
class OperatorBook {
 public:
  // shared: the gateway's operator.key, kept by the caller.
  OperatorBook(std::string keys_dir, const Key& shared, std::int64_t recheck_us = 2'000'000);

  void restore(const std::vector<OperatorRecord>& rows);
  // The key that checks name's requests, or nullptr with why (no key file,
  // a file with a bad mode, ...). now_us: monotonic.
  const Key* key(const std::string& name, std::int64_t now_us, std::string& why);
  OperatorKey key_kind(const std::string& name) const;  // looks at the file system
  const OperatorRecord* find(const std::string& name) const;
  bool revoked(const std::string& name) const;

  // Every operator known: the key files, the shared key's "operator", and
  // those on record (a key file removed since), by name.
  std::vector<std::string> names() const;

  // "" when by may revoke (restore) name now, else why not: an unknown
  // name, one already revoked (not revoked), or the last active operator.
  std::string may_revoke(const std::string& name) const;
  std::string may_restore(const std::string& name) const;
  void set_revoked(const std::string& name, bool revoked, const std::string& by, std::int64_t wall_us);
  void count_request(const std::string& name, std::int64_t wall_us);

  // Control responses are signed with the key the request was checked
  // with: a client id answers to the first operator that used it. false
  // when client already speaks for another operator.
  bool bind_client(const std::string& client, const std::string& name);
  // The key that signs an answer on response_topic (_ctl/resp/<client>):
  // its operator's, or the shared key.
  const Key& response_key(const std::string& response_topic, std::int64_t now_us);

 private:
  struct Cached {
    Key key{};
    std::int64_t mtime_ns = 0;
    std::int64_t size = 0;
    std::int64_t checked_us = 0;
  };
  std::string path_of(const std::string& name) const;
  bool active(const std::string& name) const;

  std::string dir_;
  const Key& shared_;
  std::int64_t recheck_us_;
  std::unordered_map<std::string, Cached> keys_;
  std::map<std::string, OperatorRecord> records_;
  std::unordered_map<std::string, std::string> clients_;  // client id -> operator
};

}  // namespace kairos::gw

// Named operators (docs/PROTOCOL.md, Operators): keys by name, the
// revocation rules, which key answers a client, the audit lines, and the
// store's operator tables and columns, also on an older database.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>

#include "common/core/frame.h"
#include "common/core/topic.h"
#include "common/core/utf8.h"
#include "gateway/rpc/operator_store.h"
#include "gateway/rpc/operators.h"
#include "gateway/store/store.h"
#include "tests/unit/scratch.h"
#include "tests/unit/keys.h"

using namespace kairos;
using namespace kairos::gw;
namespace fs = std::filesystem;

using kairos::test::key_of;

namespace {


void write_key(const test::ScratchDir& dir, const std::string& rel, const Key& k, fs::perms mode = fs::perms::owner_read |
                                                                                                      fs::perms::owner_write) {
  auto path = dir.write(rel, to_hex(ByteView(k.bytes.data(), k.bytes.size())) + "\n");
  fs::permissions(path, mode);
}

}  // namespace

TEST(OperatorBook, KeysComeFromTheirFilesAndOperatorIsTheSharedOne) {
  test::ScratchDir dir("ops");
  const Key shared = key_of(1);
  write_key(dir, "operators/ana.key", key_of(2));
  write_key(dir, "operators/open.key", key_of(3), fs::perms::owner_read | fs::perms::owner_write | fs::perms::others_read);
  write_key(dir, "operators/operator.key", key_of(4));  // the shared key's name: never a named operator
  OperatorBook book(dir.path().string(), shared, 0);
  std::string why;
  ASSERT_NE(book.key("ana", 0, why), nullptr) << why;
  EXPECT_EQ(book.key("ana", 0, why)->bytes, key_of(2).bytes);
  EXPECT_EQ(book.key("operator", 0, why)->bytes, shared.bytes);
  EXPECT_EQ(book.key("bob", 0, why), nullptr);
  EXPECT_NE(why.find("no key for operator bob"), std::string::npos) << why;
  EXPECT_EQ(book.key("open", 0, why), nullptr);
  EXPECT_NE(why.find("chmod 600"), std::string::npos) << why;
  EXPECT_EQ(book.key("../ana", 0, why), nullptr);
  EXPECT_EQ(book.key_kind("ana"), OperatorKey::named);
  EXPECT_EQ(book.key_kind("operator"), OperatorKey::shared);
  EXPECT_EQ(book.key_kind("bob"), OperatorKey::missing);
  EXPECT_EQ(book.names(), (std::vector<std::string>{"ana", "open", "operator"}));

  // A key replaced on disk is read again; a removed one is gone.
  write_key(dir, "operators/ana.key", key_of(9));
  fs::last_write_time(dir.file("operators/ana.key"), fs::file_time_type::clock::now() + std::chrono::seconds(5));
  EXPECT_EQ(book.key("ana", 1, why)->bytes, key_of(9).bytes);
  fs::remove(dir.file("operators/ana.key"));
  EXPECT_EQ(book.key("ana", 2, why), nullptr);
}

TEST(OperatorBook, NeitherAnUnknownNorTheLastActiveOperatorIsRevoked) {
  test::ScratchDir dir("ops");
  const Key shared = key_of(1);
  write_key(dir, "operators/ana.key", key_of(2));
  write_key(dir, "operators/bob.key", key_of(3));
  OperatorBook book(dir.path().string(), shared);
  EXPECT_NE(book.may_revoke("carol").find("no operator 'carol'"), std::string::npos);
  EXPECT_EQ(book.may_revoke("ana"), "");
  book.set_revoked("ana", true, "bob", 100);
  EXPECT_TRUE(book.revoked("ana"));
  EXPECT_EQ(book.find("ana")->changed_by, "bob");
  EXPECT_NE(book.may_revoke("ana").find("already revoked"), std::string::npos);
  EXPECT_NE(book.may_restore("bob").find("not revoked"), std::string::npos);
  EXPECT_EQ(book.may_revoke("operator"), "");
  book.set_revoked("operator", true, "bob", 200);
  EXPECT_NE(book.may_revoke("bob").find("bob is the last active operator"), std::string::npos) << book.may_revoke("bob");
  EXPECT_EQ(book.may_restore("ana"), "");
  // One on record whose key file was removed counts as no active operator.
  fs::remove(dir.file("operators/ana.key"));
  book.set_revoked("ana", false, "bob", 300);
  EXPECT_NE(book.may_revoke("bob").find("last active"), std::string::npos);
  EXPECT_EQ(book.may_revoke("ana"), "") << "on record, without a key: may be revoked";
  EXPECT_EQ(book.names(), (std::vector<std::string>{"ana", "bob", "operator"}));
}

TEST(OperatorBook, AClientIsAnsweredWithTheKeyOfTheOperatorItFirstSpokeFor) {
  test::ScratchDir dir("ops");
  const Key shared = key_of(1);
  write_key(dir, "operators/ana.key", key_of(2));
  OperatorBook book(dir.path().string(), shared);
  EXPECT_TRUE(book.bind_client("ctl-1", "ana"));
  EXPECT_TRUE(book.bind_client("ctl-1", "ana"));
  EXPECT_FALSE(book.bind_client("ctl-1", "bob"));
  EXPECT_TRUE(book.bind_client("ctl-2", "operator"));
  EXPECT_EQ(book.response_key(ctl_resp_topic("m", "ctl-1"), 0).bytes, key_of(2).bytes);
  EXPECT_EQ(book.response_key(ctl_resp_topic("m", "ctl-2"), 0).bytes, shared.bytes);
  EXPECT_EQ(book.response_key(ctl_resp_topic("m", "ctl-3"), 0).bytes, shared.bytes);
  EXPECT_EQ(operator_of(ctl_req_topic("m", "ana")), "ana");
  EXPECT_EQ(operator_of(ctl_req_topic("m")), "operator");
}

TEST(AuditLine, ChangesAreLoggedAndReadsAreNot) {
  kairos_v1_ControlRequest req = kairos_v1_ControlRequest_init_zero;
  req.which_verb = kairos_v1_ControlRequest_status_tag;
  EXPECT_EQ(audit_line(req).verb, "");
  req.which_verb = kairos_v1_ControlRequest_delegate_tag;
  set_string(req.verb.delegate.handler, "echo");
  set_string(req.verb.delegate.to, "cluster:c1");
  req.verb.delegate.payload.size = 5;
  auto line = audit_line(req);
  EXPECT_EQ(line.verb, "delegate");
  EXPECT_EQ(line.detail, "echo to cluster:c1, redundancy 1, payload 5 bytes");
  req = kairos_v1_ControlRequest_init_zero;
  req.which_verb = kairos_v1_ControlRequest_freeze_tag;
  req.verb.freeze.thaw = true;
  EXPECT_EQ(audit_line(req).verb, "thaw");
  EXPECT_EQ(audit_line(req).detail, "all");
  req = kairos_v1_ControlRequest_init_zero;
  req.which_verb = kairos_v1_ControlRequest_ball_tag;
  req.verb.ball.verb = kairos_v1_BallVerb_BALL_SHOW;
  EXPECT_EQ(audit_line(req).verb, "");
  req.verb.ball.verb = kairos_v1_BallVerb_BALL_ACK;
  set_string(req.verb.ball.session, "design");
  set_string(req.verb.ball.as, "bob");
  req.verb.ball.seq = 3;
  EXPECT_EQ(audit_line(req).detail, "ack design #3 as bob");
  req = kairos_v1_ControlRequest_init_zero;
  req.which_verb = kairos_v1_ControlRequest_operators_tag;
  EXPECT_EQ(audit_line(req).verb, "") << "the list";
  req.verb.operators.action = kairos_v1_OperatorsAction_OPERATORS_REVOKE;
  set_string(req.verb.operators.name, "ana");
  EXPECT_EQ(audit_line(req).verb, "revoke");
  EXPECT_EQ(audit_line(req).detail, "ana");
  // A long note is cut whole characters short of 128 bytes.
  req = kairos_v1_ControlRequest_init_zero;
  req.which_verb = kairos_v1_ControlRequest_resolve_tag;
  req.verb.resolve.task = 7;
  std::string note;
  while (note.size() < 126) note += "\xc3\xa9";  // é
  set_string(req.verb.resolve.note, note);
  line = audit_line(req);
  EXPECT_LE(line.detail.size(), 128u);
  EXPECT_TRUE(valid_utf8(line.detail));
  EXPECT_EQ(line.detail.rfind("task 7: \xc3\xa9", 0), 0u);
}

TEST(StoreOperators, AnOlderDatabaseGetsItsColumnsAndTheStateIsKept) {
  test::ScratchDir dir("ops");
  const std::string path = dir.file("gateway.db");
  {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db,
                           "CREATE TABLE snapshots (id INTEGER PRIMARY KEY, kind TEXT NOT NULL, scope TEXT NOT NULL, "
                           "at_wall_us INTEGER NOT NULL, body TEXT NOT NULL);"
                           "INSERT INTO snapshots (kind, scope, at_wall_us, body) VALUES ('freeze', 'all', 1, '{}');",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
    sqlite3_close(db);
  }
  {
    Store store(path);
    store.begin();
    EXPECT_EQ(store.append_snapshot("freeze", "all", "{}", 2, "ana"), 2u);
    save_operator(store, {"ana", true, "bob", 10, 4, 9});
    append_operator_action(store, {0, "ana", "delegate", "echo", 5});
    append_operator_action(store, {0, "bob", "revoke", "ana", 10});
    store.commit();
  }
  Store store(path);  // opened again: nothing added twice
  auto ops = load_operators(store);
  ASSERT_EQ(ops.size(), 1u);
  EXPECT_TRUE(ops[0].revoked);
  EXPECT_EQ(ops[0].changed_by, "bob");
  EXPECT_EQ(ops[0].requests, 4u);
  auto all = operator_actions(store, "", 0, 20);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].verb, "revoke") << "newest first";
  auto ana = operator_actions(store, "ana", 0, 20);
  ASSERT_EQ(ana.size(), 1u);
  EXPECT_EQ(ana[0].detail, "echo");
  EXPECT_TRUE(operator_actions(store, "", all[1].id, 20).empty());
}

// Node keys as they rotate at the gateway (docs/PROTOCOL.md, Key rotation):
// which key a frame may be signed with before, during and after a rotation,
// and what the files say after a restart.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>

#include "common/io/files.h"
#include "common/io/rotated_key.h"
#include "gateway/rpc/operators.h"
#include "gateway/link/rotation.h"
#include "tests/unit/scratch.h"
#include "tests/unit/keys.h"

using namespace kairos;
using namespace kairos::gw;

using kairos::test::key_of;

namespace {

constexpr std::uint64_t kWill = 1ULL << 40;
const std::string kHb = "kairos/v1/m/c1/n1/hb";
const std::string kState = "kairos/v1/m/c1/n1/state";


Bytes heartbeat(const Key& key, std::uint64_t session, std::uint64_t seq) {
  auto env = make_envelope("n1", session, seq, 1'000);
  env->which_message = kairos_v1_Envelope_heartbeat_tag;
  env->message.heartbeat.status = kairos_v1_NodeStatus_COMPLIANT;
  return seal(kHb, *env, key);
}

Bytes offline(const Key& key, std::uint64_t session, std::uint64_t seq) {
  auto env = make_envelope("n1", session, seq, 1'000);
  env->which_message = kairos_v1_Envelope_state_tag;
  env->message.state.online = false;
  env->message.state.session_id = session;
  return seal(kState, *env, key);
}

struct Book {
  test::ScratchDir dir{"rotation"};
  Key provisioned = key_of(0x11);
  std::unique_ptr<KeyRing> ring;
  std::unique_ptr<KeyBook> book;

  Book() {
    provision(provisioned);
    restart();
  }
  void provision(const Key& k) {
    provisioned = k;
    std::filesystem::create_directories(dir.file("keys/nodes"));
    write_file_atomic(dir.file("keys/nodes/n1.key"), to_hex(k.bytes) + "\n", 0600);
  }
  // A gateway started anew over the same files.
  void restart() {
    ring = std::make_unique<KeyRing>(dir.file("keys"));
    book = std::make_unique<KeyBook>(*ring, dir.file("rotated"));
  }
  std::string file(const char* suffix) const { return dir.file(std::string("rotated/nodes/n1.key") + suffix); }
  KeyBook::Opened open_hb(const Key& key, std::uint64_t session, std::uint64_t seq) {
    return book->open("n1", TopicKind::hb, kHb, heartbeat(key, session, seq), 0);
  }
  KeyBook::Opened open_will(const Key& key, std::uint64_t session, std::uint64_t seq) {
    return book->open("n1", TopicKind::state, kState, offline(key, session, seq), 0);
  }
  Key pending() const { return book->find("n1", 0)->pending->key; }
};

}  // namespace

TEST(NodeKeys, OnlyFramesFromBeforeTheSwitchPassUnderTheRetiredKey) {
  NodeKeys k;
  k.current.generation = 0;
  k.pending = RotatedKey{1, {}, key_of(2), 0, 0};
  EXPECT_FALSE(k.before_switch(5, 1, false)) << "nothing is retired yet";
  k.promote(5, 100);
  EXPECT_EQ(k.current.generation, 1u);
  ASSERT_TRUE(k.retired);
  EXPECT_EQ(k.retired->generation, 0u);
  EXPECT_FALSE(k.pending);
  struct Case {
    std::uint64_t session, seq;
    bool will, before;
  };
  const Case cases[] = {
      {5, 99, false, true},            // in flight at the switch
      {5, 100, false, false},          // the switch's own seq is the new key's
      {5, 250, false, false},          // later
      {4, 10, false, false},           // another session
      {6, 10, false, false},
      {5, kWill + 40, true, true},     // the Will sealed at the connect before the switch
      {5, kWill + 100, true, false},   // a Will sealed after it
      {5, 40, true, false},            // an offline state with a live seq: not a Will from before
      {6, kWill + 40, true, false},
  };
  for (const auto& c : cases)
    EXPECT_EQ(k.before_switch(c.session, c.seq, c.will), c.before) << c.session << " " << c.seq << " " << c.will;
}

TEST(KeyBook, ARotationFromBeginToConfirmationAndAfter) {
  Book b;
  ASSERT_NE(b.book->find("n1", 0), nullptr);
  EXPECT_EQ(b.book->find("n1", 0)->current.generation, 0u);
  EXPECT_EQ(b.book->find("nobody", 0), nullptr);
  EXPECT_TRUE(b.open_hb(b.provisioned, 5, 1).frame);

  // The new key is on disk (0600) before anything is sent, wrapped under the current one.
  auto begun = b.book->begin("n1", 0);
  ASSERT_TRUE(begun.error.empty()) << begun.error;
  EXPECT_EQ(begun.generation, 1u);
  EXPECT_FALSE(begun.resent);
  struct stat st {};
  ASSERT_EQ(::stat(b.file(".next").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const Key next = b.pending();
  auto unwrapped = unwrap_key(rekey_kek(b.provisioned, "n1", 1), begun.wrapped);
  ASSERT_TRUE(unwrapped);
  EXPECT_EQ(unwrapped->bytes, next.bytes);
  EXPECT_EQ(b.book->signing_key("n1", 0)->bytes, b.provisioned.bytes) << "commands go under the old key until confirmed";
  // Run again before a confirmation: the same key goes again.
  auto again = b.book->begin("n1", 0);
  EXPECT_TRUE(again.resent);
  EXPECT_EQ(again.wrapped, begun.wrapped);

  // Both keys pass while it is pending; the first frame under the new one completes it.
  auto o = b.open_hb(b.provisioned, 5, 10);
  ASSERT_TRUE(o.frame);
  EXPECT_EQ(o.use, KeyUse::current);
  o = b.open_hb(next, 5, 12);
  ASSERT_TRUE(o.frame);
  EXPECT_EQ(o.use, KeyUse::pending);
  EXPECT_TRUE(o.promoted);
  EXPECT_EQ(o.generation, 1u);
  EXPECT_EQ(b.book->signing_key("n1", 0)->bytes, next.bytes);
  EXPECT_FALSE(load_rotated_key(b.file(".next")));
  EXPECT_EQ(load_rotated_key(b.file(""))->generation, 1u);
  auto old = load_rotated_key(b.file(".old"));
  ASSERT_TRUE(old);
  EXPECT_EQ(old->key.bytes, b.provisioned.bytes);
  EXPECT_EQ(old->until_session, 5u);
  EXPECT_EQ(old->until_seq, 12u);

  // After: frames from before the switch pass, later ones under the old key are refused.
  for (int restarted = 0; restarted < 2; ++restarted) {
    SCOPED_TRACE(restarted ? "after a restart" : "before a restart");
    o = b.open_hb(next, 5, 13);
    EXPECT_TRUE(o.frame);
    EXPECT_EQ(o.use, KeyUse::current);
    EXPECT_FALSE(o.promoted);
    o = b.open_hb(b.provisioned, 5, 11);
    EXPECT_TRUE(o.frame);
    EXPECT_EQ(o.use, KeyUse::retired);
    o = b.open_hb(b.provisioned, 5, 14);
    EXPECT_FALSE(o.frame);
    EXPECT_TRUE(o.retired_refused);
    EXPECT_EQ(*o.frame.drop, DropReason::bad_mac);
    EXPECT_NE(o.frame.detail.find("retired key (generation 0)"), std::string::npos) << o.frame.detail;
    EXPECT_TRUE(b.open_will(b.provisioned, 5, kWill + 3).frame) << "the Will armed before the switch";
    EXPECT_TRUE(b.open_will(b.provisioned, 6, kWill + 3).retired_refused);
    // A key never held: an ordinary bad MAC.
    o = b.open_hb(key_of(0x77), 5, 20);
    EXPECT_FALSE(o.frame);
    EXPECT_FALSE(o.retired_refused);
    EXPECT_EQ(*o.frame.drop, DropReason::bad_mac);
    b.restart();
  }
  EXPECT_EQ(b.book->find("n1", 0)->current.generation, 1u);
  EXPECT_EQ(b.book->signing_key("n1", 0)->bytes, next.bytes);
}

// The gateway stops while a rotation waits: the pending key is read back,
// and the node's first frame signed with it completes the rotation.
TEST(KeyBook, APendingRotationSurvivesARestart) {
  Book b;
  auto begun = b.book->begin("n1", 0);
  ASSERT_TRUE(begun.error.empty());
  const Key next = b.pending();
  b.restart();
  ASSERT_TRUE(b.book->find("n1", 0)->pending);
  EXPECT_EQ(b.pending().bytes, next.bytes);
  EXPECT_TRUE(b.book->begin("n1", 0).resent);
  auto o = b.open_hb(next, 9, 3);
  EXPECT_TRUE(o.promoted);
  b.restart();
  EXPECT_EQ(b.book->find("n1", 0)->current.generation, 1u);
  EXPECT_FALSE(b.book->find("n1", 0)->pending);
}

TEST(KeyBook, LeftoversAndAKeyProvisionedAnewAreNotUsed) {
  Book b;
  b.book->begin("n1", 0);
  const Key next = b.pending();
  ASSERT_TRUE(b.open_hb(next, 5, 2).promoted);
  // A pending file of a generation already current (a crash after the promotion's writes) is removed.
  save_rotated_key(b.file(".next"), RotatedKey{1, fingerprint(b.provisioned), next, 0, 0});
  b.restart();
  EXPECT_FALSE(b.book->find("n1", 0)->pending);
  EXPECT_FALSE(load_rotated_key(b.file(".next")));

  // kairosctl provision --new-key: the rotations were of the old key.
  b.provision(key_of(0x22));
  b.restart();
  auto* k = b.book->find("n1", 0);
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->current.generation, 0u);
  EXPECT_EQ(k->current.key.bytes, key_of(0x22).bytes);
  EXPECT_FALSE(k->retired);
  EXPECT_TRUE(b.open_hb(key_of(0x22), 7, 1).frame);
  EXPECT_FALSE(b.open_hb(next, 7, 2).frame);
}

// Who rotated which node's key is in the operators' audit log.
TEST(KeyBook, ARotationIsAChangeTheAuditLogKeeps) {
  kairos_v1_ControlRequest req = kairos_v1_ControlRequest_init_zero;
  req.which_verb = kairos_v1_ControlRequest_rotate_key_tag;
  set_string(req.verb.rotate_key.node, "barn-1");
  auto line = audit_line(req);
  EXPECT_EQ(line.verb, "rotate-key");
  EXPECT_EQ(line.detail, "barn-1");
}

TEST(KeyBook, ARotatedKeyFileOthersMayReadMakesTheNodeUnknown) {
  Book b;
  b.book->begin("n1", 0);
  ASSERT_TRUE(b.open_hb(b.pending(), 5, 2).promoted);
  ::chmod(b.file("").c_str(), 0644);
  b.restart();
  EXPECT_EQ(b.book->find("n1", 0), nullptr);
  EXPECT_FALSE(b.open_hb(b.provisioned, 5, 3).known);
  ::chmod(b.file("").c_str(), 0600);
  EXPECT_EQ(b.book->find("n1", 0), nullptr) << "looked at again only after a while";
  EXPECT_NE(b.book->find("n1", 10'000'000), nullptr);
}

// A node's side of key rotation (docs/PROTOCOL.md, Key rotation): what a
// rekey command gives, the commands the old key still verifies, and the key
// a node starts with.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "common/io/files.h"
#include "common/io/rotated_key.h"
#include "firmware/intake.h"
#include "firmware/rekey.h"
#include "tests/unit/scratch.h"
#include "tests/unit/keys.h"

using namespace kairos;
using namespace kairos::node;

using kairos::test::key_of;

namespace {


const std::string kTopic = "kairos/v1/m/c1/n1/cmd";
constexpr std::uint64_t kSession = 42;

kairos_v1_Rekey rekey(std::uint32_t generation, const Key& under, const Key& next, const std::string& node = "n1") {
  kairos_v1_Rekey r = kairos_v1_Rekey_init_zero;
  r.generation = generation;
  auto w = wrap_key(rekey_kek(under, node, generation), next);
  r.wrapped_key.size = static_cast<pb_size_t>(w.size());
  std::copy(w.begin(), w.end(), r.wrapped_key.bytes);
  return r;
}

RotatedKey current(std::uint32_t generation, const Key& k) { return RotatedKey{generation, fingerprint(key_of(1)), k, 0, 0}; }

struct Gateway {
  Signer signer{"gw", 7};
  std::uint64_t next_id = 1;
  Bytes command(const Key& key) {
    auto env = make_envelope("", 0, 0, 0);
    env->which_message = kairos_v1_Envelope_command_tag;
    env->message.command.command_id = next_id++;
    env->message.command.to_session = kSession;
    env->message.command.which_action = kairos_v1_Command_thaw_tag;
    env->message.command.action.thaw = true;
    return signer.seal(kTopic, *env, key, 1'000);
  }
};

using Kind = CommandIntake::Result::Kind;

}  // namespace

TEST(Rekey, TheNextGenerationUnwrapsUnderTheCurrentKey) {
  const Key k0 = key_of(1), k1 = key_of(2);
  auto out = open_rekey(rekey(1, k0, k1), "n1", current(0, k0), std::nullopt);
  ASSERT_TRUE(out.next) << out.refusal;
  EXPECT_EQ(out.next->generation, 1u);
  EXPECT_EQ(out.next->key.bytes, k1.bytes);
  EXPECT_EQ(out.next->base, fingerprint(k0)) << "the provisioned key it descends from";
  EXPECT_FALSE(out.already);
}

TEST(Rekey, RefusesWhatIsNotTheNextKeyOfThisNode) {
  const Key k0 = key_of(1), k1 = key_of(2);
  struct Case {
    const char* name;
    kairos_v1_Rekey r;
    const char* why;
  };
  auto altered = rekey(1, k0, k1);
  altered.wrapped_key.bytes[17] ^= 0x40;
  auto shorter = rekey(1, k0, k1);
  shorter.wrapped_key.size = 39;
  const Case cases[] = {
      {"a generation skipped", rekey(2, k0, k1), "generation 2 asked, but this node holds key generation 0"},
      {"an older generation", rekey(0, k0, k1), "generation 0 asked"},
      {"wrapped under another key", rekey(1, key_of(9), k1), "does not unwrap"},
      {"for another node", rekey(1, k0, k1, "n2"), "does not unwrap"},
      {"altered", altered, "does not unwrap"},
      {"39 bytes", shorter, "40 bytes, not 39"},
  };
  for (const auto& c : cases) {
    auto out = open_rekey(c.r, "n1", current(0, k0), std::nullopt);
    EXPECT_FALSE(out.next) << c.name;
    EXPECT_FALSE(out.already) << c.name;
    EXPECT_NE(out.refusal.find(c.why), std::string::npos) << c.name << ": " << out.refusal;
  }
}

// The gateway did not hear the confirmation and sends the same rekey again.
TEST(Rekey, ACopyOfTheRekeyTakenIsAcknowledgedAgain) {
  const Key k0 = key_of(1), k1 = key_of(2);
  auto out = open_rekey(rekey(1, k0, k1), "n1", current(1, k1), k0);
  EXPECT_TRUE(out.already) << out.refusal;
  EXPECT_FALSE(out.next);
  out = open_rekey(rekey(1, k0, key_of(3)), "n1", current(1, k1), k0);
  EXPECT_FALSE(out.already);
  EXPECT_NE(out.refusal.find("taken already, with another key"), std::string::npos) << out.refusal;
}

TEST(Rekey, TheOldKeyVerifiesCommandsUntilTheFirstUnderTheNewOne) {
  const Key k0 = key_of(1), k1 = key_of(2);
  Gateway gw;
  CommandIntake in("n1", k0, kSession);
  ASSERT_EQ(in.receive(kTopic, gw.command(k0), 1'000, false).kind, Kind::run);
  in.rekey(k1, 2'000);
  ASSERT_TRUE(in.retired());
  // Sent before the gateway heard of the switch.
  auto r = in.receive(kTopic, gw.command(k0), 3'000, false);
  EXPECT_EQ(r.kind, Kind::run) << r.detail;
  r = in.receive(kTopic, gw.command(k1), 4'000, false);
  EXPECT_EQ(r.kind, Kind::run) << r.detail;
  // From then on the old key is refused, and it is no breach.
  r = in.receive(kTopic, gw.command(k0), 5'000, false);
  EXPECT_EQ(r.kind, Kind::dropped);
  EXPECT_EQ(r.drop, DropReason::bad_mac);
  EXPECT_FALSE(r.breach);
  EXPECT_NE(r.detail.find("rotated away from"), std::string::npos) << r.detail;
  // A key never held is still a breach.
  r = in.receive(kTopic, gw.command(key_of(7)), 6'000, false);
  EXPECT_EQ(r.drop, DropReason::bad_mac);
  EXPECT_TRUE(r.breach);
  EXPECT_EQ(in.receive(kTopic, gw.command(k1), 7'000, false).kind, Kind::run);
}

TEST(Rekey, TheOldKeyIsTakenForAMinuteAtMost) {
  const Key k0 = key_of(1), k1 = key_of(2);
  Gateway gw;
  CommandIntake in("n1", k0, kSession);
  in.rekey(k1, 1'000'000);
  EXPECT_EQ(in.receive(kTopic, gw.command(k0), 1'000'000 + CommandIntake::kRetiredGraceUs, false).kind, Kind::run);
  auto r = in.receive(kTopic, gw.command(k0), 1'000'001 + CommandIntake::kRetiredGraceUs, false);
  EXPECT_EQ(r.kind, Kind::dropped);
  EXPECT_FALSE(r.breach);
}

TEST(NodeKeyFile, ANodeStartsWithItsNewestKeyOfTheProvisionedOne) {
  test::ScratchDir dir("rekey");
  const Key k0 = key_of(1), k1 = key_of(2);
  NodeConfig c;
  c.id = "n1";
  c.key_file = dir.file("etc/node.key");
  c.state_file = dir.file("state/n1.session");
  std::filesystem::create_directories(dir.file("etc"));
  write_file_atomic(c.key_file, to_hex(k0.bytes) + "\n", 0640);
  ::chmod(c.key_file.c_str(), 0640);

  EXPECT_EQ(rotated_key_file(c), dir.file("state/n1.key")) << "beside the state file";
  auto k = load_node_key(c);
  EXPECT_EQ(k.current.generation, 0u);
  EXPECT_EQ(k.current.key.bytes, k0.bytes);
  EXPECT_TRUE(k.note.empty()) << k.note;

  save_rotated_key(dir.file("state/n1.key"), RotatedKey{3, fingerprint(k0), k1, 0, 0});
  k = load_node_key(c);
  EXPECT_EQ(k.current.generation, 3u);
  EXPECT_EQ(k.current.key.bytes, k1.bytes);
  EXPECT_NE(k.note.find("key generation 3 from"), std::string::npos) << k.note;

  // node.key provisioned anew: the rotation was of the old key.
  write_file_atomic(c.key_file, to_hex(key_of(5).bytes) + "\n", 0600);
  k = load_node_key(c);
  EXPECT_EQ(k.current.generation, 0u);
  EXPECT_EQ(k.current.key.bytes, key_of(5).bytes);
  EXPECT_NE(k.note.find("another provisioned key"), std::string::npos) << k.note;

  // A rotated key others may read is refused, as every key file is.
  ::chmod(dir.file("state/n1.key").c_str(), 0644);
  EXPECT_THROW(load_node_key(c), std::runtime_error);

  // node.rotated_key_file names it; never the provisioned file itself.
  c.rotated_key_file = dir.file("elsewhere.key");
  EXPECT_EQ(rotated_key_file(c), dir.file("elsewhere.key"));
  c.rotated_key_file = c.key_file;
  k = load_node_key(c);
  EXPECT_TRUE(k.rotated_file.empty());
  EXPECT_NE(k.note.find("rotation off"), std::string::npos) << k.note;
  c.rotated_key_file.clear();
  c.state_file.clear();
  ::unsetenv("STATE_DIRECTORY");
  EXPECT_EQ(rotated_key_file(c), "") << "a node that keeps no state keeps no rotated key";
  ::setenv("STATE_DIRECTORY", dir.file("var").c_str(), 1);
  EXPECT_EQ(rotated_key_file(c), dir.file("var/n1.key"));
  ::unsetenv("STATE_DIRECTORY");
}

// Key rotation's cryptography (docs/PROTOCOL.md, Key rotation): RFC 3394's
// known answers, the KEK derivation against Python's `cryptography`, and the
// rotated key files with the choice of the key to start with.
#include <gtest/gtest.h>

#include "common/core/keywrap.h"

namespace kairos {
namespace {

Bytes hex(std::string_view h) { return *from_hex(h); }

Key key_of(std::string_view h) {
  Key k;
  auto b = hex(h);
  std::copy(b.begin(), b.end(), k.bytes.begin());
  return k;
}

Key counting(std::uint8_t from) {
  Key k;
  for (std::size_t i = 0; i < k.bytes.size(); ++i) k.bytes[i] = static_cast<std::uint8_t>(from + i);
  return k;
}

const Key kKek = key_of("000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F");

// RFC 3394 section 4: the vectors with a 256-bit KEK.
struct Vector {
  const char* name;
  const char* data;
  const char* wrapped;
};
const Vector kRfc3394[] = {
    {"4.3 128 bits", "00112233445566778899AABBCCDDEEFF", "64E8C3F9CE0F5BA263E9777905818A2A93C8191E7D6E8AE7"},
    {"4.5 192 bits", "00112233445566778899AABBCCDDEEFF0001020304050607",
     "A8F9BC1612C68B3FF6E6F4FBE30E71E4769C8B80A32CB8958CD5D17D6B254DA1"},
    {"4.6 256 bits", "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F",
     "28C9F404C4B810F4CBCCB35CFB87F8263F5786E2D80ED326CBC7F0E71A99F43BFB988B9B7A02DD21"},
};

TEST(KeyWrap, Rfc3394KnownAnswers) {
  for (const auto& v : kRfc3394) {
    SCOPED_TRACE(v.name);
    EXPECT_EQ(aes_key_wrap(kKek, hex(v.data)), hex(v.wrapped));
    auto back = aes_key_unwrap(kKek, hex(v.wrapped));
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, hex(v.data));
  }
}

TEST(KeyWrap, EveryAlteredByteAndOtherKekAreRefused) {
  const Key k = key_of("00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F");
  auto w = wrap_key(kKek, k);
  ASSERT_EQ(Bytes(w.begin(), w.end()), hex(kRfc3394[2].wrapped));
  for (std::size_t i = 0; i < w.size(); ++i) {
    auto bad = w;
    bad[i] ^= 0x01;
    EXPECT_FALSE(unwrap_key(kKek, bad)) << "byte " << i;
  }
  Key other = kKek;
  other.bytes[31] ^= 0x80;
  EXPECT_FALSE(unwrap_key(other, w));
  // Lengths that wrap never makes, or not a 32-byte key.
  EXPECT_FALSE(unwrap_key(kKek, ByteView(w.data(), 39)));
  EXPECT_FALSE(aes_key_unwrap(kKek, ByteView(w.data(), 16)));
  EXPECT_FALSE(aes_key_unwrap(kKek, ByteView(w.data(), 36)));
  EXPECT_FALSE(unwrap_key(kKek, hex(kRfc3394[0].wrapped)));
  EXPECT_THROW(aes_key_wrap(kKek, hex("0011223344556677")), std::invalid_argument);
  auto ok = unwrap_key(kKek, w);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->bytes, k.bytes);
}

// Computed with Python's cryptography package (HKDF, aes_key_wrap) and hmac.
TEST(KeyWrap, KekDerivationAndFingerprintMatchAnIndependentImplementation) {
  const Key current = counting(0x00);
  const Key kek = rekey_kek(current, "barn-1", 2);
  EXPECT_EQ(to_hex(kek.bytes), "5a0ba769d457418427e509624cd410495d8c1197ac7b077caf5f89bfe7f299de");
  auto w = wrap_key(kek, counting(0x20));
  EXPECT_EQ(to_hex(w), "c3de7463fcfd9f5a5b128652bf26c5b023ba3b1e34ceaea1a8c2f399be0d8979b8fea3cb862455c5");
  EXPECT_EQ(to_hex(fingerprint(current)), "cca48c420fb87cc9");
  // Bound to the node and the generation.
  EXPECT_NE(rekey_kek(current, "barn-2", 2).bytes, kek.bytes);
  EXPECT_NE(rekey_kek(current, "barn-1", 3).bytes, kek.bytes);
  EXPECT_FALSE(unwrap_key(rekey_kek(current, "barn-1", 3), w));
}

TEST(RotatedKeyFile, RoundTripsAndRefusesWhatItDoesNotWrite) {
  RotatedKey k;
  k.generation = 7;
  k.base = fingerprint(counting(1));
  k.key = counting(9);
  std::string why;
  auto back = parse_rotated_key(format_rotated_key(k), why);
  ASSERT_TRUE(back) << why;
  EXPECT_EQ(back->generation, 7u);
  EXPECT_EQ(back->base, k.base);
  EXPECT_EQ(back->key.bytes, k.key.bytes);
  EXPECT_EQ(back->until_session, 0u);

  k.until_session = 1'700'000'000'000'000;
  k.until_seq = 42;
  back = parse_rotated_key(format_rotated_key(k), why);
  ASSERT_TRUE(back) << why;
  EXPECT_EQ(back->until_session, k.until_session);
  EXPECT_EQ(back->until_seq, 42u);

  const std::string good = format_rotated_key(k);
  struct Case {
    std::string text;
    const char* why;
  };
  const Case bad[] = {
      {"", "incomplete"},
      {to_hex(k.key.bytes) + "\n", "not a rotated key file"},
      {"kairos-key 2\n", "not a rotated key file"},
      {"kairos-key 1\ngeneration 1\nbase " + to_hex(k.base) + "\n", "incomplete"},
      {"kairos-key 1\ngeneration -1\n", "generation"},
      {"kairos-key 1\ngeneration 4294967296\n", "generation"},
      {"kairos-key 1\nbase 0011\n", "base"},
      {"kairos-key 1\nkey " + to_hex(k.key.bytes).substr(2) + "\n", "key"},
      {"kairos-key 1\nuntil 5\n", "until"},
      {good + "generation 8\n", "unexpected"},
      {good + "extra 1\n", "unexpected"},
  };
  for (const auto& c : bad) {
    SCOPED_TRACE(c.text);
    why.clear();
    EXPECT_FALSE(parse_rotated_key(c.text, why));
    EXPECT_NE(why.find(c.why), std::string::npos) << why;
  }
}

// The key a node or the gateway starts with.
TEST(RotatedKeyFile, ChooseKeyTakesOnlyARotationOfTheProvisionedKey) {
  const Key provisioned = counting(0x40);
  std::string note;
  auto own = choose_key(provisioned, std::nullopt, note);
  EXPECT_EQ(own.generation, 0u);
  EXPECT_EQ(own.key.bytes, provisioned.bytes);
  EXPECT_EQ(own.base, fingerprint(provisioned));
  EXPECT_TRUE(note.empty());

  RotatedKey r;
  r.generation = 3;
  r.base = fingerprint(provisioned);
  r.key = counting(0x60);
  auto chosen = choose_key(provisioned, r, note);
  EXPECT_EQ(chosen.generation, 3u);
  EXPECT_EQ(chosen.key.bytes, r.key.bytes);
  EXPECT_TRUE(note.empty());

  // Provisioned anew (kairosctl provision --new-key) since: the rotation is of another key.
  auto reprovisioned = choose_key(counting(0x41), r, note);
  EXPECT_EQ(reprovisioned.generation, 0u);
  EXPECT_EQ(reprovisioned.key.bytes, counting(0x41).bytes);
  EXPECT_NE(note.find("another provisioned key"), std::string::npos) << note;

  r.generation = 0;
  auto zero = choose_key(provisioned, r, note);
  EXPECT_EQ(zero.key.bytes, provisioned.bytes);
  EXPECT_NE(note.find("generation 0"), std::string::npos) << note;
}

}  // namespace
}  // namespace kairos

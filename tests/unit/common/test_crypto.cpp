#include <gtest/gtest.h>

#include "common/core/crypto.h"

using namespace kairos;

namespace {
Key key_from(std::initializer_list<std::uint8_t> prefix) {
  Key k;  // zero padding to 32 bytes gives the same HMAC as the short key (RFC 2104)
  std::copy(prefix.begin(), prefix.end(), k.bytes.begin());
  return k;
}
}  // namespace

TEST(Crypto, Sha256KnownAnswer) {
  EXPECT_EQ(to_hex(sha256(as_bytes("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Crypto, HmacRfc4231Case1) {
  Key k = key_from({0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b,
                    0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b, 0x0b});
  EXPECT_EQ(to_hex(hmac_sha256(k, {as_bytes("Hi There")})),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

TEST(Crypto, HmacRfc4231Case2) {
  Key k = key_from({'J', 'e', 'f', 'e'});
  EXPECT_EQ(to_hex(hmac_sha256(k, {as_bytes("what do ya want for nothing?")})),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(Crypto, HmacOverPartsEqualsConcatenation) {
  Key k;
  for (std::size_t i = 0; i < 32; ++i) k.bytes[i] = static_cast<std::uint8_t>(i);
  const std::uint8_t zero = 0;
  auto parts = hmac_sha256(k, {as_bytes("kairos/v1/demo/c1/n1/hb"), ByteView(&zero, 1), as_bytes("hello")});
  // Independent value (Python hmac module) for the same key and message.
  EXPECT_EQ(to_hex(parts), "f1f921aadfcfa208cf35f46a3f1ca98d550515c940c45e39712d0b07c6f28aa5");
}

TEST(Crypto, ParseKey) {
  std::string hex(64, 'a');
  auto k = parse_key("  " + hex + "\n");
  ASSERT_TRUE(k);
  EXPECT_EQ(k->bytes[0], 0xaa);
  EXPECT_FALSE(parse_key(hex.substr(0, 62)));
  EXPECT_FALSE(parse_key(hex.substr(0, 63) + "g"));
  EXPECT_FALSE(parse_key(""));
}

TEST(Crypto, ConstantTimeCompare) {
  std::uint8_t a[] = {1, 2, 3}, b[] = {1, 2, 3}, c[] = {1, 2, 4};
  EXPECT_TRUE(equal_constant_time(a, b));
  EXPECT_FALSE(equal_constant_time(a, c));
  EXPECT_FALSE(equal_constant_time(ByteView(a, 2), b));
}

TEST(Bytes, HexRoundTrip) {
  Bytes b{0x00, 0x7f, 0xff};
  EXPECT_EQ(to_hex(b), "007fff");
  EXPECT_EQ(*from_hex("007FFF"), b);
  EXPECT_FALSE(from_hex("0"));
  EXPECT_FALSE(from_hex("zz"));
}

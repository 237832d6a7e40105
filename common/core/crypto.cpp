#include "common/core/crypto.h"

#include <mbedtls/platform_util.h>
#include <mbedtls/sha256.h>

#include <cctype>
#include <cstring>
#include <memory>
#include <unordered_map>
#include <stdexcept>

namespace kairos {

std::optional<Key> parse_key(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  if (text.size() != 64) return std::nullopt;
  auto raw = from_hex(text);
  if (!raw) return std::nullopt;
  Key key;
  std::copy(raw->begin(), raw->end(), key.bytes.begin());
  return key;
}

Digest sha256(ByteView data) {
  Digest out{};
  if (mbedtls_sha256_ret(data.data(), data.size(), out.data(), 0) != 0)
    throw std::runtime_error("mbedtls_sha256_ret failed");
  return out;
}

namespace {

// HMAC-SHA256 (RFC 2104) with the key's inner and outer pad blocks hashed
// once: a frame then costs its own blocks and one outer block, not two more
// for the pads. Kept per thread, per key, up to kMaxPads keys (then
// started afresh): a gateway verifies frames of tens of thousands of nodes
// in any order.
struct Pads {
  mbedtls_sha256_context inner, outer;
  Pads() {
    mbedtls_sha256_init(&inner);
    mbedtls_sha256_init(&outer);
  }
  ~Pads() {
    mbedtls_sha256_free(&inner);
    mbedtls_sha256_free(&outer);
  }
  Pads(const Pads&) = delete;
  Pads& operator=(const Pads&) = delete;
};

struct KeyBytesHash {
  std::size_t operator()(const std::array<std::uint8_t, 32>& k) const {
    std::size_t h;  // a key is uniformly random: its first bytes are a hash
    std::memcpy(&h, k.data(), sizeof h);
    return h;
  }
};

constexpr std::size_t kMaxPads = 65'536;

void check(int rc) {
  if (rc != 0) throw std::runtime_error("mbedtls HMAC-SHA256 failed");
}

const Pads& pads_for(const Key& key) {
  thread_local std::unordered_map<std::array<std::uint8_t, 32>, std::unique_ptr<Pads>, KeyBytesHash> cache;
  if (auto it = cache.find(key.bytes); it != cache.end()) return *it->second;
  if (cache.size() >= kMaxPads) cache.clear();
  auto p = std::make_unique<Pads>();
  std::array<std::uint8_t, 64> ipad, opad;
  ipad.fill(0x36);
  opad.fill(0x5c);
  for (std::size_t i = 0; i < key.bytes.size(); ++i) {
    ipad[i] ^= key.bytes[i];
    opad[i] ^= key.bytes[i];
  }
  check(mbedtls_sha256_starts_ret(&p->inner, 0));
  check(mbedtls_sha256_update_ret(&p->inner, ipad.data(), ipad.size()));
  check(mbedtls_sha256_starts_ret(&p->outer, 0));
  check(mbedtls_sha256_update_ret(&p->outer, opad.data(), opad.size()));
  mbedtls_platform_zeroize(ipad.data(), ipad.size());
  mbedtls_platform_zeroize(opad.data(), opad.size());
  return *cache.emplace(key.bytes, std::move(p)).first->second;
}

}  // namespace

Digest hmac_sha256(const Key& key, std::initializer_list<ByteView> parts) {
  const Pads& pads = pads_for(key);
  mbedtls_sha256_context ctx;
  mbedtls_sha256_init(&ctx);
  Digest inner{}, out{};
  mbedtls_sha256_clone(&ctx, &pads.inner);
  int rc = 0;
  for (auto part : parts)
    if (rc == 0) rc = mbedtls_sha256_update_ret(&ctx, part.data(), part.size());
  if (rc == 0) rc = mbedtls_sha256_finish_ret(&ctx, inner.data());
  if (rc == 0) {
    mbedtls_sha256_clone(&ctx, &pads.outer);
    rc = mbedtls_sha256_update_ret(&ctx, inner.data(), inner.size());
  }
  if (rc == 0) rc = mbedtls_sha256_finish_ret(&ctx, out.data());
  mbedtls_sha256_free(&ctx);
  mbedtls_platform_zeroize(inner.data(), inner.size());
  check(rc);
  return out;
}

bool equal_constant_time(ByteView a, ByteView b) {
  if (a.size() != b.size()) return false;
  std::uint8_t diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff = static_cast<std::uint8_t>(diff | (a[i] ^ b[i]));
  return diff == 0;
}

}  // namespace kairos

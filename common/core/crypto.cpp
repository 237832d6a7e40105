#include "common/core/crypto.h"

#include <mbedtls/md.h>
#include <mbedtls/sha256.h>

#include <cctype>
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

Digest hmac_sha256(const Key& key, std::initializer_list<ByteView> parts) {
  const mbedtls_md_info_t* info = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
  mbedtls_md_context_t ctx;
  mbedtls_md_init(&ctx);
  Digest out{};
  int rc = mbedtls_md_setup(&ctx, info, 1);
  if (rc == 0) rc = mbedtls_md_hmac_starts(&ctx, key.bytes.data(), key.bytes.size());
  for (auto part : parts) {
    if (rc == 0) rc = mbedtls_md_hmac_update(&ctx, part.data(), part.size());
  }
  if (rc == 0) rc = mbedtls_md_hmac_finish(&ctx, out.data());
  mbedtls_md_free(&ctx);
  if (rc != 0) throw std::runtime_error("mbedtls HMAC-SHA256 failed");
  return out;
}

bool equal_constant_time(ByteView a, ByteView b) {
  if (a.size() != b.size()) return false;
  std::uint8_t diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff = static_cast<std::uint8_t>(diff | (a[i] ^ b[i]));
  return diff == 0;
}

}  // namespace kairos

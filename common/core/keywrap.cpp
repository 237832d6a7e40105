#include "common/core/keywrap.h"

#include <mbedtls/aes.h>
#include <mbedtls/hkdf.h>
#include <mbedtls/md.h>
#include <mbedtls/platform_util.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace kairos {

namespace {

// RFC 3394 2.2.3.1: the default initial value.
constexpr std::uint8_t kIv[8] = {0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6};
// RFC 3394 2.2.1: six passes over the data.
constexpr int kPasses = 6;

// A = A xor t, t as 64 bits big-endian (RFC 3394 2.2.1).
void xor_counter(std::uint8_t* a, std::uint64_t t) {
  for (int i = 7; i >= 0; --i, t >>= 8) a[i] = static_cast<std::uint8_t>(a[i] ^ (t & 0xff));
}

class Aes {
 public:
  Aes(const Key& kek, bool encrypt) {
    mbedtls_aes_init(&ctx_);
    int rc = encrypt ? mbedtls_aes_setkey_enc(&ctx_, kek.bytes.data(), 256)
                     : mbedtls_aes_setkey_dec(&ctx_, kek.bytes.data(), 256);
    if (rc != 0) throw std::runtime_error("mbedtls AES key setup failed");
    mode_ = encrypt ? MBEDTLS_AES_ENCRYPT : MBEDTLS_AES_DECRYPT;
  }
  ~Aes() { mbedtls_aes_free(&ctx_); }
  Aes(const Aes&) = delete;
  Aes& operator=(const Aes&) = delete;
  void block(std::uint8_t b[16]) {
    std::uint8_t out[16];
    if (mbedtls_aes_crypt_ecb(&ctx_, mode_, b, out) != 0) throw std::runtime_error("mbedtls AES failed");
    std::memcpy(b, out, 16);
    mbedtls_platform_zeroize(out, sizeof out);
  }

 private:
  mbedtls_aes_context ctx_;
  int mode_;
};

bool hex_field(std::string_view text, std::size_t size, std::uint8_t* out) {
  if (text.size() != 2 * size) return false;
  auto raw = from_hex(text);
  if (!raw) return false;
  std::copy(raw->begin(), raw->end(), out);
  return true;
}

bool whole(std::string_view text, std::uint64_t max, std::uint64_t& out) {
  if (text.empty() || text.size() > 20 || text.find_first_not_of("0123456789") != std::string_view::npos) return false;
  std::uint64_t v = 0;
  for (char c : text) {
    const std::uint64_t d = static_cast<std::uint64_t>(c - '0');
    if (v > (max - d) / 10) return false;
    v = v * 10 + d;
  }
  out = v;
  return true;
}

}  // namespace

Fingerprint fingerprint(const Key& key) {
  static constexpr std::string_view kLabel = "kairos key fingerprint v1";
  Digest d = hmac_sha256(key, {as_bytes(kLabel)});
  Fingerprint f;
  std::copy_n(d.begin(), f.size(), f.begin());
  return f;
}

Key rekey_kek(const Key& current, std::string_view node, std::uint32_t generation) {
  static constexpr std::string_view kLabel = "kairos rekey v1";
  Bytes info(kLabel.begin(), kLabel.end());
  info.push_back(0);
  info.insert(info.end(), node.begin(), node.end());
  info.push_back(0);
  for (int shift = 24; shift >= 0; shift -= 8) info.push_back(static_cast<std::uint8_t>(generation >> shift));
  Key kek;
  int rc = mbedtls_hkdf(mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), nullptr, 0, current.bytes.data(),
                        current.bytes.size(), info.data(), info.size(), kek.bytes.data(), kek.bytes.size());
  if (rc != 0) throw std::runtime_error("mbedtls HKDF-SHA256 failed");
  return kek;
}

Bytes aes_key_wrap(const Key& kek, ByteView data) {
  if (data.size() < 16 || data.size() % 8 != 0)
    throw std::invalid_argument("key wrap: data of " + std::to_string(data.size()) + " bytes");
  const std::size_t n = data.size() / 8;
  Bytes out(data.size() + 8);
  std::memcpy(out.data(), kIv, 8);
  std::memcpy(out.data() + 8, data.data(), data.size());
  Aes aes(kek, true);
  std::uint8_t b[16];
  for (int j = 0; j < kPasses; ++j)
    for (std::size_t i = 1; i <= n; ++i) {
      std::memcpy(b, out.data(), 8);            // A
      std::memcpy(b + 8, out.data() + 8 * i, 8);  // R[i]
      aes.block(b);
      xor_counter(b, static_cast<std::uint64_t>(n * static_cast<std::size_t>(j) + i));
      std::memcpy(out.data(), b, 8);
      std::memcpy(out.data() + 8 * i, b + 8, 8);
    }
  mbedtls_platform_zeroize(b, sizeof b);
  return out;
}

std::optional<Bytes> aes_key_unwrap(const Key& kek, ByteView wrapped) {
  if (wrapped.size() < 24 || wrapped.size() % 8 != 0) return std::nullopt;
  const std::size_t n = wrapped.size() / 8 - 1;
  Bytes r(wrapped.begin(), wrapped.end());  // A, then R[1..n]
  Aes aes(kek, false);
  std::uint8_t b[16];
  for (int j = kPasses - 1; j >= 0; --j)
    for (std::size_t i = n; i >= 1; --i) {
      std::memcpy(b, r.data(), 8);
      xor_counter(b, static_cast<std::uint64_t>(n * static_cast<std::size_t>(j) + i));
      std::memcpy(b + 8, r.data() + 8 * i, 8);
      aes.block(b);
      std::memcpy(r.data(), b, 8);
      std::memcpy(r.data() + 8 * i, b + 8, 8);
    }
  mbedtls_platform_zeroize(b, sizeof b);
  if (!equal_constant_time(ByteView(r.data(), 8), ByteView(kIv, 8))) {
    mbedtls_platform_zeroize(r.data(), r.size());
    return std::nullopt;
  }
  return Bytes(r.begin() + 8, r.end());
}

std::array<std::uint8_t, kWrappedKeySize> wrap_key(const Key& kek, const Key& key) {
  Bytes w = aes_key_wrap(kek, key.bytes);
  std::array<std::uint8_t, kWrappedKeySize> out;
  std::copy(w.begin(), w.end(), out.begin());
  return out;
}

std::optional<Key> unwrap_key(const Key& kek, ByteView wrapped) {
  if (wrapped.size() != kWrappedKeySize) return std::nullopt;
  auto raw = aes_key_unwrap(kek, wrapped);
  if (!raw) return std::nullopt;
  Key k;
  std::copy(raw->begin(), raw->end(), k.bytes.begin());
  mbedtls_platform_zeroize(raw->data(), raw->size());
  return k;
}

std::string format_rotated_key(const RotatedKey& k) {
  std::string s = "kairos-key 1\ngeneration " + std::to_string(k.generation) + "\nbase " + to_hex(k.base) + "\nkey " +
                  to_hex(k.key.bytes) + "\n";
  if (k.until_session != 0) s += "until " + std::to_string(k.until_session) + " " + std::to_string(k.until_seq) + "\n";
  return s;
}

std::optional<RotatedKey> parse_rotated_key(std::string_view text, std::string& why) {
  RotatedKey k;
  bool magic = false, generation = false, base = false, key = false, until = false;
  std::size_t line_no = 0;
  while (!text.empty()) {
    auto end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    ++line_no;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty()) continue;
    auto space = line.find(' ');
    std::string_view word = line.substr(0, space);
    std::string_view value = space == std::string_view::npos ? std::string_view() : line.substr(space + 1);
    auto bad = [&](const std::string& what) {
      why = "line " + std::to_string(line_no) + ": " + what;
      return std::nullopt;
    };
    if (!magic) {
      if (line != "kairos-key 1") return bad("not a rotated key file (it starts with \"kairos-key 1\")");
      magic = true;
      continue;
    }
    std::uint64_t v = 0;
    if (word == "generation" && !generation) {
      if (!whole(value, UINT32_MAX, v)) return bad("generation is not a number");
      k.generation = static_cast<std::uint32_t>(v);
      generation = true;
    } else if (word == "base" && !base) {
      if (!hex_field(value, k.base.size(), k.base.data())) return bad("base is not 16 hex digits");
      base = true;
    } else if (word == "key" && !key) {
      if (!hex_field(value, k.key.bytes.size(), k.key.bytes.data())) return bad("key is not 64 hex digits");
      key = true;
    } else if (word == "until" && !until) {
      auto gap = value.find(' ');
      if (gap == std::string_view::npos || !whole(value.substr(0, gap), UINT64_MAX, k.until_session) ||
          !whole(value.substr(gap + 1), UINT64_MAX, k.until_seq))
        return bad("until takes a session and a seq");
      until = true;
    } else {
      return bad("unexpected '" + std::string(word.substr(0, 16)) + "'");
    }
  }
  if (!magic || !generation || !base || !key) {
    why = "incomplete: it needs generation, base and key";
    return std::nullopt;
  }
  return k;
}

RotatedKey choose_key(const Key& provisioned, const std::optional<RotatedKey>& rotated, std::string& note) {
  RotatedKey own;
  own.generation = 0;
  own.base = fingerprint(provisioned);
  own.key = provisioned;
  note.clear();
  if (!rotated) return own;
  if (rotated->base != own.base) {
    note = "it descends from another provisioned key (" + to_hex(rotated->base) + ", this one is " + to_hex(own.base) +
           "): the key was provisioned anew since";
    return own;
  }
  if (rotated->generation == 0) {
    note = "it claims generation 0, which only the provisioned key is";
    return own;
  }
  return *rotated;
}

}  // namespace kairos

#pragma once
// The cryptography of key rotation (docs/PROTOCOL.md, Key rotation): the
// key-encryption key a new node key travels under, AES key wrap (RFC 3394),
// and the rotated key files a node and the gateway keep. Pure: no files, no
// clock.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/core/bytes.h"
#include "common/core/crypto.h"

namespace kairos {

// Names a key without revealing it: the first 8 bytes of
// HMAC-SHA256(key, "kairos key fingerprint v1"). A rotated key names the
// provisioned key it descends from, so that a key provisioned anew (with
// `kairosctl provision --new-key`) is not overridden by an older rotation.
using Fingerprint = std::array<std::uint8_t, 8>;
Fingerprint fingerprint(const Key& key);

// The key-encryption key of generation `generation` of node `node`'s key:
// HKDF-SHA256 (RFC 5869, no salt) of the key it replaces, with info
// "kairos rekey v1" 0x00 node 0x00 generation (4 bytes, big-endian). Bound
// to the node and the generation, so a wrapped key is good for nothing else.
Key rekey_kek(const Key& current, std::string_view node, std::uint32_t generation);

// AES key wrap (RFC 3394, initial value A6A6A6A6A6A6A6A6) under a 256-bit
// key-encryption key. data: at least 16 bytes, a multiple of 8 (else
// std::invalid_argument); the result is 8 bytes longer.
Bytes aes_key_wrap(const Key& kek, ByteView data);
// The data, or nullopt when the integrity check fails (another KEK, an
// altered or truncated text) or the length is not one that wrap makes.
std::optional<Bytes> aes_key_unwrap(const Key& kek, ByteView wrapped);

// A 256-bit key as a rekey command carries it, and back.
inline constexpr std::size_t kWrappedKeySize = 40;
std::array<std::uint8_t, kWrappedKeySize> wrap_key(const Key& kek, const Key& key);
std::optional<Key> unwrap_key(const Key& kek, ByteView wrapped);

// One generation of a node's key, as the rotated key files keep it.
struct RotatedKey {
  std::uint32_t generation = 0;  // 0: the provisioned key; every rotation adds one
  Fingerprint base{};            // of the provisioned key it descends from
  Key key{};
  // A retired key (the gateway's <node>.key.old): the node switched away
  // from it at this (session, seq), the first frame signed with the next
  // one; 0 when that is not known.
  std::uint64_t until_session = 0;
  std::uint64_t until_seq = 0;
};

// A rotated key file's text: "kairos-key 1", "generation N", "base <16 hex>",
// "key <64 hex>" and, for a retired key, "until <session> <seq>"; one a line.
std::string format_rotated_key(const RotatedKey& k);
// The key, or nullopt with why when the text is not such a file.
std::optional<RotatedKey> parse_rotated_key(std::string_view text, std::string& why);

// The key to start with, given the provisioned key (node.key_file, or the
// gateway's keys_dir/nodes/<id>.key) and a rotated key file's contents: the
// rotated key when it descends from the provisioned one, else the
// provisioned key as generation 0. note (empty when nothing was passed
// over) says why a rotated key was not used.
RotatedKey choose_key(const Key& provisioned, const std::optional<RotatedKey>& rotated, std::string& note);

}  // namespace kairos

#include "gateway/web/auth.h"

#include <algorithm>

#include "common/core/utf8.h"

namespace kairos::gw {

namespace {

ByteView view(const std::string& s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }

void put_u64(Bytes& out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

bool mac_matches(const Key& key, const std::string& text, const std::string& mac_hex) {
  const auto mac = from_hex(mac_hex);
  if (!mac) return false;
  const Digest want = hmac_sha256(key, {view(text)});
  return equal_constant_time(*mac, ByteView(want.data(), want.size()));
}

}  // namespace

std::string WebAuth::sign_in_text(const std::string& nonce, const std::string& name) {
  return "kairos-web-signin\n" + nonce + "\n" + name;
}

std::string WebAuth::act_text(const std::string& session, std::uint64_t seq, const std::string& act) {
  return "kairos-web-act\n" + session + "\n" + std::to_string(seq) + "\n" + act;
}

void WebAuth::expire(std::int64_t now_us) {
  std::erase_if(spent_, [&](const auto& c) { return now_us - c.second > s_.challenge_us; });
  std::erase_if(sessions_, [&](const auto& c) { return now_us - c.second.used_us > s_.idle_us; });
}

// nonce = issued (8 bytes, big-endian us) || random (8) || HMAC(secret, both)[0..16).
std::string WebAuth::challenge(ByteView random8, std::int64_t now_us) const {
  Bytes n;
  put_u64(n, static_cast<std::uint64_t>(now_us));
  n.insert(n.end(), random8.begin(), random8.end());
  const Digest mac = hmac_sha256(secret_, {ByteView(n.data(), n.size())});
  n.insert(n.end(), mac.begin(), mac.begin() + 16);
  return to_hex(ByteView(n.data(), n.size()));
}

WebAuth::Outcome WebAuth::sign_in(const std::string& name, const std::string& nonce, const std::string& mac_hex,
                                  const KeyOf& key_of, ByteView random16, std::int64_t now_us) {
  expire(now_us);
  Outcome o;
  // The challenge is the gateway's own, and fresh.
  const auto bytes = from_hex(nonce);
  std::int64_t issued = 0;
  if (bytes && bytes->size() == 32) {
    const Digest mac = hmac_sha256(secret_, {ByteView(bytes->data(), 16)});
    if (equal_constant_time(ByteView(bytes->data() + 16, 16), ByteView(mac.data(), 16)))
      for (int i = 0; i < 8; ++i) issued = (issued << 8) | (*bytes)[static_cast<std::size_t>(i)];
  }
  if (issued == 0 || now_us - issued > s_.challenge_us || issued > now_us) {
    o.error = o.detail = "no such challenge (not this gateway's, or over a minute old): ask for a new one";
    return o;
  }
  const Key* key = key_of(name, o.detail);
  const std::string who = log_safe(name, 64);
  o.error = "the answer was not signed with operator " + who + "'s key, or " + who +
            " may not sign in here (the gateway's log says which)";
  if (!key) return o;
  if (!mac_matches(*key, sign_in_text(nonce, name), mac_hex)) {
    o.detail = "the answer was not signed with operator " + who + "'s key";
    return o;
  }
  if (spent_.count(nonce)) {
    o.error = o.detail = "this challenge has signed in already: ask for a new one";
    return o;
  }
  o.error.clear();
  spent_[nonce] = issued;
  while (sessions_.size() >= s_.max_sessions)
    sessions_.erase(std::min_element(sessions_.begin(), sessions_.end(), [](const auto& a, const auto& b) {
      return a.second.used_us < b.second.used_us;
    }));
  o.name = name;
  o.session = to_hex(random16);
  sessions_[o.session] = {name, 0, now_us};
  return o;
}

WebAuth::Outcome WebAuth::check(const std::string& session, std::uint64_t seq, const std::string& act,
                                const std::string& mac_hex, const KeyOf& key_of, std::int64_t now_us) {
  expire(now_us);
  Outcome o;
  auto s = sessions_.find(session);
  if (s == sessions_.end()) {
    o.error = "not signed in (the session ended): sign in again";
    return o;
  }
  const Key* key = key_of(s->second.name, o.error);
  if (!key) {
    sessions_.erase(s);
    return o;
  }
  if (!mac_matches(*key, act_text(session, seq, act), mac_hex)) {
    o.error = "the action was not signed with the session's key";
    return o;
  }
  if (seq <= s->second.seq) {
    o.error = "action " + std::to_string(seq) + " was already taken (seq must rise)";
    return o;
  }
  s->second.seq = seq;
  s->second.used_us = now_us;
  o.name = s->second.name;
  o.session = session;
  return o;
}

}  // namespace kairos::gw

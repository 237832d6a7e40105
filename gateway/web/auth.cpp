#include "gateway/web/auth.h"

#include <algorithm>

#include "common/core/utf8.h"

namespace kairos::gw {

namespace {

bool mac_matches(const Key& key, const std::string& text, const std::string& mac_hex) {
  const auto mac = from_hex(mac_hex);
  if (!mac) return false;
  const Digest want = hmac_sha256(key, {ByteView(reinterpret_cast<const std::uint8_t*>(text.data()), text.size())});
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
  std::erase_if(challenges_, [&](const auto& c) { return now_us - c.second > s_.challenge_us; });
  std::erase_if(sessions_, [&](const auto& c) { return now_us - c.second.used_us > s_.idle_us; });
}

std::string WebAuth::challenge(ByteView random16, std::int64_t now_us) {
  expire(now_us);
  while (challenges_.size() >= s_.max_challenges)
    challenges_.erase(std::min_element(challenges_.begin(), challenges_.end(),
                                       [](const auto& a, const auto& b) { return a.second < b.second; }));
  std::string nonce = to_hex(random16);
  challenges_[nonce] = now_us;
  return nonce;
}

WebAuth::Outcome WebAuth::sign_in(const std::string& name, const std::string& nonce, const std::string& mac_hex,
                                  const KeyOf& key_of, ByteView random16, std::int64_t now_us) {
  expire(now_us);
  Outcome o;
  auto c = challenges_.find(nonce);
  if (c == challenges_.end()) {
    o.error = "no such challenge (expired, or used already): ask for a new one";
    return o;
  }
  challenges_.erase(c);  // good once, whatever the answer
  const Key* key = key_of(name, o.error);
  if (!key) return o;
  if (!mac_matches(*key, sign_in_text(nonce, name), mac_hex)) {
    o.error = "the answer was not signed with operator " + log_safe(name, 64) + "'s key";
    return o;
  }
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

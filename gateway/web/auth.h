#pragma once
// Sign-in to the live page (docs/WEB.md): the page proves an operator's key
// without sending it. The gateway gives a challenge (its own MAC over the
// time and random bytes: nothing is stored, so no flood of challenges can
// push out an operator's); the browser answers HMAC-SHA256(key,
// "kairos-web-signin\n" nonce "\n" operator) within a minute and gets a
// session. A challenge signs in once. Every action after that is signed the same way, over the
// session, a sequence number that only goes up, and the action's text, so
// a copied request is refused and a page of another site cannot act (it
// holds no key). Pure logic: time and randomness come in as arguments.
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "common/core/bytes.h"
#include "common/core/crypto.h"

namespace kairos::gw {

class WebAuth {
 public:
  struct Settings {
    std::int64_t challenge_us = 60'000'000;    // a challenge is answered within this
    std::int64_t idle_us = 30 * 60'000'000LL;  // a session unused this long ends
    std::size_t max_sessions = 32;             // the one unused longest goes first
  };
  // The operator's key by name, or nullptr with why (unknown, revoked).
  using KeyOf = std::function<const Key*(const std::string& name, std::string& why)>;

  // secret: the gateway's own, random at each start (challenges die with it).
  WebAuth(const Key& secret, Settings s) : secret_(secret), s_(s) {}
  explicit WebAuth(const Key& secret) : WebAuth(secret, Settings{}) {}
  // A new challenge from 8 random bytes: its nonce (64 hex digits).
  std::string challenge(ByteView random8, std::int64_t now_us) const;
  struct Outcome {
    std::string error;     // refused: why, as the client is told
    std::string detail;    // refused: why, for the gateway's log (names files and states)
    std::string name;      // the operator
    std::string session;   // sign-in: the new session's id (32 hex digits)
  };
  // An answer to a challenge (a challenge signs in once; a wrong answer spends nothing).
  Outcome sign_in(const std::string& name, const std::string& nonce, const std::string& mac_hex, const KeyOf& key_of,
                  ByteView random16, std::int64_t now_us);
  // A signed action of a session: its seq above every one before it.
  Outcome check(const std::string& session, std::uint64_t seq, const std::string& act, const std::string& mac_hex,
                const KeyOf& key_of, std::int64_t now_us);
  void sign_out(const std::string& session) { sessions_.erase(session); }
  std::size_t sessions() const { return sessions_.size(); }

  // The texts the browser signs (docs/WEB.md).
  static std::string sign_in_text(const std::string& nonce, const std::string& name);
  static std::string act_text(const std::string& session, std::uint64_t seq, const std::string& act);

 private:
  struct Session {
    std::string name;
    std::uint64_t seq = 0;
    std::int64_t used_us = 0;
  };
  void expire(std::int64_t now_us);
  Key secret_;
  Settings s_;
  std::map<std::string, std::int64_t> spent_;  // challenges that signed in, until they expire: nonce -> issued
  std::map<std::string, Session> sessions_;
};

}  // namespace kairos::gw

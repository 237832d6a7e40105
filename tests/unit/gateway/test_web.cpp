// The live page's pure parts (gateway/web): sign-in by a signed challenge
// and signed actions (WebAuth), and the snapshot the page draws.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/core/frame.h"
#include "gateway/http/server.h"
#include "gateway/web/auth.h"
#include "gateway/web/snapshot.h"

using namespace kairos;
using namespace kairos::gw;
using nlohmann::json;

namespace {

constexpr std::int64_t kSec = 1'000'000;

Key key_of_byte(std::uint8_t b) {
  Key k{};
  k.bytes.fill(b);
  return k;
}

std::string mac(const Key& key, const std::string& text) {
  const Digest d = hmac_sha256(key, {ByteView(reinterpret_cast<const std::uint8_t*>(text.data()), text.size())});
  return to_hex(ByteView(d.data(), d.size()));
}

Bytes random_of(std::uint8_t b, std::size_t n = 16) { return Bytes(n, b); }

const Key kSecret = key_of_byte(9);

struct Keys {
  Key alice = key_of_byte(1);
  bool alice_revoked = false;
  WebAuth::KeyOf key_of() {
    return [this](const std::string& name, std::string& why) -> const Key* {
      if (name != "alice") {
        why = "no key for operator " + name + " (/etc/kairos/keys/operators/" + name + ".key)";
        return nullptr;
      }
      if (alice_revoked) {
        why = "operator alice is revoked";
        return nullptr;
      }
      return &alice;
    };
  }
};

WebAuth::Outcome answer(WebAuth& auth, Keys& keys, const std::string& nonce, std::int64_t now, const Key* with = nullptr,
                        const std::string& name = "alice") {
  return auth.sign_in(name, nonce, mac(with ? *with : keys.alice, WebAuth::sign_in_text(nonce, name)), keys.key_of(),
                      random_of(5), now);
}

// Signs in alice; the session id.
std::string sign_in(WebAuth& auth, Keys& keys, std::int64_t now, std::uint8_t r = 7) {
  const std::string nonce = auth.challenge(random_of(r, 8), now);
  auto o = auth.sign_in("alice", nonce, mac(keys.alice, WebAuth::sign_in_text(nonce, "alice")), keys.key_of(),
                        random_of(static_cast<std::uint8_t>(r + 100)), now);
  EXPECT_EQ(o.error, "");
  return o.session;
}

}  // namespace

TEST(WebAuth, AChallengeAnsweredWithTheKeySignsInOnceWithinItsMinute) {
  WebAuth auth(kSecret);
  Keys keys;
  const std::string nonce = auth.challenge(random_of(1, 8), 5 * kSec);
  EXPECT_EQ(nonce.size(), 64u);
  // Signed with another key: refused, and the challenge is not spent by it.
  const Key other = key_of_byte(2);
  auto wrong = answer(auth, keys, nonce, 6 * kSec, &other);
  EXPECT_NE(wrong.error.find("not signed with operator alice's key"), std::string::npos) << wrong.error;
  EXPECT_EQ(wrong.detail, "the answer was not signed with operator alice's key");
  auto ok = answer(auth, keys, nonce, 6 * kSec);
  EXPECT_EQ(ok.error, "");
  EXPECT_EQ(ok.name, "alice");
  EXPECT_EQ(ok.session, "05050505050505050505050505050505");
  EXPECT_EQ(auth.sessions(), 1u);
  // Once only.
  EXPECT_NE(answer(auth, keys, nonce, 7 * kSec).error.find("signed in already"), std::string::npos);
  // Unknown operators: the client is told no more than for a wrong key; the log is told why.
  const std::string n2 = auth.challenge(random_of(2, 8), 8 * kSec);
  auto bob = answer(auth, keys, n2, 8 * kSec, nullptr, "bob");
  EXPECT_NE(bob.error.find("not signed with operator bob's key, or bob may not sign in"), std::string::npos) << bob.error;
  EXPECT_EQ(bob.error.find(".key"), std::string::npos) << bob.error;
  EXPECT_NE(bob.detail.find("/etc/kairos/keys/operators/bob.key"), std::string::npos);
  // Late, forged, of another gateway, from the future, or not hex: no such challenge.
  const std::string n3 = auth.challenge(random_of(3, 8), 10 * kSec);
  EXPECT_NE(answer(auth, keys, n3, 71 * kSec).error.find("no such challenge"), std::string::npos);
  std::string forged = auth.challenge(random_of(4, 8), 72 * kSec);
  forged[20] = forged[20] == '0' ? '1' : '0';
  EXPECT_NE(answer(auth, keys, forged, 72 * kSec).error.find("no such challenge"), std::string::npos);
  WebAuth other_gateway(key_of_byte(8));
  EXPECT_NE(answer(auth, keys, other_gateway.challenge(random_of(4, 8), 72 * kSec), 72 * kSec).error.find("no such"),
            std::string::npos);
  EXPECT_NE(answer(auth, keys, auth.challenge(random_of(4, 8), 90 * kSec), 80 * kSec).error.find("no such"),
            std::string::npos);
  EXPECT_NE(answer(auth, keys, "zz", 72 * kSec).error.find("no such challenge"), std::string::npos);
  // Garbage for a mac is refused like a wrong one.
  const std::string n5 = auth.challenge(random_of(6, 8), 72 * kSec);
  EXPECT_FALSE(auth.sign_in("alice", n5, "zz", keys.key_of(), random_of(9), 72 * kSec).error.empty());
  // Any number of challenges handed out pushes none out: they are not stored.
  for (int i = 0; i < 10'000; ++i) auth.challenge(random_of(static_cast<std::uint8_t>(i), 8), 73 * kSec);
  EXPECT_EQ(answer(auth, keys, n5, 74 * kSec).error, "");
}

TEST(WebAuth, ActionsMustBeSignedOverSessionSeqAndTextWithSeqRising) {
  WebAuth auth(kSecret);
  Keys keys;
  const std::string s = sign_in(auth, keys, kSec);
  const std::string act = R"({"verb":"freeze"})";
  auto check = [&](std::uint64_t seq, const std::string& text, const std::string& signed_text, std::int64_t now) {
    return auth.check(s, seq, text, mac(keys.alice, WebAuth::act_text(s, seq, signed_text)), keys.key_of(), now);
  };
  EXPECT_EQ(check(1, act, act, kSec).name, "alice");
  EXPECT_NE(check(1, act, act, kSec).error.find("already taken"), std::string::npos);
  EXPECT_NE(check(2, act, R"({"verb":"thaw"})", kSec).error.find("not signed"), std::string::npos);
  EXPECT_EQ(check(5, act, act, kSec).error, "");
  EXPECT_NE(check(3, act, act, kSec).error.find("already taken"), std::string::npos);
  // Signed for seq 6 but sent as 7: refused.
  EXPECT_FALSE(auth.check(s, 7, act, mac(keys.alice, WebAuth::act_text(s, 6, act)), keys.key_of(), kSec).error.empty());
  // Another session's id: not signed in.
  EXPECT_NE(auth.check("ff", 9, act, "00", keys.key_of(), kSec).error.find("not signed in"), std::string::npos);
  // Revoked: refused, and the session ends.
  keys.alice_revoked = true;
  EXPECT_EQ(check(8, act, act, kSec).error, "operator alice is revoked");
  keys.alice_revoked = false;
  EXPECT_NE(check(9, act, act, kSec).error.find("not signed in"), std::string::npos);
  // Signed out: ended.
  const std::string s2 = sign_in(auth, keys, 2 * kSec, 11);
  auth.sign_out(s2);
  EXPECT_NE(auth.check(s2, 1, act, mac(keys.alice, WebAuth::act_text(s2, 1, act)), keys.key_of(), 2 * kSec)
                .error.find("not signed in"),
            std::string::npos);
}

TEST(WebAuth, IdleSessionsEndAndTheBookIsBounded) {
  WebAuth auth(kSecret, {60 * kSec, 100 * kSec, 2});
  Keys keys;
  const std::string a = sign_in(auth, keys, kSec, 1);
  const std::string act = "{}";
  auto use = [&](const std::string& s, std::uint64_t seq, std::int64_t now) {
    return auth.check(s, seq, act, mac(keys.alice, WebAuth::act_text(s, seq, act)), keys.key_of(), now).error;
  };
  EXPECT_EQ(use(a, 1, 90 * kSec), "");   // used: its idle clock restarts
  EXPECT_EQ(use(a, 2, 180 * kSec), "");
  EXPECT_NE(use(a, 3, 281 * kSec).find("not signed in"), std::string::npos);  // idle 101 s
  // At most 2 sessions: the one unused longest goes.
  const std::string b = sign_in(auth, keys, 300 * kSec, 2);
  const std::string c = sign_in(auth, keys, 301 * kSec, 3);
  EXPECT_EQ(use(b, 1, 302 * kSec), "");
  const std::string d = sign_in(auth, keys, 303 * kSec, 4);
  EXPECT_EQ(auth.sessions(), 2u);
  EXPECT_NE(use(c, 1, 304 * kSec).find("not signed in"), std::string::npos);
  EXPECT_EQ(use(d, 1, 304 * kSec), "");
}

TEST(WebHosts, OnlyAddressesLocalhostAndTheNamesGivenAreAnswered) {
  const std::vector<std::string> names{"gw.example.lan"};
  for (const char* ok : {"127.0.0.1:8080", "10.0.0.5", "localhost:8080", "LOCALHOST", "[::1]:8080", "GW.example.lan:443"})
    EXPECT_TRUE(host_allowed(ok, names)) << ok;
  for (const char* bad : {"", "evil.example", "evil.example:8080", "gw.example.lan.evil.example", "127.0.0.1.nip.io"})
    EXPECT_FALSE(host_allowed(bad, names)) << bad;
}

TEST(WebSnapshot, ShowsEveryNodeTheFiguresSchedulesAndPlaysAsValidJson) {
  Registry registry;
  kairos_v1_NodeBirth b = kairos_v1_NodeBirth_init_zero;
  b.device_class = kairos_v1_DeviceClass_CLASS_B;
  b.heartbeat_period_ms = 1000;
  auto& n1 = registry.on_birth("n1", "east", 1, b, 0, kSec);
  kairos_v1_PhaseReport p = kairos_v1_PhaseReport_init_zero;
  p.valid = true;
  p.has_node_z = true;
  p.node_z.im = 0.8f;  // phase pi/2
  p.node_c = 0.8f;
  registry.on_phase(n1, p, kSec);
  registry.on_birth(std::string("n\xff") + "2", "west", 1, b, 0, kSec);  // not UTF-8: still valid JSON
  MeshFigures figures;
  figures.z = {0.5, 0.25};
  figures.coherence = 0.9;
  figures.agreement = 0.7;
  ScheduleResult comp;
  comp.spec.at_us = 5 * kSec;
  comp.hits = 1;
  for (double e : {1234.0, -2500.0}) {
    TargetResult t;
    t.executed = true;
    t.error_us = e;
    comp.targets.push_back(t);
  }
  comp.targets.push_back({});  // not executed: no error shown
  std::optional<ScheduleResult> compensated = comp, naive;
  std::vector<ball::Entry> lineage(20);
  for (std::size_t i = 0; i < lineage.size(); ++i) {
    lineage[i].seq = i;
    lineage[i].kind = "say";
    lineage[i].author = "ann";
    lineage[i].text = std::string(300, 'x');
  }
  Plays::View play;
  play.session = "s1";
  play.ball_id = "b1";
  play.holder = "n1";
  play.peers = {"ann", "n1"};
  play.lineage = &lineage;
  StoredConflict c;
  c.id = 4;
  c.type = "DATA_CONTRADICTION";
  c.priority = 1;
  c.node = "n1";
  c.task = 9;
  c.task_state = "open";
  const std::string mesh = "m", gw = "gw1";
  const std::deque<FigurePoint> history{{1'000'000'000'000, 0.5, 0.25}, {1'000'001'000'000, 0.6, 0.3}};
  const json j = json::parse(web_snapshot({mesh, gw, registry, figures, true, kairos_v1_MeshMode_FULL,
                                           {BreakerView{"cluster", "east", BreakerState::open, 3, 0, 0, 1}}, {c},
                                           compensated, naive, {play}, history, true, 2 * kSec, 1'700'000'000 * kSec}));
  EXPECT_EQ(j["mesh"], "m");
  EXPECT_EQ(j["history"], json::parse("[[1000000000,0.5,0.25],[1000001000,0.6,0.3]]"));
  EXPECT_EQ(j["mode"], "FULL");
  EXPECT_TRUE(j["unified"].get<bool>());
  EXPECT_DOUBLE_EQ(j["c"].get<double>(), 0.9);
  EXPECT_EQ(j["known"], 2);
  ASSERT_EQ(j["nodes"].size(), 2u);
  const auto& fields = j["node_fields"];
  EXPECT_EQ(fields[3], "state");
  EXPECT_EQ(fields[4], "phase");
  const auto& a = j["nodes"][0];
  EXPECT_EQ(a[0], "n1");
  EXPECT_EQ(a[1], "east");
  EXPECT_EQ(a[2], "B");
  EXPECT_NEAR(a[4].get<double>(), 1.571, 1e-3);
  EXPECT_EQ(j["nodes"][1][0], "n\xef\xbf\xbd" "2");
  EXPECT_TRUE(j["nodes"][1][4].is_null());  // no phase yet
  EXPECT_EQ(j["schedule"]["compensated"]["errors_ms"], json::parse("[1.23,-2.5]"));
  EXPECT_TRUE(j["schedule"]["naive"].is_null());
  EXPECT_EQ(j["breakers"][0]["state"], "OPEN");
  EXPECT_EQ(j["conflicts"][0]["task"], 9);
  const auto& pl = j["plays"][0];
  EXPECT_EQ(pl["holder"], "n1");
  EXPECT_EQ(pl["entries"], 20);
  ASSERT_EQ(pl["lineage"].size(), kWebMaxLineage);
  EXPECT_EQ(pl["lineage"][0]["seq"], 20 - kWebMaxLineage);
  EXPECT_LE(pl["lineage"][0]["text"].get<std::string>().size(), 164u);
}

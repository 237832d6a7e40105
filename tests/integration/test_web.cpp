// The live page (docs/WEB.md) on a live mesh: a real Mosquitto, the gateway
// with [web] and real nodes. In Debian's chromium (playwright-core from
// tests/npm): the page shows every node, its plot moves, a killed node turns
// OFFLINE, and a signed-in freeze freezes the nodes. Over raw sockets: bad
// HTTP and WebSocket input gets a clear error and changes nothing.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "common/core/crypto.h"
#include "tests/integration/harness.h"

using namespace kairos;
using namespace kairos::test;
using namespace std::chrono_literals;
using nlohmann::json;

namespace {

std::string hmac_hex(const Key& key, const std::string& text) {
  const Digest d = hmac_sha256(key, {ByteView(reinterpret_cast<const std::uint8_t*>(text.data()), text.size())});
  return to_hex(ByteView(d.data(), d.size()));
}

std::string web_config(int port, const std::string& more = "") {
  return "[web]\nlisten = \"127.0.0.1:" + std::to_string(port) + "\"\n" + more +
         "[liveness]\nheartbeat_period_s = 0.3\n";
}

// A WebSocket client over a raw socket (RFC 6455), enough to test the server.
class WsClient {
 public:
  // rcvbuf > 0: a small receive buffer, for a client that does not read.
  WsClient(int port, int rcvbuf = 0, const std::string& headers = "") {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return;
    const std::string req =
        "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + headers + "\r\n";
    ::send(fd_, req.data(), req.size(), MSG_NOSIGNAL);
    while (head_.find("\r\n\r\n") == std::string::npos) {
      if (!fill(5000)) return;
    }
    const auto end = head_.find("\r\n\r\n");
    buf_ = head_.substr(end + 4);
    head_.resize(end);
    upgraded_ = head_.rfind("HTTP/1.1 101", 0) == 0;
  }
  ~WsClient() { ::close(fd_); }
  bool upgraded() const { return upgraded_; }
  const std::string& head() const { return head_; }
  // The next frame: opcode and payload; opcode -1 when none came within timeout_ms.
  std::pair<int, std::string> next(int timeout_ms = 5000) {
    for (;;) {
      if (buf_.size() >= 2) {
        const auto b = reinterpret_cast<const unsigned char*>(buf_.data());
        std::size_t len = b[1] & 0x7f, at = 2;
        if (len == 126 && buf_.size() >= 4) len = (std::size_t{b[2]} << 8) | b[3], at = 4;
        else if (len == 127 && buf_.size() >= 10) {
          len = 0;
          for (int i = 0; i < 8; ++i) len = (len << 8) | b[2 + i];
          at = 10;
        }
        if ((b[1] & 0x7f) < 126 || at > 2) {
          if (buf_.size() >= at + len) {
            auto frame = std::make_pair(b[0] & 0x0f, buf_.substr(at, len));
            buf_.erase(0, at + len);
            return frame;
          }
        }
      }
      if (!fill(timeout_ms)) return {-1, ""};
    }
  }
  // A masked client frame.
  void send(int opcode, const std::string& payload) {
    std::string f;
    f += static_cast<char>(0x80 | opcode);
    if (payload.size() < 126) {
      f += static_cast<char>(0x80 | payload.size());
    } else {
      f += static_cast<char>(0x80 | 126);
      f += static_cast<char>(payload.size() >> 8);
      f += static_cast<char>(payload.size() & 0xff);
    }
    const char mask[4] = {1, 2, 3, 4};
    f.append(mask, 4);
    for (std::size_t i = 0; i < payload.size(); ++i) f += static_cast<char>(payload[i] ^ mask[i % 4]);
    ::send(fd_, f.data(), f.size(), MSG_NOSIGNAL);
  }

 private:
  bool fill(int timeout_ms) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return false;
    char b[65536];
    const ssize_t n = ::read(fd_, b, sizeof b);
    if (n <= 0) return false;
    (upgraded_ ? buf_ : head_).append(b, static_cast<std::size_t>(n));
    return true;
  }
  int fd_ = -1;
  bool upgraded_ = false;
  std::string head_, buf_;
};

}  // namespace

TEST(Web, TheBrowserShowsTheMeshLiveAndASignedInFreezeFreezesIt) {
  const std::string playwright = std::string(KAIROS_SOURCE_DIR) + "/tests/npm/node_modules/playwright-core";
  ASSERT_TRUE(std::filesystem::exists(playwright)) << "playwright-core is not installed in tests/npm: run tools/setup";
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/chromium")) << "Debian's chromium is not installed: run tools/setup";
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  const int port = free_port();
  mesh.start_gateway(web_config(port));
  const char* ids[] = {"n1", "n2", "n3"};
  for (const char* id : ids) mesh.start_node(id, "c1", "waveform = \"sine\"\n", "heartbeat_period_s = 0.3\n");
  ASSERT_TRUE(eventually([&] {
    auto n = mesh.nodes();
    return n.size() == 3 && std::all_of(n.begin(), n.end(), [](const auto& i) { return i.online && i.phase_valid; });
  }, 30s)) << mesh.gateway().output();

  const char* shots = std::getenv("KAIROS_WEB_SHOTS");  // tools/web-screenshots: docs/img
  std::vector<std::string> argv{"node", std::string(KAIROS_SOURCE_DIR) + "/tests/integration/web_page.mjs",
                                "http://127.0.0.1:" + std::to_string(port) + "/", "3",
                                std::to_string(mesh.node("n3").pid()), to_hex(ByteView(mesh.operator_key().bytes.data(), 32))};
  if (shots) argv.push_back(shots);
  auto r = run_command(argv, dir.path(), 150s);
  ASSERT_EQ(r.status, 0) << r.output;
  const auto line = r.output.substr(r.output.rfind("{\"console_errors\""));
  const json out = json::parse(line.substr(0, line.find('\n')));
  ASSERT_FALSE(out.contains("error")) << out.dump(1) << mesh.gateway().output();

  EXPECT_TRUE(out["console_errors"].empty()) << out["console_errors"];
  EXPECT_EQ(out["title"], "Kairos mesh");
  std::set<std::string> shown;
  for (const auto& row : out["rows"]) shown.insert(row[0].get<std::string>());
  EXPECT_EQ(shown, (std::set<std::string>{"n1", "n2", "n3"}));
  EXPECT_TRUE(out["plot_moved"].get<bool>());
  // The killed node, OFFLINE on the page within 2 s of the kill (its Will,
  // then the next snapshot, at most 250 ms later).
  EXPECT_EQ(out["offline_id"], "n3");
  EXPECT_LE(out["offline_ms"].get<int>(), 2000) << out.dump(1);
  EXPECT_FALSE(out["controls_before"].get<bool>());
  EXPECT_NE(out["wrong_key"].get<std::string>().find("not signed with operator operator's key"), std::string::npos)
      << out["wrong_key"];
  EXPECT_NE(out["signed_in_as"].get<std::string>().find("operator"), std::string::npos);
  EXPECT_NE(out["freeze_notice"].get<std::string>().find("freeze: done, 2 of 2 nodes ready"), std::string::npos)
      << out["freeze_notice"];
  // The nodes themselves are frozen, as the gateway's registry says, and the freeze is audited.
  for (const char* id : {"n1", "n2"}) {
    auto n = mesh.node_info(id);
    ASSERT_TRUE(n);
    EXPECT_EQ(n->status, kairos_v1_NodeStatus_FROZEN) << id;
  }
  auto log = mesh.kairosctl({"operators", "log"});
  EXPECT_NE(log.output.find("freeze"), std::string::npos) << log.output;
  std::printf("[ browser ] %s\n", out["steps"].dump().c_str());
}

TEST(Web, BadRequestsGetClearErrorsAndChangeNothing) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  const int port = free_port();
  mesh.start_gateway(web_config(port));
  mesh.start_node("n1", "c1", "waveform = \"constant\"\noffset = 0.5\n", "heartbeat_period_s = 0.3\n");
  ASSERT_TRUE(eventually([&] { return mesh.nodes().size() == 1 && mesh.nodes()[0].online; }, 20s));

  // The page and its files; a snapshot for curl.
  auto page = http_request(port, "GET", "/");
  EXPECT_EQ(page.status, 200);
  EXPECT_NE(page.body.find("<title>Kairos mesh</title>"), std::string::npos);
  EXPECT_EQ(http_request(port, "GET", "/app.js").status, 200);
  auto snap = http_request(port, "GET", "/api/snapshot");
  ASSERT_EQ(snap.status, 200) << snap.body;
  EXPECT_EQ(json::parse(snap.body)["nodes"].size(), 1u);

  // Unknown paths, wrong methods, oversized and malformed bodies.
  EXPECT_EQ(http_request(port, "GET", "/etc/passwd").status, 404);
  EXPECT_EQ(http_request(port, "GET", "/../gateway.toml").status, 404);
  auto wrong = http_request(port, "POST", "/", "x");
  EXPECT_EQ(wrong.status, 405);
  EXPECT_NE(wrong.head.find("Allow: GET, HEAD"), std::string::npos) << wrong.head;
  EXPECT_EQ(http_request(port, "GET", "/api/act").status, 405);
  EXPECT_EQ(http_request(port, "DELETE", "/api/signin").status, 405);
  auto big = http_request(port, "POST", "/api/act", std::string(5000, '{'));
  EXPECT_EQ(big.status, 413);
  EXPECT_NE(big.body.find("body over 4096 bytes"), std::string::npos) << big.body;
  auto bad = http_request(port, "POST", "/api/act", "{\"session\": ");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("not a JSON object"), std::string::npos) << bad.body;
  EXPECT_EQ(http_request(port, "POST", "/api/act", "[1,2]").status, 400);
  auto missing = http_request(port, "POST", "/api/signin", "{\"operator\": 5}");
  EXPECT_EQ(missing.status, 400);
  EXPECT_NE(missing.body.find("operator, nonce and mac"), std::string::npos) << missing.body;
  // Actions of no session, and of a made-up one.
  const std::string act = R"({"verb":"freeze","scope":"all","confirm":true})";
  auto body = [&](const std::string& session, int seq, const std::string& a, const std::string& mac) {
    return json{{"session", session}, {"seq", seq}, {"act", a}, {"mac", mac}}.dump();
  };
  auto nosession = http_request(port, "POST", "/api/act", body("00", 1, act, std::string(64, '0')));
  EXPECT_EQ(nosession.status, 403);
  EXPECT_NE(nosession.body.find("not signed in"), std::string::npos) << nosession.body;
  EXPECT_EQ(http_request(port, "POST", "/api/act", body("00", 1, R"({"verb":"reboot"})", "00")).status, 400);
  auto typed = http_request(port, "POST", "/api/act", body("00", 1, R"({"verb":"freeze","confirm":"yes"})", "00"));
  EXPECT_EQ(typed.status, 400);
  EXPECT_NE(typed.body.find("confirm: true or false"), std::string::npos) << typed.body;
  EXPECT_EQ(http_request(port, "POST", "/api/act", body("00", 1, R"({"verb":"resolve","task":-3,"note":"x"})", "00")).status,
            400);

  // Sign-in: a wrong answer, a used challenge, then the right one.
  auto challenge = [&] { return json::parse(http_request(port, "GET", "/api/challenge").body)["nonce"].get<std::string>(); };
  const Key& key = mesh.operator_key();
  std::string nonce = challenge();
  auto sign_in = [&](const std::string& name, const std::string& n, const std::string& mac) {
    return http_request(port, "POST", "/api/signin", json{{"operator", name}, {"nonce", n}, {"mac", mac}}.dump());
  };
  auto wrong_mac = sign_in("operator", nonce, hmac_hex(key, "kairos-web-signin\n" + nonce + "\nsomeone"));
  EXPECT_EQ(wrong_mac.status, 403) << wrong_mac.body;
  EXPECT_EQ(sign_in("nobody", challenge(), std::string(64, '0')).status, 403);
  EXPECT_EQ(sign_in("operator", std::string(64, 'a'), std::string(64, '0')).status, 403);  // no challenge of its
  auto ok = sign_in("operator", nonce, hmac_hex(key, "kairos-web-signin\n" + nonce + "\noperator"));
  ASSERT_EQ(ok.status, 200) << ok.body;
  auto reused = sign_in("operator", nonce, hmac_hex(key, "kairos-web-signin\n" + nonce + "\noperator"));
  EXPECT_EQ(reused.status, 403);
  EXPECT_NE(reused.body.find("signed in already"), std::string::npos) << reused.body;
  const std::string session = json::parse(ok.body)["session"];

  // A signed action whose text was changed on the way, and one replayed.
  const std::string heal = R"({"verb":"heal","node":"n1"})";
  auto signed_act = [&](int seq, const std::string& a, const std::string& signed_text) {
    return http_request(port, "POST", "/api/act",
                        body(session, seq, a, hmac_hex(key, "kairos-web-act\n" + session + "\n" + std::to_string(seq) +
                                                                "\n" + signed_text)));
  };
  auto tampered = signed_act(1, act, heal);
  EXPECT_EQ(tampered.status, 403);
  EXPECT_NE(tampered.body.find("not signed with the session's key"), std::string::npos) << tampered.body;
  auto healed = signed_act(2, heal, heal);
  ASSERT_EQ(healed.status, 200) << healed.body;
  EXPECT_TRUE(json::parse(healed.body)["ok"].get<bool>()) << healed.body;
  auto replay = signed_act(2, heal, heal);
  EXPECT_EQ(replay.status, 403);
  EXPECT_NE(replay.body.find("already taken"), std::string::npos) << replay.body;

  // A page of a name pointed at this address (DNS rebinding) is not answered.
  auto rebound = http_request(port, "GET", "/api/snapshot", "", "Host: evil.example:" + std::to_string(port) + "\r\n");
  EXPECT_EQ(rebound.status, 421);
  EXPECT_NE(rebound.body.find("web.hosts"), std::string::npos) << rebound.body;
  EXPECT_EQ(http_request(port, "GET", "/", "", "Host: localhost:" + std::to_string(port) + "\r\n").status, 200);

  // Once operators have keys of their own, the shared key every console holds signs in nobody.
  {
    const Key alice{{7, 7, 7}};
    std::filesystem::create_directories(mesh.keys_dir() + "/operators");
    dir.write("keys/operators/alice.key", to_hex(ByteView(alice.bytes.data(), 32)) + "\n", 0600);
    nonce = challenge();
    auto shared = sign_in("operator", nonce, hmac_hex(key, "kairos-web-signin\n" + nonce + "\noperator"));
    EXPECT_EQ(shared.status, 403) << shared.body;
    EXPECT_NE(mesh.gateway().output().find("the shared operator.key is every console's"), std::string::npos);
    nonce = challenge();
    EXPECT_EQ(sign_in("alice", nonce, hmac_hex(alice, "kairos-web-signin\n" + nonce + "\nalice")).status, 200);
  }

  // Nothing of it froze anything; the gateway still answers.
  auto n = mesh.node_info("n1");
  ASSERT_TRUE(n);
  EXPECT_NE(n->status, kairos_v1_NodeStatus_FROZEN);
  auto log = mesh.kairosctl({"operators", "log"});
  EXPECT_EQ(log.output.find("freeze"), std::string::npos) << log.output;
  EXPECT_NE(log.output.find("heal"), std::string::npos) << log.output;
  EXPECT_TRUE(mesh.status());
}

TEST(Web, TheWebSocketCarriesSnapshotsAndRefusesWhatItMustNot) {
  TempDir dir;
  Broker broker(dir);
  Mesh mesh(dir, broker);
  const int port = free_port();
  mesh.start_gateway(web_config(port, "max_clients = 2\n"));
  mesh.start_node("n1", "c1", "waveform = \"constant\"\noffset = 0.5\n", "heartbeat_period_s = 0.3\n");
  ASSERT_TRUE(eventually([&] { return mesh.nodes().size() == 1; }, 20s));

  // A page of another site is refused; the gateway's own page (its Origin, its Host) is served.
  EXPECT_FALSE(WsClient(port, 0, "Origin: http://evil.example\r\n").upgraded());
  WsClient a(port, 0, "Origin: http://127.0.0.1:" + std::to_string(port) + "\r\n");
  ASSERT_TRUE(a.upgraded()) << a.head();
  auto [op, text] = a.next();
  ASSERT_EQ(op, 1) << text;
  const json s = json::parse(text);
  EXPECT_EQ(s["nodes"].size(), 1u);
  EXPECT_EQ(s["nodes"][0][0], "n1");
  EXPECT_TRUE(s.contains("c") && s.contains("a") && s.contains("z") && s.contains("mode"));

  // A client that does not read (a tiny receive buffer, full) holds up nobody:
  // the other client still gets snapshots one after another.
  WsClient slow(port, 1024);
  ASSERT_TRUE(slow.upgraded()) << slow.head();
  int frames = 0;
  for (int i = 0; i < 8; ++i)
    if (a.next(3000).first == 1) ++frames;
  EXPECT_EQ(frames, 8);

  // Over max_clients: refused.
  WsClient third(port);
  EXPECT_FALSE(third.upgraded()) << third.head();


  // A frame over 1 KB: closed with 1009.
  a.send(1, std::string(2000, 'x'));
  int close_code = 0;
  for (int i = 0; i < 20 && close_code == 0; ++i) {
    auto [o, p] = a.next();
    if (o == -1) break;
    if (o == 8 && p.size() >= 2)
      close_code = (static_cast<unsigned char>(p[0]) << 8) | static_cast<unsigned char>(p[1]);
  }
  EXPECT_EQ(close_code, 1009);
  // Its place is taken again; what a client says within 1 KB is ignored; the gateway still answers.
  std::unique_ptr<WsClient> b;
  ASSERT_TRUE(eventually([&] {
    b = std::make_unique<WsClient>(port);
    return b->upgraded();
  }, 15s));
  b->send(1, "hello");
  EXPECT_EQ(b->next().first, 1);
  EXPECT_TRUE(mesh.status());
}

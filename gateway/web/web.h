#pragma once
// The live page (docs/WEB.md): static files, a WebSocket that carries the
// mesh's snapshot to every open page, and sign-in and actions for
// operators. The HTTP server's threads never touch the gateway's state:
// the loop renders the snapshot (while a page wants it) into a Feed, and
// sign-in and actions are handed to the loop (LoopCalls), where they go
// through the control RPC like kairosctl's requests.
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "gateway/http/feed.h"
#include "gateway/http/loop_calls.h"
#include "gateway/http/server.h"
#include "gateway/link/reply.h"
#include "gateway/web/auth.h"
#include "gateway/web/snapshot.h"

namespace kairos::gw {

class Web {
 public:
  struct Settings {
    std::string listen;      // [web] listen
    std::string static_dir;  // [web] static_dir: index.html, app.js, style.css
    std::size_t max_clients = 16;
    std::vector<std::string> hosts;  // [web] hosts
  };
  // On the loop, all of them.
  struct Ports {
    WebAuth::KeyOf key_of;
    // Starts an operator's request through the control RPC; answered through answered().
    std::function<void(const std::string& name, const kairos_v1_ControlRequest& req, const ReplyTo& to)> act;
    std::function<std::string()> render;  // the snapshot now
    std::function<std::size_t()> nodes;   // how many nodes it shows (its period grows with them)
  };
  // Reads the static files; throws std::runtime_error naming web.static_dir when one is missing.
  Web(Settings settings, LoopCalls& calls, Ports ports);
  // The site for the HTTP server.
  HttpSite site();
  // On the loop: a new snapshot when one is due and a page wants it.
  void service(std::int64_t now_us);
  // On the loop: the mesh's figures now (one point a second is kept, the last 5 minutes).
  void sample(std::int64_t wall_us, double c, double a);
  const std::deque<FigurePoint>& history() const { return history_; }
  // On the loop: an answer for one of its requests (to.topic begins with kReplyPrefix).
  void answered(const ReplyTo& to, const kairos_v1_ControlResponse& resp);
  static constexpr std::string_view kReplyPrefix = "web:";
  // The gateway stops: HTTP threads waiting for an answer or a frame return now.
  void stop();
  // The HTTP server that serves it, once started (its WebSocket clients want snapshots).
  void attach(const HttpServer* server) { server_ = server; }

 private:
  HttpResponse challenge();
  HttpResponse sign_in(const HttpRequest& r);
  HttpResponse act(const HttpRequest& r);
  HttpResponse snapshot();
  // Runs fn on the loop: its answer, or a 503 (saying `late`) when the loop did not take it in 5 s.
  HttpResponse on_loop(std::function<HttpResponse()> fn, const char* late = "the gateway's loop did not answer in 5 s");
  // On the loop: a snapshot now, into the feed; its text.
  std::string render(std::int64_t now_us);

  const Settings settings_;
  LoopCalls& calls_;
  Ports ports_;
  std::map<std::string, std::pair<std::string, std::string>> files_;  // path -> content type, body
  Feed feed_;
  const HttpServer* server_ = nullptr;
  std::atomic<std::int64_t> wanted_us_{0};     // monotonic: the last time a page asked for the snapshot
  std::atomic<std::int64_t> published_us_{0};  // monotonic: when the newest snapshot was rendered
  std::int64_t next_us_ = 0;
  // On the loop.
  WebAuth auth_;  // its challenges are signed with a secret drawn at start
  std::deque<FigurePoint> history_;
  // Answers waited for by HTTP threads, by request id.
  std::mutex mu_;
  std::condition_variable answered_cv_;
  std::map<std::uint64_t, std::optional<std::string>> answers_;
  bool stopping_ = false;
  std::atomic<std::uint64_t> next_id_{1};
};

}  // namespace kairos::gw

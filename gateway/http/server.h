#pragma once
// The gateway's embedded HTTP server (civetweb): one listener for every
// page the gateway serves (the Prometheus metrics, docs/METRICS.md; the
// live page, docs/WEB.md). Its handlers run on civetweb's threads; what
// they need from the gateway's state they ask the loop for (LoopCalls) or
// read from a snapshot (Feed). Bad requests get a clear status and never
// reach the loop: an unknown path 404, a method the path does not take 405,
// a body over the route's limit 413.
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gateway/http/feed.h"

struct mg_context;
struct mg_connection;

namespace kairos::gw {

struct HttpRequest {
  std::string method;  // GET, HEAD, POST
  std::string path;
  std::string body;    // POST: at most the route's max_body bytes
  std::string cookie;  // the Cookie header, as sent
  std::string content_type;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers (Set-Cookie)
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  struct Route {
    Handler handler;
    bool post = false;             // takes POST (else GET and HEAD)
    std::size_t max_body = 4096;   // bytes, POST only
    bool check_host = false;       // the Host header must be one of this server's (see Options::hosts)
  };
  // A WebSocket path whose clients are each sent the feed's newest frame
  // (a slow client skips frames, never queues them). Text a client sends
  // over max_in bytes closes it (1009); anything else it sends is ignored.
  // The Host a request names must be an IP address, localhost, or one of
  // Options::hosts, and a WebSocket's Origin (when sent) must be that Host:
  // a page of another site, or one whose name was pointed at this address
  // (DNS rebinding), is refused (421, 403).
  struct Socket {
    Feed* feed = nullptr;
    std::size_t max_clients = 16;
    std::size_t max_in = 1024;
  };
  struct Options {
    std::string listen;  // "HOST:PORT" (127.0.0.1:9464; port 0 takes a free one)
    std::map<std::string, Route> routes;
    std::map<std::string, Socket> sockets;
    std::vector<std::string> hosts;  // host names, besides IP addresses and localhost, the checked routes answer to
  };
  // Throws std::runtime_error naming the address and the reason when it cannot listen.
  explicit HttpServer(Options options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  // The port it listens on (the one taken for port 0).
  int port() const { return port_; }
  // WebSocket clients connected now.
  std::size_t socket_clients() const;

 private:
  struct Client;
  struct SocketState;
  static int dispatch(mg_connection* conn, void* self);
  static int ws_connect(const mg_connection* conn, void* state);
  static void ws_ready(mg_connection* conn, void* state);
  static int ws_data(mg_connection* conn, int bits, char* data, std::size_t len, void* state);
  static void ws_close(const mg_connection* conn, void* state);
  Options options_;
  std::vector<std::unique_ptr<SocketState>> sockets_;
  mg_context* ctx_ = nullptr;
  int port_ = 0;
};

// One page set of the gateway's config: its key ("metrics.listen"), its
// address, its routes and WebSockets.
struct HttpSite {
  std::string key;
  std::string listen;
  std::string shown;  // the path logged ("/metrics")
  std::map<std::string, HttpServer::Route> routes;
  std::map<std::string, HttpServer::Socket> sockets;
  std::vector<std::string> hosts;  // the names its checked routes answer to (Options::hosts)
};

// Whether a Host header names this server: an IP address, localhost, or one of hosts (no case).
bool host_allowed(const std::string& host_header, const std::vector<std::string>& hosts);
// One server per distinct address (sites at one address share it), by
// address, each logged with its URLs. Throws std::runtime_error naming the
// key when an address cannot be had.
std::map<std::string, std::unique_ptr<HttpServer>> serve(const std::vector<HttpSite>& sites);

}  // namespace kairos::gw

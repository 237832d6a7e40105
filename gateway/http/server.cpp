#include "gateway/http/server.h"

#include <civetweb.h>

#include <atomic>
#include <cstdlib>
#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>

#include "common/io/log.h"

namespace kairos::gw {

namespace {

std::once_flag library_once;

// WebSocket close codes (RFC 6455 7.4.1).
constexpr unsigned kCloseTooBig = 1009;

void send_response(mg_connection* conn, const HttpResponse& r, bool head) {
  std::string extra;
  for (const auto& [name, value] : r.headers) extra += name + ": " + value + "\r\n";
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n"
            "X-Content-Type-Options: nosniff\r\n%sConnection: close\r\n\r\n",
            r.status, mg_get_response_code_text(conn, r.status), r.content_type.c_str(), r.body.size(), extra.c_str());
  if (!head) mg_write(conn, r.body.data(), r.body.size());
}

int refuse(mg_connection* conn, int status, const std::string& why) {
  send_response(conn, {status, "text/plain; charset=utf-8", why + "\n", {}}, false);
  return status;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// "http://Host:Port" -> "host:port"; "" when it is not an http(s) origin.
std::string origin_host(const char* origin) {
  std::string o = lower(origin ? origin : "");
  for (const char* scheme : {"http://", "https://"})
    if (o.rfind(scheme, 0) == 0) return o.substr(std::strlen(scheme));
  return "";
}

}  // namespace

bool host_allowed(const std::string& host_header, const std::vector<std::string>& hosts) {
  std::string h = lower(host_header);
  if (h.empty()) return false;
  if (h.front() == '[') return h.find(']') != std::string::npos;  // an IPv6 literal
  if (auto colon = h.rfind(':'); colon != std::string::npos) h.resize(colon);
  if (h == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, h.c_str(), &v4) == 1) return true;
  return std::any_of(hosts.begin(), hosts.end(), [&](const std::string& n) { return lower(n) == h; });
}

// One WebSocket client: a thread of its own sends it the feed's newest
// frames, so a slow reader holds up nobody but itself.
struct HttpServer::Client {
  mg_connection* conn = nullptr;
  std::atomic<bool> closing{false};
  std::thread pusher;
};

struct HttpServer::SocketState {
  HttpServer* server = nullptr;
  Socket socket;
  std::atomic<std::size_t> clients{0};
  std::mutex mu;
  std::map<const mg_connection*, std::unique_ptr<Client>> open;  // from ready to close
};

HttpServer::HttpServer(Options options) : options_(std::move(options)) {
  std::call_once(library_once, [] { mg_init_library(MG_FEATURES_WEBSOCKET); });
  std::size_t threads = 4;  // a scrape, a page, a sign-in at once
  for (const auto& [path, s] : options_.sockets) threads += s.max_clients;  // a WebSocket holds its thread
  const std::string num_threads = std::to_string(threads);
  // No files, no directory listing: every path is a route. A WebSocket
  // client that neither reads nor answers pings for 10 s is closed.
  const char* config[] = {"listening_ports", options_.listen.c_str(), "num_threads", num_threads.c_str(),
                          "request_timeout_ms", "10000", "websocket_timeout_ms", "10000",
                          "enable_websocket_ping_pong", "yes", "enable_directory_listing", "no", nullptr};
  mg_callbacks callbacks;
  std::memset(&callbacks, 0, sizeof callbacks);
  mg_init_data init;
  std::memset(&init, 0, sizeof init);
  init.callbacks = &callbacks;
  init.user_data = this;
  init.configuration_options = config;
  char text[256] = "";
  unsigned code = 0;
  mg_error_data error{&code, text, sizeof text};
  ctx_ = mg_start2(&init, &error);
  if (!ctx_) throw std::runtime_error("cannot listen on " + options_.listen + ": " + (text[0] ? text : "unknown error"));
  // Every path goes through dispatch (an unknown one is a 404 there), but a WebSocket's.
  mg_set_request_handler(ctx_, "/", &HttpServer::dispatch, this);
  for (auto& [path, socket] : options_.sockets) {
    auto state = std::make_unique<SocketState>();
    state->server = this;
    state->socket = socket;
    mg_set_websocket_handler(ctx_, path.c_str(), &HttpServer::ws_connect, &HttpServer::ws_ready,
                             &HttpServer::ws_data, &HttpServer::ws_close, state.get());
    sockets_.push_back(std::move(state));
  }
  mg_server_port ports[4];
  std::memset(ports, 0, sizeof ports);
  if (mg_get_server_ports(ctx_, 4, ports) > 0) port_ = ports[0].port;
}

HttpServer::~HttpServer() {
  for (auto& [path, socket] : options_.sockets)
    if (socket.feed) socket.feed->close();  // pushers stop waiting; civetweb then closes their connections
  if (ctx_) mg_stop(ctx_);
}

std::size_t HttpServer::socket_clients() const {
  std::size_t n = 0;
  for (const auto& s : sockets_) n += s->clients.load();
  return n;
}

int HttpServer::dispatch(mg_connection* conn, void* self) {
  auto& server = *static_cast<HttpServer*>(self);
  const mg_request_info* ri = mg_get_request_info(conn);
  const std::string path = ri->local_uri ? ri->local_uri : "";
  if (server.options_.sockets.count(path)) return refuse(conn, 400, "a WebSocket: connect with Upgrade: websocket");
  auto route = server.options_.routes.find(path);
  if (route == server.options_.routes.end()) return refuse(conn, 404, "not found: " + path.substr(0, 200));
  if (route->second.check_host) {
    const char* host = mg_get_header(conn, "Host");
    if (!host_allowed(host ? host : "", server.options_.hosts))
      return refuse(conn, 421, std::string("this server does not answer to the host '") + (host ? host : "") +
                                   "' (add it to web.hosts)");
  }
  const std::string method = ri->request_method ? ri->request_method : "";
  const bool get = method == "GET" || method == "HEAD";
  if (route->second.post ? method != "POST" : !get) {
    send_response(conn, {405, "text/plain; charset=utf-8", std::string("only ") + (route->second.post ? "POST" : "GET") + "\n",
                         {{"Allow", route->second.post ? "POST" : "GET, HEAD"}}},
                  false);
    return 405;
  }
  HttpRequest req;
  req.method = method;
  req.path = path;
  if (const char* c = mg_get_header(conn, "Cookie")) req.cookie = c;
  if (const char* c = mg_get_header(conn, "Content-Type")) req.content_type = c;
  if (route->second.post) {
    const std::size_t limit = route->second.max_body;
    if (ri->content_length > static_cast<long long>(limit))
      return refuse(conn, 413, "body over " + std::to_string(limit) + " bytes");
    // No Content-Length (chunked): read at most one byte past the limit.
    std::string body(limit + 1, '\0');
    std::size_t got = 0;
    while (got < body.size()) {
      int n = mg_read(conn, body.data() + got, body.size() - got);
      if (n <= 0) break;
      got += static_cast<std::size_t>(n);
    }
    if (got > limit) return refuse(conn, 413, "body over " + std::to_string(limit) + " bytes");
    body.resize(got);
    req.body = std::move(body);
  }
  HttpResponse r;
  try {
    r = route->second.handler(req);
  } catch (const std::exception& e) {  // a handler's bug is this request's 500, never the gateway's end
    r = {500, "text/plain; charset=utf-8", std::string("internal error: ") + e.what() + "\n", {}};
  }
  send_response(conn, r, method == "HEAD");
  return r.status;
}

int HttpServer::ws_connect(const mg_connection* conn, void* state) {
  auto& s = *static_cast<SocketState*>(state);
  const char* host = mg_get_header(conn, "Host");
  if (!host_allowed(host ? host : "", s.server->options_.hosts)) return 1;  // non-zero: refused
  // A browser always says which page opens it: only this server's own.
  if (const char* origin = mg_get_header(conn, "Origin"); origin && origin_host(origin) != lower(host ? host : "")) return 1;
  return s.clients.load() >= s.socket.max_clients ? 1 : 0;
}

void HttpServer::ws_ready(mg_connection* conn, void* state) {
  auto& s = *static_cast<SocketState*>(state);
  auto owned = std::make_unique<Client>();
  Client* client = owned.get();
  client->conn = conn;
  {
    std::lock_guard lock(s.mu);
    s.open[conn] = std::move(owned);
  }
  // Handshakes that passed ws_connect at once may overshoot max_clients: the extra ones get no frames.
  if (++s.clients > s.socket.max_clients) return;
  try {
    client->pusher = std::thread([client, feed = s.socket.feed] {
    std::uint64_t seen = 0;
    while (!client->closing.load()) {
      auto frame = feed ? feed->next(seen, std::chrono::milliseconds(200)) : nullptr;
      if (!frame && (!feed || feed->closed())) break;  // stopping: civetweb closes the connection
      if (!frame) continue;
      if (client->closing.load()) break;
      if (mg_websocket_write(client->conn, MG_WEBSOCKET_OPCODE_TEXT, frame->data(), frame->size()) <= 0) break;
    }
    });
  } catch (const std::system_error&) {  // no thread to be had: this client gets no frames, the gateway goes on
  }
}

int HttpServer::ws_data(mg_connection* conn, int bits, char*, std::size_t len, void* state) {
  auto& s = *static_cast<SocketState*>(state);
  const int opcode = bits & 0x0f;
  if (opcode == MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE) return 0;
  if (opcode == MG_WEBSOCKET_OPCODE_PING || opcode == MG_WEBSOCKET_OPCODE_PONG) return 1;
  if (len > s.socket.max_in) {
    const unsigned char close[] = {static_cast<unsigned char>(kCloseTooBig >> 8),
                                   static_cast<unsigned char>(kCloseTooBig & 0xff), 'o', 'v', 'e', 'r', ' ', '1', ' ',
                                   'K', 'B'};
    mg_websocket_write(conn, MG_WEBSOCKET_OPCODE_CONNECTION_CLOSE, reinterpret_cast<const char*>(close), sizeof close);
    return 0;
  }
  return 1;  // the page only listens; what a client says is ignored
}

void HttpServer::ws_close(const mg_connection* conn, void* state) {
  auto& s = *static_cast<SocketState*>(state);
  std::unique_ptr<Client> client;
  {
    std::lock_guard lock(s.mu);
    auto it = s.open.find(conn);
    if (it == s.open.end()) return;  // refused at connect, or closed before it was ready
    client = std::move(it->second);
    s.open.erase(it);
  }
  client->closing = true;
  if (client->pusher.joinable()) client->pusher.join();
  --s.clients;
}

std::map<std::string, std::unique_ptr<HttpServer>> serve(const std::vector<HttpSite>& sites) {
  std::map<std::string, std::unique_ptr<HttpServer>> servers;
  struct Address {
    std::string keys;
    std::vector<std::string> shown;
    HttpServer::Options o;
  };
  std::map<std::string, Address> by_address;
  for (const auto& site : sites) {
    if (site.listen.empty()) continue;
    auto& [keys, shown, o] = by_address[site.listen];
    keys += (keys.empty() ? "" : " and ") + site.key;
    shown.push_back(site.shown);
    o.listen = site.listen;
    o.routes.insert(site.routes.begin(), site.routes.end());
    o.sockets.insert(site.sockets.begin(), site.sockets.end());
    o.hosts.insert(o.hosts.end(), site.hosts.begin(), site.hosts.end());
  }
  for (auto& [listen, entry] : by_address) {
    auto& [keys, shown, o] = entry;
    try {
      servers[listen] = std::make_unique<HttpServer>(o);
    } catch (const std::exception& e) {
      throw std::runtime_error(keys + ": " + e.what() + " (the port is taken, or the address is not one of this machine's)");
    }
    const std::string base = "http://" + listen.substr(0, listen.rfind(':')) + ":" + std::to_string(servers[listen]->port());
    for (const auto& path : shown) log::info("http", "serving " + base + path);
  }
  return servers;
}

}  // namespace kairos::gw

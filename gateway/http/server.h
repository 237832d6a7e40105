#pragma once
// The gateway's embedded HTTP server (civetweb): one listener for every
// page the gateway serves (the Prometheus metrics, docs/METRICS.md). Its
// handlers run on civetweb's threads; what they need from the gateway's
// state they ask the loop for (LoopCalls).
#include <functional>
#include <map>
#include <memory>
#include <string>

struct mg_context;
struct mg_connection;

namespace kairos::gw {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse()>;
  // listen: "HOST:PORT" (127.0.0.1:9464; port 0 takes a free one). Throws
  // std::runtime_error naming the address and the reason when it cannot listen.
  HttpServer(const std::string& listen, std::map<std::string, Handler> routes);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;
  // The port it listens on (the one taken for port 0).
  int port() const { return port_; }

 private:
  static int dispatch(mg_connection* conn, void* self);
  std::map<std::string, Handler> routes_;
  mg_context* ctx_ = nullptr;
  int port_ = 0;
};

}  // namespace kairos::gw

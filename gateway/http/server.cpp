#include "gateway/http/server.h"

#include <civetweb.h>

#include <cstring>
#include <mutex>
#include <stdexcept>
#include <vector>

namespace kairos::gw {

namespace {

std::once_flag library_once;

}  // namespace

HttpServer::HttpServer(const std::string& listen, std::map<std::string, Handler> routes) : routes_(std::move(routes)) {
  std::call_once(library_once, [] { mg_init_library(0); });
  // Two request threads: a scrape and a page at once; no files, no directory listing.
  const char* options[] = {"listening_ports", listen.c_str(), "num_threads", "2", "request_timeout_ms", "10000",
                           "enable_directory_listing", "no", nullptr};
  mg_callbacks callbacks;
  std::memset(&callbacks, 0, sizeof callbacks);
  mg_init_data init;
  std::memset(&init, 0, sizeof init);
  init.callbacks = &callbacks;
  init.user_data = this;
  init.configuration_options = options;
  char text[256] = "";
  unsigned code = 0;
  mg_error_data error{&code, text, sizeof text};
  ctx_ = mg_start2(&init, &error);
  if (!ctx_) throw std::runtime_error("cannot listen on " + listen + ": " + (text[0] ? text : "unknown error"));
  for (const auto& [path, handler] : routes_) mg_set_request_handler(ctx_, path.c_str(), &HttpServer::dispatch, this);
  mg_server_port ports[4];
  std::memset(ports, 0, sizeof ports);
  if (mg_get_server_ports(ctx_, 4, ports) > 0) port_ = ports[0].port;
}

HttpServer::~HttpServer() {
  if (ctx_) mg_stop(ctx_);
}

int HttpServer::dispatch(mg_connection* conn, void* self) {
  auto& server = *static_cast<HttpServer*>(self);
  const mg_request_info* ri = mg_get_request_info(conn);
  auto route = server.routes_.find(ri->local_uri ? ri->local_uri : "");
  if (route == server.routes_.end()) {
    mg_send_http_error(conn, 404, "%s", "not found\n");
    return 404;
  }
  if (std::strcmp(ri->request_method, "GET") != 0 && std::strcmp(ri->request_method, "HEAD") != 0) {
    mg_send_http_error(conn, 405, "%s", "only GET\n");
    return 405;
  }
  HttpResponse r = route->second();
  mg_printf(conn,
            "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n"
            "Connection: close\r\n\r\n",
            r.status, mg_get_response_code_text(conn, r.status), r.content_type.c_str(), r.body.size());
  if (std::strcmp(ri->request_method, "HEAD") != 0) mg_write(conn, r.body.data(), r.body.size());
  return r.status;
}

}  // namespace kairos::gw

// HttpServer: HTTP/1.1 on a Unix stream socket, on its own thread (the API thread). Several
// connections with keep-alive, one request at a time per connection, requests handled one
// at a time overall, bounded headers and bodies. Malformed requests get a 400 and lose
// their connection; nothing a client sends stops the server. Built on Boost.Beast.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "api/api_types.hpp"
#include "base/result.hpp"

namespace ignition::api {

struct HttpServerOptions {
  size_t max_body_bytes = 1 << 20;  // larger bodies: 413 and the connection is closed
  size_t max_header_bytes = 16 << 10;
  size_t max_connections = 64;  // more are accepted and closed at once
};

using HttpHandler = std::function<ApiResponse(const ApiRequest&)>;

class HttpServer {
 public:
  // Binds and listens at `socket_path` and starts the API thread. A stale socket file (no
  // one listening) is replaced; a live one, or any other file there, is an error.
  static Result<std::unique_ptr<HttpServer>> start(const std::string& socket_path,
                                                   HttpHandler handler,
                                                   HttpServerOptions options = {});
  // stop()s.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Closes every connection, joins the API thread and removes the socket file. A request
  // being handled finishes first. Idempotent.
  void stop();
  const std::string& socket_path() const;

  struct Impl;

 private:
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ignition::api

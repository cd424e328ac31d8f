// HTTP/1.x between the guest and the MMDS: requests parsed out of a TCP byte stream with
// Boost.Beast, responses serialized back. Beast stays inside http.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.hpp"

namespace ignition::mmds {

struct HttpRequest {
  std::string method;      // as sent: "GET", "PUT", ...
  std::string target;      // the request-target as sent
  unsigned version = 11;   // 10 or 11
  bool keep_alive = true;  // HTTP/1.1 without "Connection: close", or 1.0 with keep-alive
  std::vector<std::pair<std::string, std::string>> headers;

  // The first header called `name`, in any case.
  std::optional<std::string_view> header(std::string_view name) const;
};

struct HttpResponse {
  unsigned status = 200;
  std::string content_type = "text/plain";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // beyond the standard ones
};

// Status line, Content-Type, Content-Length, Connection (when closing) and the extras.
std::string serialize(const HttpResponse& response, unsigned version, bool keep_alive);

// Collects a connection's bytes and hands out the requests in them, one at a time. At most
// `limit` bytes wait in it, so one request (headers and body) must fit in `limit`.
class RequestReader {
 public:
  explicit RequestReader(size_t limit);
  ~RequestReader();
  RequestReader(RequestReader&&) noexcept;
  RequestReader& operator=(RequestReader&&) noexcept;

  // Bytes it can take now.
  size_t room() const;
  // Takes at most room() bytes of `data`; returns how many it took.
  size_t append(std::span<const uint8_t> data);
  // The next whole request, nullopt until its bytes are all in. An error when the stream is
  // not HTTP or a request does not fit: nothing more can be read from the stream then.
  Result<std::optional<HttpRequest>> next();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ignition::mmds

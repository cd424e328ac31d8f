// The host's end of Unix stream sockets in tests: connecting and listening (vsock's hybrid
// backend), bounded reads and writes, and one HTTP/1.1 request on the API socket.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "base/fd.hpp"
#include "base/result.hpp"

namespace ignition::test {

Result<UniqueFd> unix_connect(const std::string& path);
// True once a socket file is at `path` (ignition publishes it only when it listens), false
// after `timeout`.
bool wait_for_socket(const std::string& path,
                     std::chrono::milliseconds timeout = std::chrono::seconds(20));
// Binds and listens at `path`, replacing a stale file there.
Result<UniqueFd> unix_listen(const std::string& path, int backlog = 16);
// The next connection on `listener`, or an error after `timeout`.
Result<UniqueFd> unix_accept(int listener, std::chrono::milliseconds timeout);

// Every byte of `data`, or an error (including a peer that stops reading for `timeout`).
Result<void> write_all(int fd, std::string_view data,
                       std::chrono::milliseconds timeout = std::chrono::seconds(30));
// One line, without its "\n", read a byte at a time so nothing after it is consumed.
Result<std::string> read_line(int fd, std::chrono::milliseconds timeout, size_t max = 256);
// Everything until end-of-file; an error if the stream stays silent for `timeout`.
Result<std::string> read_to_eof(int fd, std::chrono::milliseconds timeout);

struct HttpResponse {
  int status = 0;
  std::string body;
};
// `method target` with a JSON `body` (if any) on a fresh connection to the socket at `path`.
Result<HttpResponse> http_request(const std::string& path, const std::string& method,
                                  const std::string& target, const std::string& body = "",
                                  std::chrono::milliseconds timeout = std::chrono::seconds(15));

}  // namespace ignition::test

#include "support/unix_socket.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "base/unix_listener.hpp"

namespace ignition::test {
namespace {

Result<sockaddr_un> address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return err("socket path too long: {}", path);
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  return addr;
}

// Waits until fd is ready for `events`; an error on timeout.
Result<void> wait_for(int fd, short events, std::chrono::milliseconds timeout) {
  pollfd p{fd, events, 0};
  int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (n < 0) return err("poll: {}", errno_string());
  if (n == 0) return err("timed out after {} ms", timeout.count());
  return {};
}

}  // namespace

Result<UniqueFd> unix_connect(const std::string& path) {
  return connect_unix(path, /*nonblocking=*/false);
}

bool wait_for_socket(const std::string& path, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  struct stat st {};
  while (std::chrono::steady_clock::now() < deadline) {
    if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

Result<UniqueFd> unix_listen(const std::string& path, int backlog) {
  IGN_ASSIGN_OR_RETURN(sockaddr_un addr, address(path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return err("socket: {}", errno_string());
  ::unlink(path.c_str());
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
    return err("bind {}: {}", path, errno_string());
  if (::listen(fd.get(), backlog) != 0) return err("listen {}: {}", path, errno_string());
  return fd;
}

Result<UniqueFd> unix_accept(int listener, std::chrono::milliseconds timeout) {
  IGN_TRY(wait_for(listener, POLLIN, timeout));
  UniqueFd fd(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
  if (!fd.valid()) return err("accept: {}", errno_string());
  return fd;
}

Result<void> write_all(int fd, std::string_view data, std::chrono::milliseconds timeout) {
  while (!data.empty()) {
    IGN_TRY(wait_for(fd, POLLOUT, timeout));
    ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return err("write: {}", errno_string());
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

Result<std::string> read_line(int fd, std::chrono::milliseconds timeout, size_t max) {
  std::string line;
  while (line.size() < max) {
    IGN_TRY(wait_for(fd, POLLIN, timeout));
    char c;
    ssize_t n = ::read(fd, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return err("read: {}", errno_string());
    if (n == 0) return err("end of stream after '{}'", line);
    if (c == '\n') return line;
    line.push_back(c);
  }
  return err("no newline in {} bytes", max);
}

Result<std::string> read_to_eof(int fd, std::chrono::milliseconds timeout) {
  std::string data;
  char buf[65536];
  for (;;) {
    if (auto ready = wait_for(fd, POLLIN, timeout); !ready.ok())
      return err("after {} bytes: {}", data.size(), ready.error().message);
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return err("read after {} bytes: {}", data.size(), errno_string());
    if (n == 0) return data;
    data.append(buf, static_cast<size_t>(n));
  }
}

Result<HttpResponse> http_request(const std::string& path, const std::string& method,
                                  const std::string& target, const std::string& body,
                                  std::chrono::milliseconds timeout) {
  IGN_ASSIGN_OR_RETURN(UniqueFd fd, unix_connect(path));
  std::string request = method + " " + target + " HTTP/1.1\r\nHost: localhost\r\n" +
                        "Accept: application/json\r\nConnection: close\r\n";
  if (!body.empty())
    request +=
        "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  request += "\r\n" + body;
  IGN_TRY(write_all(fd.get(), request, timeout));
  // Headers, then exactly Content-Length bytes: the server need not close the connection.
  std::string data;
  size_t header_end;
  char buf[4096];
  while ((header_end = data.find("\r\n\r\n")) == std::string::npos) {
    IGN_TRY(wait_for(fd.get(), POLLIN, timeout));
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n <= 0) return err("{} {}: the connection ended inside the headers", method, target);
    data.append(buf, static_cast<size_t>(n));
  }
  HttpResponse response;
  if (std::sscanf(data.c_str(), "HTTP/1.%*d %d", &response.status) != 1)
    return err("{} {}: not an HTTP response: {}", method, target, data.substr(0, 80));
  size_t length = 0;
  std::string headers = data.substr(0, header_end);
  for (char& c : headers) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (size_t at = headers.find("\r\ncontent-length:"); at != std::string::npos)
    length = std::strtoull(headers.c_str() + at + 17, nullptr, 10);
  response.body = data.substr(header_end + 4);
  while (response.body.size() < length) {
    IGN_TRY(wait_for(fd.get(), POLLIN, timeout));
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n <= 0) return err("{} {}: the connection ended inside the body", method, target);
    response.body.append(buf, static_cast<size_t>(n));
  }
  return response;
}

}  // namespace ignition::test

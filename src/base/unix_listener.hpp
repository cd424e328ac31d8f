// A listening Unix stream socket at a path. The API server, the vsock device's host side
// and the uffd handler all publish one, and their clients wait for the file to appear and
// then connect; so the file appears only once the socket already listens.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "base/fd.hpp"
#include "base/result.hpp"

namespace ignition {

class UnixListener {
 public:
  struct Options {
    int backlog = 64;
    bool nonblocking = false;  // for the fd and for the connections accept() returns
  };

  // A stale socket file nobody listens on is replaced; a live one, or any other kind of
  // file at `path`, is an error.
  static Result<UnixListener> listen(const std::string& path, Options options);

  UnixListener(UnixListener&& other) noexcept;
  UnixListener& operator=(UnixListener&&) = delete;
  UnixListener(const UnixListener&) = delete;
  // Removes the path, unless something else has replaced it meanwhile.
  ~UnixListener();

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }
  // Hands the socket to another owner (an event loop); the path is still removed here.
  UniqueFd release_fd() { return std::move(fd_); }
  // The next pending connection, nullopt when a non-blocking listener has none.
  Result<std::optional<UniqueFd>> accept() const;

 private:
  UnixListener(UniqueFd fd, std::string path, dev_t dev, ino_t ino, bool nonblocking)
      : fd_(std::move(fd)),
        path_(std::move(path)),
        dev_(dev),
        ino_(ino),
        nonblocking_(nonblocking) {}
  UniqueFd fd_;
  std::string path_;
  dev_t dev_;  // identity of the socket file we created, checked before unlinking it
  ino_t ino_;
  bool nonblocking_;
};

// A stream connected to the listener at `path` (non-blocking if asked).
Result<UniqueFd> connect_unix(const std::string& path, bool nonblocking);

}  // namespace ignition

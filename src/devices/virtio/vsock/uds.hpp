// The host end of vsock: Unix stream sockets. The listener at uds_path takes
// host-initiated connections; guest-initiated ones connect to "<uds_path>_<port>".
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "base/fd.hpp"
#include "base/result.hpp"

namespace ignition::devices::virtio::vsock {

// The listening socket at a path: bound on creation, its path removed on destruction
// (unless something else has replaced it meanwhile).
class UdsListener {
 public:
  // A stale socket file nobody listens on is replaced; a live one or any other kind of
  // file at `path` is an error.
  static Result<UdsListener> bind(const std::string& path);

  UdsListener(UdsListener&& other) noexcept;
  UdsListener& operator=(UdsListener&&) = delete;
  UdsListener(const UdsListener&) = delete;
  ~UdsListener();

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }
  // The next pending connection (non-blocking), nullopt when there is none.
  Result<std::optional<UniqueFd>> accept() const;

 private:
  UdsListener(UniqueFd fd, std::string path, dev_t dev, ino_t ino)
      : fd_(std::move(fd)), path_(std::move(path)), dev_(dev), ino_(ino) {}
  UniqueFd fd_;
  std::string path_;
  dev_t dev_;  // identity of the socket file we created, checked before unlinking it
  ino_t ino_;
};

// A non-blocking stream connected to the listener at `path`.
Result<UniqueFd> connect_uds(const std::string& path);

}  // namespace ignition::devices::virtio::vsock

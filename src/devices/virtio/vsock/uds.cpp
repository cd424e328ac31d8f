#include "devices/virtio/vsock/uds.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ignition::devices::virtio::vsock {

namespace {

constexpr int kBacklog = 128;

Result<sockaddr_un> address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path))
    return err("Unix socket path '{}' must be 1 to {} bytes", path, sizeof(addr.sun_path) - 1);
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

Result<UniqueFd> stream_socket() {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return err("socket(AF_UNIX): {}", errno_string());
  return fd;
}

// What is at `path` when bind says it is taken: a live listener, a stale socket
// (removed, so bind can be retried), or something that is not ours to remove.
Result<void> clear_stale_socket(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) < 0) return {};  // gone meanwhile
  if (!S_ISSOCK(st.st_mode))
    return err("vsock uds_path '{}' exists and is not a Unix socket", path);
  IGN_ASSIGN_OR_RETURN(sockaddr_un addr, address(path));
  IGN_ASSIGN_OR_RETURN(UniqueFd probe, stream_socket());
  // A listener accepts the probe (or has a full backlog); a stale file refuses it.
  int rc = ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  if (rc == 0 || errno == EAGAIN)
    return err("vsock uds_path '{}' is in use: another process is listening on it", path);
  if (errno != ECONNREFUSED) return err("vsock uds_path '{}': {}", path, errno_string());
  if (::unlink(path.c_str()) < 0 && errno != ENOENT)
    return err("removing stale socket '{}': {}", path, errno_string());
  return {};
}

}  // namespace

Result<UdsListener> UdsListener::bind(const std::string& path) {
  IGN_ASSIGN_OR_RETURN(sockaddr_un addr, address(path));
  IGN_ASSIGN_OR_RETURN(UniqueFd fd, stream_socket());
  auto try_bind = [&] {
    return ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  };
  if (try_bind() < 0) {
    if (errno != EADDRINUSE) return err("bind '{}': {}", path, errno_string());
    IGN_TRY(clear_stale_socket(path));
    if (try_bind() < 0) return err("bind '{}': {}", path, errno_string());
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) < 0 || ::listen(fd.get(), kBacklog) < 0) {
    std::string why = errno_string();
    ::unlink(path.c_str());
    return err("listen on '{}': {}", path, why);
  }
  return UdsListener(std::move(fd), path, st.st_dev, st.st_ino);
}

UdsListener::UdsListener(UdsListener&& other) noexcept
    : fd_(std::move(other.fd_)),
      path_(std::exchange(other.path_, {})),
      dev_(other.dev_),
      ino_(other.ino_) {}

UdsListener::~UdsListener() {
  if (path_.empty()) return;
  struct stat st {};
  if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_)
    ::unlink(path_.c_str());
}

Result<std::optional<UniqueFd>> UdsListener::accept() const {
  UniqueFd fd(::accept4(fd_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
  if (fd.valid()) return std::optional<UniqueFd>(std::move(fd));
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED)
    return std::optional<UniqueFd>();
  return err("accept on '{}': {}", path_, errno_string());
}

Result<UniqueFd> connect_uds(const std::string& path) {
  IGN_ASSIGN_OR_RETURN(sockaddr_un addr, address(path));
  IGN_ASSIGN_OR_RETURN(UniqueFd fd, stream_socket());
  // Unix stream connects complete at once or fail (EAGAIN: the listener's backlog is full).
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) < 0)
    return err("connect '{}': {}", path, errno_string());
  return fd;
}

}  // namespace ignition::devices::virtio::vsock

#include "base/unix_listener.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>

namespace ignition {

namespace {

Result<sockaddr_un> address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path))
    return err("Unix socket path '{}' must be 1 to {} bytes", path, sizeof(addr.sun_path) - 1);
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

Result<UniqueFd> stream_socket(bool nonblocking) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0));
  if (!fd.valid()) return err("socket(AF_UNIX): {}", errno_string());
  return fd;
}

// Whatever is at `path` before we publish ours: nothing, a stale socket (removed), or
// something that is not ours to remove.
Result<void> clear_stale_socket(const std::string& path, const sockaddr_un& addr) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) < 0) {
    if (errno == ENOENT) return {};
    return err("Unix socket '{}': {}", path, errno_string());
  }
  if (!S_ISSOCK(st.st_mode)) return err("'{}' exists and is not a Unix socket", path);
  IGN_ASSIGN_OR_RETURN(UniqueFd probe, stream_socket(true));
  // A listener accepts the probe (or has a full backlog); a stale file refuses it.
  int rc = ::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  if (rc == 0 || errno == EAGAIN)
    return err("Unix socket '{}' is in use: another process is listening on it", path);
  if (errno != ECONNREFUSED) return err("Unix socket '{}': {}", path, errno_string());
  if (::unlink(path.c_str()) < 0 && errno != ENOENT)
    return err("removing the stale socket '{}': {}", path, errno_string());
  return {};
}

// Binds and listens under a temporary name beside `path`, then renames it into place: bind
// creates the file, and a client that connects between bind and listen is refused.
Result<void> bind_listening(int fd, const std::string& path, const sockaddr_un& addr, int backlog) {
  // Unique to this call (two threads, or two PID namespaces, may publish the same path):
  // bind fails on an existing name instead of taking someone else's.
  uint64_t nonce = 0;
  if (::getrandom(&nonce, sizeof(nonce), 0) != sizeof(nonce))
    return err("getrandom: {}", errno_string());
  std::string temporary = fmt::format("{}.{:x}", path, nonce & 0xffffffffffu);
  auto temporary_addr = address(temporary);
  if (!temporary_addr.ok()) {
    // Too long for sun_path with the suffix: bind in place. The window is two syscalls
    // wide, and a client that retries on ECONNREFUSED does not see it.
    if (::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) < 0)
      return err("bind '{}': {}", path, errno_string());
    if (::listen(fd, backlog) < 0) {
      std::string why = errno_string();
      ::unlink(path.c_str());
      return err("listen on '{}': {}", path, why);
    }
    return {};
  }
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&*temporary_addr), sizeof(sockaddr_un)) < 0)
    return err("bind '{}': {}", temporary, errno_string());
  if (::listen(fd, backlog) < 0) {
    std::string why = errno_string();
    ::unlink(temporary.c_str());
    return err("listen on '{}': {}", temporary, why);
  }
  // RENAME_NOREPLACE: a listener that appeared at `path` meanwhile keeps it. File systems
  // without it (EINVAL) get link + unlink, which cannot replace a file either.
  int rc = ::renameat2(AT_FDCWD, temporary.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE);
  if (rc < 0 && errno == EINVAL) rc = ::link(temporary.c_str(), path.c_str());
  int error = errno;
  ::unlink(temporary.c_str());  // after a rename: already gone
  if (rc < 0) {
    std::string why = error == EEXIST ? "another socket appeared there" : errno_string(error);
    return err("publishing the socket at '{}': {}", path, why);
  }
  return {};
}

}  // namespace

Result<UnixListener> UnixListener::listen(const std::string& path, Options options) {
  IGN_ASSIGN_OR_RETURN(sockaddr_un addr, address(path));
  IGN_TRY(clear_stale_socket(path, addr));
  IGN_ASSIGN_OR_RETURN(UniqueFd fd, stream_socket(options.nonblocking));
  IGN_TRY(bind_listening(fd.get(), path, addr, options.backlog));
  struct stat st {};
  if (::lstat(path.c_str(), &st) < 0) {
    std::string why = errno_string();
    return err("Unix socket '{}' vanished as it was created: {}", path, why);
  }
  return UnixListener(std::move(fd), path, st.st_dev, st.st_ino, options.nonblocking);
}

UnixListener::UnixListener(UnixListener&& other) noexcept
    : fd_(std::move(other.fd_)),
      path_(std::exchange(other.path_, {})),
      dev_(other.dev_),
      ino_(other.ino_),
      nonblocking_(other.nonblocking_) {}

UnixListener::~UnixListener() {
  if (path_.empty()) return;
  struct stat st {};
  if (::lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_)
    ::unlink(path_.c_str());
}

Result<std::optional<UniqueFd>> UnixListener::accept() const {
  int flags = SOCK_CLOEXEC | (nonblocking_ ? SOCK_NONBLOCK : 0);
  UniqueFd fd(::accept4(fd_.get(), nullptr, nullptr, flags));
  if (fd.valid()) return std::optional<UniqueFd>(std::move(fd));
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR || errno == ECONNABORTED)
    return std::optional<UniqueFd>();
  return err("accept on '{}': {}", path_, errno_string());
}

Result<UniqueFd> connect_unix(const std::string& path, bool nonblocking) {
  IGN_ASSIGN_OR_RETURN(sockaddr_un addr, address(path));
  IGN_ASSIGN_OR_RETURN(UniqueFd fd, stream_socket(nonblocking));
  // Unix stream connects complete at once or fail (EAGAIN: the listener's backlog is full).
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) < 0)
    return err("connect '{}': {}", path, errno_string());
  return fd;
}

}  // namespace ignition

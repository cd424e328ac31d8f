#include "cli/uffd_handler.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>

#include "base/fd.hpp"
#include "base/result.hpp"
#include "memory/uffd.hpp"
#include "memory/uffd_pager.hpp"

namespace ignition::cli {

namespace {

Result<UniqueFd> listen_at(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path))
    return err("socket path '{}' must be 1 to {} bytes", path, sizeof(addr.sun_path) - 1);
  path.copy(addr.sun_path, path.size());
  // A socket left by an earlier handler would make bind fail; anything else stays.
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return err("socket: {}", errno_string());
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
    return err("bind {}: {}", path, errno_string());
  if (::listen(fd.get(), 1) != 0) return err("listen {}: {}", path, errno_string());
  return fd;
}

Result<UffdPager::Stats> serve(const std::string& socket_path, const std::string& memory_path) {
  // Refuse a missing file before a VMM comes to depend on us.
  if (::access(memory_path.c_str(), R_OK) != 0)
    return err("memory file {}: {}", memory_path, errno_string());
  IGN_ASSIGN_OR_RETURN(auto listener, listen_at(socket_path));
  std::printf("uffd-handler: listening on %s\n", socket_path.c_str());
  std::fflush(stdout);
  UniqueFd vmm;
  do {
    vmm.reset(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  } while (!vmm.valid() && errno == EINTR);
  if (!vmm.valid()) return err("accept on {}: {}", socket_path, errno_string());
  // One VMM per handler, as in Firecracker: nobody else may connect now.
  listener.reset();
  ::unlink(socket_path.c_str());

  IGN_ASSIGN_OR_RETURN(auto handshake, receive_uffd_handshake(vmm.get()));
  uint64_t bytes = 0;
  for (const auto& m : handshake.mappings) bytes += m.size;
  size_t regions = handshake.mappings.size();
  IGN_ASSIGN_OR_RETURN(auto pager, UffdPager::create(memory_path, std::move(handshake)));
  std::printf("uffd-handler: serving %zu region(s), %llu MiB, from %s\n", regions,
              static_cast<unsigned long long>(bytes >> 20), memory_path.c_str());
  std::fflush(stdout);
  IGN_TRY(pager.serve_until_hangup(vmm.get()));
  return pager.stats();
}

}  // namespace

int uffd_handler_command(const std::string& socket_path, const std::string& memory_path) {
  auto stats = serve(socket_path, memory_path);
  if (!stats.ok()) {
    std::fprintf(stderr, "ignition uffd-handler: %s\n", stats.error().message.c_str());
    return 1;
  }
  std::printf(
      "uffd-handler: served %llu page faults: %llu pages copied, %llu zero pages, %llu already "
      "present; %llu remove events\n",
      static_cast<unsigned long long>(stats->faults),
      static_cast<unsigned long long>(stats->copied),
      static_cast<unsigned long long>(stats->zeroed),
      static_cast<unsigned long long>(stats->already_present),
      static_cast<unsigned long long>(stats->removes));
  return 0;
}

}  // namespace ignition::cli

#include "cli/uffd_handler.hpp"

#include <unistd.h>

#include <cstdio>
#include <optional>

#include "base/fd.hpp"
#include "base/result.hpp"
#include "base/unix_listener.hpp"
#include "memory/uffd.hpp"
#include "memory/uffd_pager.hpp"

namespace ignition::cli {

namespace {

// One VMM per handler, as in Firecracker: the socket goes once it has connected.
Result<UniqueFd> accept_one_vmm(const std::string& socket_path) {
  IGN_ASSIGN_OR_RETURN(auto listener, UnixListener::listen(socket_path, {.backlog = 1}));
  std::printf("uffd-handler: listening on %s\n", socket_path.c_str());
  std::fflush(stdout);
  for (;;) {
    IGN_ASSIGN_OR_RETURN(std::optional<UniqueFd> vmm, listener.accept());
    if (vmm) return std::move(*vmm);
  }
}

Result<UffdPager::Stats> serve(const std::string& socket_path, const std::string& memory_path) {
  // Refuse a missing file before a VMM comes to depend on us.
  if (::access(memory_path.c_str(), R_OK) != 0)
    return err("memory file {}: {}", memory_path, errno_string());
  IGN_ASSIGN_OR_RETURN(UniqueFd vmm, accept_one_vmm(socket_path));
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

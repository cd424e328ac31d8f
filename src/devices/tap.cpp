#include "devices/tap.hpp"

#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>

#include <cstring>

namespace ignition::devices {

static_assert(kTapOffloadCsum == TUN_F_CSUM && kTapOffloadTso4 == TUN_F_TSO4 &&
              kTapOffloadTso6 == TUN_F_TSO6 && kTapOffloadTsoEcn == TUN_F_TSO_ECN &&
              kTapOffloadUfo == TUN_F_UFO);

namespace {

// What usually went wrong, so the operator knows what to fix.
std::string open_hint(int e) {
  switch (e) {
    case ENOENT:
    case ENODEV:
      return " (is the tun module loaded?)";
    case EACCES:
    case EPERM:
      return " (needs CAP_NET_ADMIN, or a TAP made beforehand with `ip tuntap add <name> mode "
             "tap user <uid>`)";
    default:
      return "";
  }
}

std::string setiff_hint(int e) {
  switch (e) {
    case EBUSY:
      return " (is another process using it?)";
    case EINVAL:
      return " (an interface of that name exists and is not a TAP device)";
    case EPERM:
      return " (the TAP belongs to another user, or CAP_NET_ADMIN is missing)";
    default:
      return "";
  }
}

}  // namespace

Result<Tap> Tap::open(std::string_view name) {
  if (name.size() > kMaxNameLen)
    return err("TAP {}: the name is longer than {} bytes", name, kMaxNameLen);
  if (name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos)
    return err("TAP {}: not a valid interface name", name);

  UniqueFd fd(::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC));
  if (!fd.valid()) {
    int e = errno;
    return err("TAP {}: /dev/net/tun: {}{}", name, errno_string(e), open_hint(e));
  }
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, name.data(), name.size());
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  if (::ioctl(fd.get(), TUNSETIFF, &ifr) < 0) {
    int e = errno;
    return err("TAP {}: TUNSETIFF: {}{}", name, errno_string(e), setiff_hint(e));
  }
  ifr.ifr_name[IFNAMSIZ - 1] = '\0';
  Tap tap(std::move(fd), std::string(ifr.ifr_name));
  IGN_TRY(tap.set_vnet_hdr_size(kVnetHdrSize));
  return tap;
}

Result<void> Tap::set_vnet_hdr_size(int bytes) {
  if (::ioctl(fd_.get(), TUNSETVNETHDRSZ, &bytes) < 0)
    return err("TAP {}: TUNSETVNETHDRSZ {}: {}", name_, bytes, errno_string());
  return {};
}

Result<void> Tap::set_offload(uint32_t flags) {
  if (::ioctl(fd_.get(), TUNSETOFFLOAD, static_cast<unsigned long>(flags)) == 0) {
    offload_ = flags;
    return {};
  }
  int e = errno;
  // UFO went away from Linux for a while (4.14); such kernels refuse the whole request.
  uint32_t without_ufo = flags & ~kTapOffloadUfo;
  if (e == EINVAL && without_ufo != flags &&
      ::ioctl(fd_.get(), TUNSETOFFLOAD, static_cast<unsigned long>(without_ufo)) == 0) {
    offload_ = without_ufo;
    return {};
  }
  return err("TAP {}: TUNSETOFFLOAD {:#x}: {}", name_, flags, errno_string(e));
}

Result<std::optional<size_t>> Tap::read(std::span<uint8_t> buf) {
  while (true) {
    ssize_t n = ::read(fd_.get(), buf.data(), buf.size());
    if (n >= 0) return std::optional<size_t>(static_cast<size_t>(n));
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return std::optional<size_t>();
    return err("TAP {}: read: {}", name_, errno_string());
  }
}

Result<std::optional<size_t>> Tap::write(std::span<const iovec> iov) {
  while (true) {
    ssize_t n = ::writev(fd_.get(), iov.data(), static_cast<int>(iov.size()));
    if (n >= 0) return std::optional<size_t>(static_cast<size_t>(n));
    if (errno == EINTR) continue;
    if (errno == EAGAIN) return std::optional<size_t>();
    return err("TAP {}: write: {}", name_, errno_string());
  }
}

}  // namespace ignition::devices

#include "memory/uffd.hpp"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

#include <nlohmann/json.hpp>

#include "base/unix_listener.hpp"

namespace ignition {

namespace {

// The handshake is a few hundred bytes; anything near this is not a handshake.
constexpr size_t kMaxHandshake = 1 << 20;

Result<uint64_t> field(const nlohmann::json& entry, const char* name) {
  auto it = entry.find(name);
  if (it == entry.end()) return err("uffd mapping: missing field '{}'", name);
  if (!it->is_number_unsigned()) return err("uffd mapping: '{}' must be an unsigned integer", name);
  return it->get<uint64_t>();
}

}  // namespace

std::string encode_uffd_mappings(const std::vector<UffdMapping>& mappings) {
  nlohmann::json array = nlohmann::json::array();
  for (const auto& m : mappings) {
    array.push_back({{"base_host_virt_addr", m.base_host_virt_addr},
                     {"size", m.size},
                     {"offset", m.offset},
                     {"page_size", m.page_size},
                     {"page_size_kib", m.page_size}});
  }
  return array.dump();
}

Result<std::vector<UffdMapping>> decode_uffd_mappings(std::string_view text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded()) return err("uffd mappings: not valid JSON");
  if (!j.is_array() || j.empty()) return err("uffd mappings: expected a non-empty JSON array");
  std::vector<UffdMapping> mappings;
  for (const auto& entry : j) {
    if (!entry.is_object()) return err("uffd mappings: each mapping must be a JSON object");
    UffdMapping m;
    IGN_ASSIGN_OR_RETURN(m.base_host_virt_addr, field(entry, "base_host_virt_addr"));
    IGN_ASSIGN_OR_RETURN(m.size, field(entry, "size"));
    IGN_ASSIGN_OR_RETURN(m.offset, field(entry, "offset"));
    IGN_ASSIGN_OR_RETURN(m.page_size,
                         field(entry, entry.contains("page_size") ? "page_size" : "page_size_kib"));
    if (m.page_size == 0 || (m.page_size & (m.page_size - 1)) != 0)
      return err("uffd mapping: page size {} is not a power of two", m.page_size);
    if (m.size == 0 || m.size % m.page_size != 0 || m.base_host_virt_addr % m.page_size != 0 ||
        m.offset % m.page_size != 0)
      return err("uffd mapping {:#x}+{:#x} (offset {:#x}) is not page-aligned",
                 m.base_host_virt_addr, m.size, m.offset);
    if (m.base_host_virt_addr + m.size < m.base_host_virt_addr || m.offset + m.size < m.offset)
      return err("uffd mapping {:#x}+{:#x} wraps", m.base_host_virt_addr, m.size);
    mappings.push_back(m);
  }
  return mappings;
}

std::vector<UffdMapping> uffd_mappings(const GuestMemory& memory) {
  std::vector<UffdMapping> mappings;
  for (const auto& r : memory.regions())
    mappings.push_back(
        {reinterpret_cast<uint64_t>(r.host), r.size, r.file_offset, memory.backing_page_size()});
  return mappings;
}

Result<UniqueFd> create_userfaultfd() {
  int flags = O_CLOEXEC | O_NONBLOCK;
  UniqueFd uffd(static_cast<int>(::syscall(SYS_userfaultfd, flags)));
  int error = errno;
  if (!uffd.valid() && error == EPERM) {
    UniqueFd dev(::open("/dev/userfaultfd", O_RDWR | O_CLOEXEC));
    if (dev.valid()) uffd.reset(::ioctl(dev.get(), USERFAULTFD_IOC_NEW, flags));
    if (!uffd.valid()) error = errno;
  }
  if (!uffd.valid()) {
    return err(
        "userfaultfd: {} (faults from KVM need CAP_SYS_PTRACE, vm.unprivileged_userfaultfd=1 "
        "or access to /dev/userfaultfd)",
        errno_string(error));
  }
  uffdio_api api{};
  api.api = UFFD_API;
  // Remove events let the handler serve zeros for pages the VMM gave back (balloon).
  api.features = UFFD_FEATURE_EVENT_REMOVE;
  if (::ioctl(uffd.get(), UFFDIO_API, &api) != 0)
    return err("userfaultfd: UFFDIO_API: {}", errno_string());
  return uffd;
}

Result<void> register_missing_pages(int uffd, void* addr, uint64_t len, uint64_t page_size) {
  uffdio_register reg{};
  reg.range.start = reinterpret_cast<uint64_t>(addr);
  reg.range.len = len;
  reg.mode = UFFDIO_REGISTER_MODE_MISSING;
  if (::ioctl(uffd, UFFDIO_REGISTER, &reg) != 0)
    return err("userfaultfd: registering {} MiB of guest memory: {}", len >> 20, errno_string());
  const uint64_t needed = (1ULL << _UFFDIO_COPY) | (1ULL << _UFFDIO_WAKE) |
                          (page_size == kUffdPageSize ? 1ULL << _UFFDIO_ZEROPAGE : 0);
  if ((reg.ioctls & needed) != needed)
    return err("userfaultfd: this kernel cannot resolve faults in guest memory by copy");
  return {};
}

Result<UniqueFd> send_uffd_handshake(const std::string& socket_path,
                                     const std::vector<UffdMapping>& mappings, int uffd) {
  auto connected = connect_unix(socket_path, /*nonblocking=*/false);
  if (!connected.ok())
    return err("cannot connect to the uffd handler: {}", connected.error().message);
  UniqueFd sock = std::move(connected).value();

  std::string body = encode_uffd_mappings(mappings);
  iovec iov{body.data(), body.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(cmsg), &uffd, sizeof(int));
  ssize_t n;
  do {
    n = ::sendmsg(sock.get(), &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n < 0) return err("sending the userfaultfd to {}: {}", socket_path, errno_string());
  // The descriptor went with the first byte; whatever a full buffer held back follows.
  for (size_t sent = static_cast<size_t>(n); sent < body.size();) {
    ssize_t more = ::send(sock.get(), body.data() + sent, body.size() - sent, MSG_NOSIGNAL);
    if (more < 0 && errno == EINTR) continue;
    if (more <= 0) return err("sending the uffd mappings to {}: {}", socket_path, errno_string());
    sent += static_cast<size_t>(more);
  }
  return sock;
}

Result<UffdHandshake> receive_uffd_handshake(int socket) {
  UffdHandshake handshake;
  std::string body;
  char buf[4096];
  // The sender writes the whole body at once, but a stream may deliver it in pieces: read
  // until it parses.
  while (body.empty() || !nlohmann::json::accept(body)) {
    iovec iov{buf, sizeof(buf)};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    pollfd pfd{socket, POLLIN, 0};
    if (::poll(&pfd, 1, 10000) == 0) return err("uffd handshake: timed out");
    ssize_t n = ::recvmsg(socket, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) return err("uffd handshake: {}", errno_string());
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      int fd = -1;
      std::memcpy(&fd, CMSG_DATA(c), sizeof(int));
      if (handshake.uffd.valid())
        ::close(fd);
      else
        handshake.uffd.reset(fd);
    }
    if (msg.msg_flags & MSG_CTRUNC) return err("uffd handshake: more descriptors than one");
    if (n == 0) return err("uffd handshake: the VMM closed the connection before its message");
    body.append(buf, static_cast<size_t>(n));
    if (body.size() > kMaxHandshake) return err("uffd handshake: message too large");
  }
  if (!handshake.uffd.valid()) return err("uffd handshake: no userfaultfd came with the message");
  IGN_ASSIGN_OR_RETURN(handshake.mappings, decode_uffd_mappings(body));
  return handshake;
}

Result<void> attach_uffd_handler(GuestMemory& memory, const std::string& socket_path) {
  IGN_ASSIGN_OR_RETURN(auto uffd, create_userfaultfd());
  for (const auto& r : memory.regions())
    IGN_TRY(register_missing_pages(uffd.get(), r.host, r.size, memory.backing_page_size()));
  IGN_ASSIGN_OR_RETURN(auto connection,
                       send_uffd_handshake(socket_path, uffd_mappings(memory), uffd.get()));
  memory.hold(std::move(uffd));
  memory.hold(std::move(connection));
  return {};
}

}  // namespace ignition

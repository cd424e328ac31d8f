// A host TAP device (/dev/net/tun, IFF_TAP) carrying Ethernet frames that each start with a
// 12-byte virtio_net_hdr_v1, so a virtio-net device can pass guest frames and offload
// metadata through unchanged. Owns the fd: closing it detaches (or, for a non-persistent
// TAP, removes) the interface.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "base/fd.hpp"
#include "base/result.hpp"

namespace ignition::devices {

// TUNSETOFFLOAD flags: what the host may hand us (checksum-less or segmentation-pending
// packets), i.e. what the guest said it can receive.
inline constexpr uint32_t kTapOffloadCsum = 0x01;
inline constexpr uint32_t kTapOffloadTso4 = 0x02;
inline constexpr uint32_t kTapOffloadTso6 = 0x04;
inline constexpr uint32_t kTapOffloadTsoEcn = 0x08;
inline constexpr uint32_t kTapOffloadUfo = 0x10;

class Tap {
 public:
  // Every frame read or written starts with a virtio_net_hdr_v1 of this size.
  static constexpr int kVnetHdrSize = 12;
  static constexpr size_t kMaxNameLen = 15;  // IFNAMSIZ - 1

  // Opens (creating it if needed) the TAP called `name`, non-blocking, with vnet headers of
  // kVnetHdrSize bytes. An empty name lets the kernel pick one ("tapN").
  static Result<Tap> open(std::string_view name);

  const std::string& name() const { return name_; }
  int fd() const { return fd_.get(); }

  // Tells the kernel which offloads the reader can take (kTapOffload* bits). A kernel that
  // no longer knows UFO gets the same request without it.
  Result<void> set_offload(uint32_t flags);
  // The flags last set (0 until set_offload succeeds).
  uint32_t offload() const { return offload_; }

  // One frame into `buf` (a longer frame is truncated by the kernel). nullopt when no
  // frame is queued.
  Result<std::optional<size_t>> read(std::span<uint8_t> buf);
  // One frame gathered from `iov`. nullopt when the kernel cannot take it right now.
  Result<std::optional<size_t>> write(std::span<const iovec> iov);

 private:
  Tap(UniqueFd fd, std::string name) : fd_(std::move(fd)), name_(std::move(name)) {}
  Result<void> set_vnet_hdr_size(int bytes);

  UniqueFd fd_;
  std::string name_;
  uint32_t offload_ = 0;
};

}  // namespace ignition::devices

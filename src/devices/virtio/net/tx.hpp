// Turning a guest TX chain into a frame for the TAP: the checks that make an untrusted
// chain safe to hand to writev (header present, sane size, readable buffers only).
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <span>
#include <vector>

#include "base/result.hpp"
#include "devices/virtio/queue.hpp"
#include "memory/guest_memory.hpp"

namespace ignition::devices::virtio::net {

// Most buffers one TX chain may have: what one writev takes (IOV_MAX). Linux drivers use
// at most MAX_SKB_FRAGS + 2.
inline constexpr size_t kMaxTxBuffers = 1024;

// A guest frame, virtio header first, as host views of guest memory.
struct TxFrame {
  std::vector<iovec> iov;
  uint32_t size = 0;  // header included

  // Copies up to out.size() bytes from `offset` of the frame; returns how many.
  size_t copy_out(uint32_t offset, std::span<uint8_t> out) const;
};

// The frame a TX chain carries, or why it must be dropped.
Result<TxFrame> parse_tx_chain(GuestMemory& mem, const DescriptorChain& chain);

}  // namespace ignition::devices::virtio::net

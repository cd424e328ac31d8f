// Placing one received frame (virtio header first) into the guest's RX chains: spread
// over several chains with VIRTIO_NET_F_MRG_RXBUF, or in one chain without it. The driver
// sees all the chains of a frame at once, never part of them.
#pragma once

#include <cstdint>
#include <span>

#include "base/result.hpp"
#include "devices/virtio/queue.hpp"
#include "memory/guest_memory.hpp"

namespace ignition::devices::virtio::net {

struct RxOutcome {
  enum class Kind {
    kDelivered,  // the frame is in the guest
    kNoBuffers,  // not enough chains yet: keep the frame, the queue is as before
    kDropped,    // it can never fit (a chain without MRG_RXBUF, a whole ring with it)
  };
  Kind kind = Kind::kNoBuffers;
  uint16_t chains = 0;      // chains the frame took (its num_buffers)
  uint16_t bad_chains = 0;  // chains too small for a header, returned empty
  // Whether used entries were added (the driver may need an interrupt).
  bool used_any() const { return chains != 0 || bad_chains != 0; }
};

// `frame` must start with a virtio_net_hdr_v1; its num_buffers field is filled in here.
// An error means the driver broke the queue protocol.
Result<RxOutcome> deliver_rx_frame(GuestMemory& mem, Queue& queue, std::span<uint8_t> frame,
                                   bool mergeable);

}  // namespace ignition::devices::virtio::net

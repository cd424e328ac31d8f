// virtio-vsock's snapshot state: plain data, kept apart from the device. Connections are
// not saved (neither end could resume them): a device restored active tells the driver
// with VIRTIO_VSOCK_EVENT_TRANSPORT_RESET, as Firecracker does.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/result.hpp"

namespace ignition::devices::virtio::vsock {

struct VsockState {
  uint64_t guest_cid = 0;
  bool active = false;  // the driver had started the device
};

std::vector<uint8_t> encode_state(const VsockState& state);
Result<VsockState> decode_state(std::span<const uint8_t> bytes);

}  // namespace ignition::devices::virtio::vsock

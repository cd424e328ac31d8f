// virtio-net's snapshot state: plain data, kept apart from the device. A frame read from
// the TAP and not yet delivered is not saved: packets in flight may be lost, as on a wire.
// The TAP's offloads follow from the negotiated features (in the transport's state): the
// device sets them again (TUNSETOFFLOAD) when the transport re-activates it.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "vmm/config/rate_limiter.hpp"

namespace ignition::devices::virtio::net {

// iface_id is a view: into the device when encoding, into the bytes when decoding, so that
// a reset's roll back decodes without allocating.
struct NetState {
  std::string_view iface_id;
  std::optional<std::array<uint8_t, 6>> mac;  // in config space when set
  std::optional<uint16_t> mtu;                // in config space when set
  uint64_t features = 0;                      // offered to the driver
  config::RateLimiter rx_rate_limiter;
  config::RateLimiter tx_rate_limiter;
};

std::vector<uint8_t> encode_state(const NetState& state);
Result<NetState> decode_state(std::span<const uint8_t> bytes);

}  // namespace ignition::devices::virtio::net

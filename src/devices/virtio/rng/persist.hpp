// virtio-rng's snapshot state: plain data, kept apart from the device.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "base/result.hpp"

namespace ignition::devices::virtio::rng {

struct RngState {
  uint64_t bytes_served = 0;
};

std::vector<uint8_t> encode_state(const RngState& state);
Result<RngState> decode_state(std::span<const uint8_t> bytes);

}  // namespace ignition::devices::virtio::rng

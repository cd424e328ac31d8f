// virtio-blk's snapshot state: plain data, kept apart from the device. The disk's contents
// are not in it; the file must still be there, the same size, when the snapshot is restored.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "vmm/config/rate_limiter.hpp"

namespace ignition::devices::virtio::block {

// The strings are views: into the device when encoding, into the bytes when decoding, so
// that a reset's roll back decodes without allocating.
struct BlockState {
  std::string_view drive_id;
  std::string_view path;
  uint64_t capacity_sectors = 0;
  bool read_only = false;
  uint64_t features = 0;  // offered to the driver
  config::RateLimiter rate_limiter;
};

std::vector<uint8_t> encode_state(const BlockState& state);
Result<BlockState> decode_state(std::span<const uint8_t> bytes);

}  // namespace ignition::devices::virtio::block

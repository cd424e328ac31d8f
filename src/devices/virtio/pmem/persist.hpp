// virtio-pmem's snapshot state: plain data, kept apart from the device. The file's contents
// are not in it; the file must still be there, mapping to the same size, at restore.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "vmm/config/rate_limiter.hpp"

namespace ignition::devices::virtio::pmem {

// The strings are views: into the device when encoding, into the bytes when decoding, so
// that a reset's roll back decodes without allocating.
struct PmemState {
  std::string_view id;
  std::string_view path;
  uint64_t gpa = 0;
  uint64_t size = 0;       // the mapped, aligned size the guest saw
  uint64_t file_size = 0;  // the file's part of it
  bool read_only = false;
  config::RateLimiter rate_limiter;
};

std::vector<uint8_t> encode_state(const PmemState& state);
Result<PmemState> decode_state(std::span<const uint8_t> bytes);

}  // namespace ignition::devices::virtio::pmem

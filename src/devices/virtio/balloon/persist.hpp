// virtio-balloon's snapshot state: plain data, kept apart from the device. The pages the
// guest gave back are simply absent from the saved RAM.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "base/result.hpp"
#include "vmm/config/balloon.hpp"

namespace ignition::devices::virtio::balloon {

struct BalloonState {
  uint64_t features = 0;   // offered to the driver
  uint32_t num_pages = 0;  // target
  uint32_t actual_pages = 0;
  uint16_t stats_interval_s = 0;
  std::optional<uint16_t> stats_head;  // the statistics buffer the device holds
  config::BalloonStats stats;          // the guest's latest report (target/actual unused)
};

std::vector<uint8_t> encode_state(const BalloonState& state);
Result<BalloonState> decode_state(std::span<const uint8_t> bytes);

}  // namespace ignition::devices::virtio::balloon
